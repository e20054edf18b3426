/** v2 pids: pids.max. */
import * as path from 'node:path';
import { pidsMaxValue } from '../manager';
import { writeCgroupFileAsync } from '../util';
import type { V2Controller } from './controller';

export const pids: V2Controller = {
  name: 'pids',
  async set(dir, r) {
    if (r.pids && r.pids.limit !== undefined) await writeCgroupFileAsync(path.join(dir, 'pids.max'), pidsMaxValue(r.pids.limit));
  },
};
