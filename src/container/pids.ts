/** The container's processes: what `ps` lists and `kill --all` signals. */
import * as fs from 'node:fs';
import { loadCgroupManager } from '../cgroups';
import type { RuntimeContext } from './context';
import { isSameProcessAlive } from './proc';
import { loadContainer } from './state';
import type { SavedState } from './state-store';

/**
 * The host pids of the container's processes: its cgroup's; without one (rootless without
 * permission for a cgroup) every process in the init's own pid namespace, or just the init when it
 * shares ours (or its namespace cannot be read: a created init is not dumpable).
 */
export function savedContainerPids(saved: SavedState): number[] {
  if (saved.cgroup) return loadCgroupManager(saved.cgroup).pids();
  if (!saved.initPid || !isSameProcessAlive(saved.initPid, saved.initStartTime)) return [];
  const ownPidNs = (saved.config.linux?.namespaces ?? []).some((n) => n.type === 'pid' && !n.path);
  let ns = '';
  try {
    if (ownPidNs) ns = fs.readlinkSync(`/proc/${saved.initPid}/ns/pid`);
  } catch {}
  if (!ns) return [saved.initPid];
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (fs.readlinkSync(`/proc/${name}/ns/pid`) === ns) out.push(Number(name));
    } catch {}
  }
  return out.sort((a, b) => a - b);
}

/** Host pids of the container's processes (`ps`): its cgroup's; without one (rootless), its pid namespace's. */
export function containerPids(ctx: RuntimeContext, id: string): number[] {
  return savedContainerPids(loadContainer(ctx.root, id));
}
