/** v2 hugetlb: one .max per page size. */
import * as path from 'node:path';
import { writeCgroupFileAsync } from '../util';
import type { V2Controller } from './controller';

export const hugetlb: V2Controller = {
  name: 'hugetlb',
  async set(dir, r) {
    for (const h of r.hugepageLimits ?? []) await writeCgroupFileAsync(path.join(dir, `hugetlb.${h.pageSize}.max`), String(h.limit));
  },
};
