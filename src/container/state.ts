/**
 * A container's status and OCI state (`state`, `list`). The status is never stored: it is derived
 * from the world, like runc does, so it cannot go stale: stopped when the init (same pid and
 * start time) is gone, created while its exec fifo exists, paused while its cgroup is frozen,
 * running otherwise. transitions.ts says what each operation may do from each status.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadCgroupManager } from '../cgroups';
import type { RuntimeContext } from './context';
import { errNotExist } from './errors';
import { containerDir, validateId } from './ids';
import { isSameProcessAlive } from './proc';
import { EXEC_FIFO, OCI_VERSION, listIds, readState, type OciState, type SavedState } from './state-store';

/** OCI state as `state` prints it (and as hooks receive it). */
export function ociState(saved: SavedState, status: OciState['status']): OciState {
  const st: OciState = {
    ociVersion: OCI_VERSION,
    id: saved.id,
    pid: status === 'stopped' ? 0 : saved.initPid,
    status,
    bundle: saved.bundle,
    rootfs: saved.rootfs,
    created: saved.created,
    owner: saved.owner,
  };
  const annotations = saved.config.annotations;
  if (annotations && Object.keys(annotations).length > 0) st.annotations = annotations;
  return st;
}

export function deriveStatus(root: string, saved: SavedState): OciState['status'] {
  // Half-created: still being created while its creator lives; a creator killed half-way left a
  // container that is stopped (and that delete removes, from its intent record).
  if (saved.initPid === 0) return saved.creatorPid && isSameProcessAlive(saved.creatorPid, saved.creatorStartTime ?? 0) ? 'creating' : 'stopped';
  if (!isSameProcessAlive(saved.initPid, saved.initStartTime)) return 'stopped';
  if (fs.existsSync(path.join(containerDir(root, saved.id), EXEC_FIFO))) return 'created';
  if (saved.cgroup) {
    try {
      if (loadCgroupManager(saved.cgroup).isFrozen()) return 'paused';
    } catch {
      // A cgroup that cannot be read does not make a live init any less running.
    }
  }
  return 'running';
}

export function loadContainer(root: string, id: string): SavedState {
  validateId(id);
  const saved = readState(root, id);
  if (!saved) throw errNotExist();
  return saved;
}

export function containerState(ctx: RuntimeContext, id: string): OciState {
  const saved = loadContainer(ctx.root, id);
  return ociState(saved, deriveStatus(ctx.root, saved));
}

export function listContainers(ctx: RuntimeContext): OciState[] {
  const out: OciState[] = [];
  for (const id of listIds(ctx.root)) {
    let saved: SavedState | null;
    try {
      saved = readState(ctx.root, id);
    } catch {
      continue;
    }
    if (saved) out.push(ociState(saved, deriveStatus(ctx.root, saved)));
  }
  return out;
}
