/** v1 hugetlb: one limit_in_bytes per page size. */
import * as path from 'node:path';
import { writeCgroupFileAsync } from '../util';
import type { V1Subsystem } from './controller';

export const hugetlb: V1Subsystem = {
  name: 'hugetlb',
  async set(r, env) {
    for (const h of r.hugepageLimits ?? []) await writeCgroupFileAsync(path.join(env.need(), `hugetlb.${h.pageSize}.limit_in_bytes`), String(h.limit));
  },
};
