/** delete: stopped → (none); with force from any status, killing what still runs (transitions.ts). */
import * as fs from 'node:fs';
import { managerOf } from './container-cgroup';
import { runHooksWarnOnly } from '../hooks/run';
import type { RuntimeContext } from './context';
import { errNotExist } from './errors';
import { containerDir, validateId } from './ids';
import { signalInit } from './kill';
import { lockContainer } from './lock';
import { isSameProcessAlive, waitGone } from './proc';
import { deriveStatus, ociState } from './state';
import { CorruptStateError, readIntent, readState, type SavedState } from './state-store';
import { checkTransition } from './transitions';

/** Removes what remains of a container whose processes are gone; returns its poststop hooks, run by the caller once the lock is released. */
async function destroy(ctx: RuntimeContext, saved: SavedState): Promise<() => Promise<void>> {
  if (saved.cgroup) {
    // The init is gone; whatever is still in its cgroup is the container's (a shared pid
    // namespace, a half-created container whose creator was killed): it goes too, as in runc.
    const cg = managerOf(ctx, saved.cgroup);
    try {
      if (cg.isFrozen()) await cg.thaw();
    } catch {}
    await cg.destroy({ killLeftovers: true });
  }
  fs.rmSync(containerDir(ctx.root, saved.id), { recursive: true, force: true });
  return () => runHooksWarnOnly('poststop', saved.config.hooks?.poststop, JSON.stringify(ociState(saved, 'stopped')), (m) => ctx.log.warn(m));
}

/** Kills and removes what the intent record names (every process of the cgroup, the cgroup). */
async function destroyFromIntent(ctx: RuntimeContext, id: string): Promise<void> {
  const intent = readIntent(ctx.root, id);
  if (intent?.cgroup) {
    try {
      const cg = managerOf(ctx, intent.cgroup);
      if (cg.isFrozen()) await cg.thaw();
      cg.killAll(9);
      await cg.destroy({ killLeftovers: true });
    } catch (e) {
      ctx.log.warn(`delete: cgroup of ${id}: ${(e as Error).message}`);
    }
  }
  fs.rmSync(containerDir(ctx.root, id), { recursive: true, force: true });
}

async function killEverything(ctx: RuntimeContext, saved: SavedState): Promise<void> {
  if (saved.cgroup) {
    const cg = managerOf(ctx, saved.cgroup);
    // SIGKILL is only delivered to frozen tasks once they thaw.
    if (cg.isFrozen()) await cg.thaw();
    cg.killAll(9);
  }
  if (isSameProcessAlive(saved.initPid, saved.initStartTime)) {
    try {
      signalInit(saved, 9);
    } catch {}
  }
  await waitGone(saved.initPid, saved.initStartTime, 10_000);
}

export async function deleteContainer(ctx: RuntimeContext, id: string, force: boolean): Promise<void> {
  validateId(id);
  const dir = containerDir(ctx.root, id);
  if (!fs.existsSync(dir)) {
    // runc: delete --force of a container that does not exist succeeds silently (clients run it
    // after every failed create).
    if (force) return;
    throw errNotExist();
  }
  const lock = await lockContainer(ctx.root, id);
  let poststop: (() => Promise<void>) | null = null;
  try {
    let saved: SavedState | null;
    try {
      saved = readState(ctx.root, id);
    } catch (e) {
      if (!(e instanceof CorruptStateError) || !force) throw e;
      saved = null;
    }
    if (!saved) {
      // No readable state: a create that died before writing it, or a corrupt state.json. Only
      // force removes it, and everything its intent record names goes with it.
      if (!force) throw errNotExist();
      await destroyFromIntent(ctx, id);
      return;
    }
    const status = deriveStatus(ctx.root, saved);
    checkTransition(force ? 'forceDelete' : 'delete', status, id);
    if (status !== 'stopped') await killEverything(ctx, saved);
    poststop = await destroy(ctx, saved);
  } finally {
    lock.release();
  }
  await poststop?.();
}
