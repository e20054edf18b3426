/** v1 cpuset: cpus and mems (cpus first, as runc), the parents' values for a new cgroup, stats. */
import * as path from 'node:path';
import type { CgroupStats } from '../types';
import { mkdirRecording, parseCpuList, readOptional, writeCgroupFileAsync } from '../util';
import { omitZero } from '../manager';
import type { V1Subsystem } from './controller';

export const cpuset: V1Subsystem = {
  name: 'cpuset',
  async set(r, env) {
    if (r.cpu?.cpus !== undefined && r.cpu.cpus !== '') await writeCgroupFileAsync(path.join(env.need(), 'cpuset.cpus'), r.cpu.cpus);
    if (r.cpu?.mems !== undefined && r.cpu.mems !== '') await writeCgroupFileAsync(path.join(env.need(), 'cpuset.mems'), r.cpu.mems);
  },
  stats(dir, s) {
    const n = (f: string) => Number((readOptional(path.join(dir, f)) ?? '0').trim()) || 0;
    s.cpuset = {
      ...omitZero({ cpus: parseCpuList(readOptional(path.join(dir, 'cpuset.cpus'))) }),
      cpu_exclusive: n('cpuset.cpu_exclusive'),
      ...omitZero({ mems: parseCpuList(readOptional(path.join(dir, 'cpuset.mems'))) }),
      mem_hardwall: n('cpuset.mem_hardwall'),
      mem_exclusive: n('cpuset.mem_exclusive'),
      memory_migrate: n('cpuset.memory_migrate'),
      memory_spread_page: n('cpuset.memory_spread_page'),
      memory_spread_slab: n('cpuset.memory_spread_slab'),
      memory_pressure: n('cpuset.memory_pressure'),
      sched_load_balance: n('cpuset.sched_load_balance'),
      sched_relax_domain_level: n('cpuset.sched_relax_domain_level'),
    } as CgroupStats['cpuset'];
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
