/** v1 net_prio: one ifpriomap line per interface. */
import * as path from 'node:path';
import { writeCgroupFileAsync } from '../util';
import type { V1Subsystem } from './controller';

export const net_prio: V1Subsystem = {
  name: 'net_prio',
  async set(r, env) {
    for (const p of r.network?.priorities ?? []) await writeCgroupFileAsync(path.join(env.need(), 'net_prio.ifpriomap'), `${p.name} ${p.priority}`);
  },
};
