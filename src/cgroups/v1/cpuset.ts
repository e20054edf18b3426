/** v1 cpuset: cpus and mems (cpus first, as runc), the parents' values for a new cgroup. */
import * as path from 'node:path';
import { mkdirRecording, readOptional, writeCgroupFileAsync } from '../util';
import type { V1Subsystem } from './controller';

export const cpuset: V1Subsystem = {
  name: 'cpuset',
  async set(r, env) {
    if (r.cpu?.cpus !== undefined && r.cpu.cpus !== '') await writeCgroupFileAsync(path.join(env.need(), 'cpuset.cpus'), r.cpu.cpus);
    if (r.cpu?.mems !== undefined && r.cpu.mems !== '') await writeCgroupFileAsync(path.join(env.need(), 'cpuset.mems'), r.cpu.mems);
  },
};

/**
 * A cpuset cgroup with empty cpuset.cpus/mems refuses tasks (ENOSPC). New levels start empty,
 * and so may a parent someone made beforehand: every level from the hierarchy root down gets
 * the values of its nearest ancestor that has them, as runc's cpuset ensureParent does.
 */
export async function mkdirCpuset(dir: string, created: string[]): Promise<void> {
  await mkdirRecording(dir, created);
  const chain: string[] = [];
  for (let d = dir; readOptional(path.join(d, 'cpuset.cpus')) !== null; d = path.dirname(d)) {
    chain.unshift(d);
    if (path.dirname(d) === d) break;
  }
  for (const f of ['cpuset.cpus', 'cpuset.mems']) {
    let inherited = '';
    for (const d of chain) {
      const mine = (readOptional(path.join(d, f)) ?? '').trim();
      if (mine !== '') inherited = mine;
      else if (inherited !== '') await writeCgroupFileAsync(path.join(d, f), inherited);
    }
  }
}
