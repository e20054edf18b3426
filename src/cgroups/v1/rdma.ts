/** v1 rdma: one rdma.max line per device. */
import * as path from 'node:path';
import { rdmaMaxLine } from '../manager';
import { writeCgroupFileAsync } from '../util';
import type { V1Subsystem } from './controller';

export const rdma: V1Subsystem = {
  name: 'rdma',
  async set(r, env) {
    for (const [dev, lim] of Object.entries(r.rdma ?? {})) await writeCgroupFileAsync(path.join(env.need(), 'rdma.max'), rdmaMaxLine(dev, lim));
  },
};
