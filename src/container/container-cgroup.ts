/**
 * The container's cgroup manager for the operations that go through it (pause/resume, update,
 * events, stats), or, for a container created rootless without one, what each says instead.
 */
import { loadCgroupManager, type CgroupManager, type CgroupState } from '../cgroups';
import type { RuntimeContext } from './context';
import { RuntimeError } from './errors';
import type { SavedState } from './state-store';

/** Rootless without permission for a cgroup: what each operation says (runc's words first). */
export const NO_CGROUP = {
  freeze: 'cannot toggle freezer: cgroups not configured for container',
  update: 'cannot set limits: container could not join or create cgroup',
  any: 'container has no cgroup',
};
export const WHY_NO_CGROUP = ' (it was created rootless without permission for one: that needs a delegated cgroup v2 subtree or an explicit, writable linux.cgroupsPath)';

/**
 * The manager of a saved cgroup, its warnings (a systemd unit that would not go…) to the
 * caller's log: the library never writes to its host's stderr.
 */
export function managerOf(ctx: RuntimeContext, state: CgroupState): CgroupManager {
  return loadCgroupManager(state, { warn: (m) => ctx.log.warn(m) });
}

export function cgroupOf(ctx: RuntimeContext, saved: SavedState, what: keyof typeof NO_CGROUP = 'any'): CgroupManager {
  if (!saved.cgroup) throw new RuntimeError(NO_CGROUP[what] + WHY_NO_CGROUP);
  return managerOf(ctx, saved.cgroup);
}
