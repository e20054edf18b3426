/** v1 pids: pids.max, and current/limit stats. */
import * as path from 'node:path';
import { omitZero, pidsLimitStat, pidsMaxValue } from '../manager';
import { readOptional, readUintOptional, writeCgroupFileAsync } from '../util';
import type { V1Subsystem } from './controller';

export const pids: V1Subsystem = {
  name: 'pids',
  async set(r, env) {
    if (r.pids && r.pids.limit !== undefined) await writeCgroupFileAsync(path.join(env.need(), 'pids.max'), pidsMaxValue(r.pids.limit));
  },
  stats(dir, s) {
    s.pids = omitZero({ current: readUintOptional(path.join(dir, 'pids.current')) ?? 0, limit: pidsLimitStat(readOptional(path.join(dir, 'pids.max'))) });
  },
};
