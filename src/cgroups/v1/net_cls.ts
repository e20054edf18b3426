/** v1 net_cls: the class id tagged on the container's packets. */
import * as path from 'node:path';
import { writeCgroupFileAsync } from '../util';
import type { V1Subsystem } from './controller';

export const net_cls: V1Subsystem = {
  name: 'net_cls',
  async set(r, env) {
    if (r.network?.classID) await writeCgroupFileAsync(path.join(env.need(), 'net_cls.classid'), String(r.network.classID));
  },
};
