/** v2 cpuset: cpus before mems, as runc; the effective sets as stats. */
import * as path from 'node:path';
import { omitZero } from '../manager';
import type { CgroupStats } from '../types';
import { parseCpuList, readOptional, writeCgroupFileAsync } from '../util';
import type { V2Controller } from './controller';

export const cpuset: V2Controller = {
  name: 'cpuset',
  async set(dir, r) {
    if (r.cpu?.cpus) await writeCgroupFileAsync(path.join(dir, 'cpuset.cpus'), r.cpu.cpus);
    if (r.cpu?.mems) await writeCgroupFileAsync(path.join(dir, 'cpuset.mems'), r.cpu.mems);
  },
  stats(dir, s) {
    const cpus = readOptional(path.join(dir, 'cpuset.cpus.effective'));
    if (cpus === null) return;
    s.cpuset = {
      ...omitZero({ cpus: parseCpuList(cpus), mems: parseCpuList(readOptional(path.join(dir, 'cpuset.mems.effective'))) }),
    } as CgroupStats['cpuset'];
  },
};
