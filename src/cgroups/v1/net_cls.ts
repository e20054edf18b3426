/** v1 net_cls: the class id tagged on the container's packets. */
import * as path from 'node:path';
import { writeCgroupFile } from '../util';
import type { V1Subsystem } from './controller';

export const net_cls: V1Subsystem = {
  name: 'net_cls',
  set(r, env) {
    if (r.network?.classID) writeCgroupFile(path.join(env.need(), 'net_cls.classid'), String(r.network.classID));
  },
};
