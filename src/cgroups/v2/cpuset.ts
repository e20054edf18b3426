/** v2 cpuset: cpus before mems, as runc. */
import * as path from 'node:path';
import { writeCgroupFileAsync } from '../util';
import type { V2Controller } from './controller';

export const cpuset: V2Controller = {
  name: 'cpuset',
  async set(dir, r) {
    if (r.cpu?.cpus) await writeCgroupFileAsync(path.join(dir, 'cpuset.cpus'), r.cpu.cpus);
    if (r.cpu?.mems) await writeCgroupFileAsync(path.join(dir, 'cpuset.mems'), r.cpu.mems);
  },
};
