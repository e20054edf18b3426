/** v1 pids: pids.max. */
import * as path from 'node:path';
import { pidsMaxValue } from '../manager';
import { writeCgroupFileAsync } from '../util';
import type { V1Subsystem } from './controller';

export const pids: V1Subsystem = {
  name: 'pids',
  async set(r, env) {
    if (r.pids && r.pids.limit !== undefined) await writeCgroupFileAsync(path.join(env.need(), 'pids.max'), pidsMaxValue(r.pids.limit));
  },
};
