/**
 * Operations on a live container that go through its cgroup: pause/resume, update, events, ps.
 */
import { loadCgroupManager, type CgroupManager } from '../cgroups';
import { withRollback } from '../cgroups/util';
import type { LinuxResources } from '../bundle/types';
import type { RuntimeContext } from './context';
import { RuntimeError, errInvalid, errNotPaused, errNotRunning } from './errors';
import { containerDir } from './ids';
import { deriveStatus, loadContainer, savedContainerPids } from './lifecycle';
import { lockDir } from './lock';
import { sleep } from './proc';
import { writeState, type SavedState } from './state-store';

/** Rootless without permission for a cgroup: what each operation says (runc's words first). */
const NO_CGROUP = {
  freeze: 'cannot toggle freezer: cgroups not configured for container',
  update: 'cannot set limits: container could not join or create cgroup',
  any: 'container has no cgroup',
};
const WHY_NO_CGROUP = ' (it was created rootless without permission for one: that needs a delegated cgroup v2 subtree or an explicit, writable linux.cgroupsPath)';

function cgroupOf(saved: SavedState, what: keyof typeof NO_CGROUP = 'any'): CgroupManager {
  if (!saved.cgroup) throw new RuntimeError(NO_CGROUP[what] + WHY_NO_CGROUP);
  return loadCgroupManager(saved.cgroup);
}

/** Host pids of the container's processes (`ps`): its cgroup's; without one (rootless), its pid namespace's. */
export function containerPids(ctx: RuntimeContext, id: string): number[] {
  return savedContainerPids(loadContainer(ctx.root, id));
}

export async function pauseContainer(ctx: RuntimeContext, id: string): Promise<void> {
  const saved = loadContainer(ctx.root, id);
  const lock = await lockDir(containerDir(ctx.root, id));
  try {
    const status = deriveStatus(ctx.root, saved);
    // runc pauses running and created containers alike; a paused one is left as it is.
    if (status !== 'running' && status !== 'created') {
      if (status === 'paused') return;
      throw errNotRunning();
    }
    await cgroupOf(saved, 'freeze').freeze();
  } finally {
    lock.release();
  }
}

export async function resumeContainer(ctx: RuntimeContext, id: string): Promise<void> {
  const saved = loadContainer(ctx.root, id);
  const lock = await lockDir(containerDir(ctx.root, id));
  try {
    if (deriveStatus(ctx.root, saved) !== 'paused') throw errNotPaused();
    await cgroupOf(saved, 'freeze').thaw();
  } finally {
    lock.release();
  }
}

/** Drops undefined members (and empty objects) so that "not given" never reaches the cgroup code. */
function prune<T>(v: T): T | undefined {
  if (Array.isArray(v)) return v;
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const p = prune(x);
      if (p !== undefined) out[k] = p;
    }
    return Object.keys(out).length ? (out as T) : undefined;
  }
  return v === undefined || v === null ? undefined : v;
}

/** Merges an update into the saved resources (runc keeps the config it last applied). */
function mergeResources(base: Record<string, any>, update: Record<string, any>): Record<string, any> {
  const out: Record<string, any> = { ...base };
  for (const [k, v] of Object.entries(update)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && base[k] && typeof base[k] === 'object' ? mergeResources(base[k], v) : v;
  }
  return out;
}

export async function updateContainer(ctx: RuntimeContext, id: string, resources: Record<string, any>): Promise<void> {
  loadContainer(ctx.root, id); // "container does not exist" before anything else
  // Validated before anything is written, with config.json's schema for linux.resources.
  const { resourcesProblems } = await import('../bundle/load');
  const problems = resourcesProblems(resources);
  if (problems.length) throw errInvalid(`invalid resources: ${problems.join('; ')}`);
  const lock = await lockDir(containerDir(ctx.root, id));
  try {
    // Read under the lock: two racing updates must not lose one another's changes.
    const saved = loadContainer(ctx.root, id);
    if (deriveStatus(ctx.root, saved) === 'stopped') throw errNotRunning();
    const update = prune(resources) ?? {};
    // A write that fails half-way restores what was already written: all or nothing.
    const cg = cgroupOf(saved, 'update');
    withRollback(() => cg.update(update as LinuxResources));
    const linux = (saved.config.linux ??= {});
    linux.resources = mergeResources((linux.resources ?? {}) as Record<string, any>, update) as LinuxResources;
    writeState(ctx.root, saved);
  } finally {
    lock.release();
  }
}

export interface EventsOptions {
  intervalMs: number;
  once: boolean;
  emit: (event: { type: string; id: string; data?: unknown }) => void;
}

/**
 * runc's events: `--stats` prints one stats event; otherwise a stats event every interval and an
 * oom event whenever the kernel OOM-kills in the container, until the container stops.
 */
export async function containerEvents(ctx: RuntimeContext, id: string, opts: EventsOptions): Promise<void> {
  const saved = loadContainer(ctx.root, id);
  if (deriveStatus(ctx.root, saved) === 'stopped') throw errNotRunning();
  if (!saved.cgroup) {
    // runc prints empty statistics for a rootless container without a cgroup; so does tsrun,
    // and says so.
    ctx.log.warn(`events: ${NO_CGROUP.any}${WHY_NO_CGROUP}: the statistics are empty`);
    const { emptyStats } = await import('../cgroups/manager');
    if (opts.once) {
      opts.emit({ type: 'stats', id, data: emptyStats() });
      return;
    }
    while (deriveStatus(ctx.root, saved) !== 'stopped') {
      opts.emit({ type: 'stats', id, data: emptyStats() });
      const until = Date.now() + opts.intervalMs;
      while (Date.now() < until && deriveStatus(ctx.root, saved) !== 'stopped') await sleep(Math.min(200, opts.intervalMs));
    }
    return;
  }
  const cg = cgroupOf(saved);
  if (opts.once) {
    opts.emit({ type: 'stats', id, data: cg.stats() });
    return;
  }
  const stopOom = cg.watchOom(() => opts.emit({ type: 'oom', id }));
  try {
    while (deriveStatus(ctx.root, saved) !== 'stopped') {
      try {
        opts.emit({ type: 'stats', id, data: cg.stats() });
      } catch (e) {
        // The cgroup vanishes with the container: that ends the stream, it is not an error.
        if (deriveStatus(ctx.root, saved) === 'stopped') break;
        ctx.log.warn(`stats: ${(e as Error).message}`);
      }
      const until = Date.now() + opts.intervalMs;
      while (Date.now() < until && deriveStatus(ctx.root, saved) !== 'stopped') await sleep(Math.min(200, opts.intervalMs));
    }
  } finally {
    stopOom();
  }
}
