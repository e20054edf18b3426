/** v2 hugetlb: one .max per page size, and usage stats per size. */
import * as path from 'node:path';
import { hugePageSizes, omitZero } from '../manager';
import { parseFlatKeyed, readOptional, readUintOptional, writeCgroupFileAsync } from '../util';
import type { V2Controller } from './controller';

export const hugetlb: V2Controller = {
  name: 'hugetlb',
  async set(dir, r) {
    for (const h of r.hugepageLimits ?? []) await writeCgroupFileAsync(path.join(dir, `hugetlb.${h.pageSize}.max`), String(h.limit));
  },
  stats(dir, s) {
    for (const size of hugePageSizes()) {
      const usage = readUintOptional(path.join(dir, `hugetlb.${size}.current`));
      if (usage === undefined) continue;
      const ev = parseFlatKeyed(readOptional(path.join(dir, `hugetlb.${size}.events`)));
      s.hugetlb[size] = { ...omitZero({ usage, max: readUintOptional(path.join(dir, `hugetlb.${size}.max`)) ?? 0 }), failcnt: ev.max ?? 0 };
    }
  },
};
