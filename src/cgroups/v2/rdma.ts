/** v2 rdma: one rdma.max line per device. */
import * as path from 'node:path';
import { rdmaMaxLine } from '../manager';
import { writeCgroupFileAsync } from '../util';
import type { V2Controller } from './controller';

export const rdma: V2Controller = {
  name: 'rdma',
  async set(dir, r) {
    for (const [dev, lim] of Object.entries(r.rdma ?? {})) await writeCgroupFileAsync(path.join(dir, 'rdma.max'), rdmaMaxLine(dev, lim));
  },
};
