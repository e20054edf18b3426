/** v2 rdma: one rdma.max line per device. */
import * as path from 'node:path';
import { rdmaMaxLine } from '../manager';
import { writeCgroupFile } from '../util';
import type { V2Controller } from './controller';

export const rdma: V2Controller = {
  name: 'rdma',
  set(dir, r) {
    for (const [dev, lim] of Object.entries(r.rdma ?? {})) writeCgroupFile(path.join(dir, 'rdma.max'), rdmaMaxLine(dev, lim));
  },
};
