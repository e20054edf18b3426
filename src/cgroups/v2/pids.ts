/** v2 pids: pids.max, and current/limit stats. */
import * as path from 'node:path';
import { omitZero, pidsLimitStat, pidsMaxValue } from '../manager';
import { readOptional, readUintOptional, writeCgroupFileAsync } from '../util';
import type { V2Controller } from './controller';

export const pids: V2Controller = {
  name: 'pids',
  async set(dir, r) {
    if (r.pids && r.pids.limit !== undefined) await writeCgroupFileAsync(path.join(dir, 'pids.max'), pidsMaxValue(r.pids.limit));
  },
  stats(dir, s) {
    const current = readUintOptional(path.join(dir, 'pids.current'));
    if (current === undefined) return;
    s.pids = omitZero({ current, limit: pidsLimitStat(readOptional(path.join(dir, 'pids.max'))) });
  },
};
