/** v1 hugetlb: one limit_in_bytes per page size, and usage stats per size. */
import * as path from 'node:path';
import { hugePageSizes, omitZero } from '../manager';
import { readUintOptional, writeCgroupFileAsync } from '../util';
import type { V1Subsystem } from './controller';

export const hugetlb: V1Subsystem = {
  name: 'hugetlb',
  async set(r, env) {
    for (const h of r.hugepageLimits ?? []) await writeCgroupFileAsync(path.join(env.need(), `hugetlb.${h.pageSize}.limit_in_bytes`), String(h.limit));
  },
  stats(dir, s) {
    for (const size of hugePageSizes()) {
      const f = (x: string) => readUintOptional(path.join(dir, `hugetlb.${size}.${x}`)) ?? 0;
      s.hugetlb[size] = { ...omitZero({ usage: f('usage_in_bytes'), max: f('max_usage_in_bytes') }), failcnt: f('failcnt') };
    }
  },
};
