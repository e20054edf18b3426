/** v2 cpu: idle, weight (from shares), cpu.max and its burst; usage and throttling stats. */
import * as path from 'node:path';
import { omitZero, sharesToWeight } from '../manager';
import { errCode, parseFlatKeyed, readOptional, writeCgroupFileAsync } from '../util';
import type { V2Controller } from './controller';

export const cpu: V2Controller = {
  name: 'cpu',
  async set(dir, r) {
    const c = r.cpu;
    if (!c) return;
    const file = (f: string) => path.join(dir, f);
    // (Real-time limits, which v2 has not, were refused before anything was written: validate.ts.)
    if (c.idle !== undefined && c.idle !== null) await writeCgroupFileAsync(file('cpu.idle'), String(c.idle));
    // An idle cgroup has no weight of its own: the kernel refuses cpu.weight then.
    if (c.shares && !c.idle) await writeCgroupFileAsync(file('cpu.weight'), String(sharesToWeight(c.shares)));
    let burstPending = false;
    if (c.burst !== undefined && c.burst !== null) {
      try {
        await writeCgroupFileAsync(file('cpu.max.burst'), String(c.burst));
      } catch (e) {
        // A burst larger than the old quota is refused: retry after cpu.max.
        if (errCode(e) !== 'EINVAL') throw e;
        burstPending = true;
      }
    }
    if (c.quota || c.period) {
      let v = c.quota && c.quota > 0 ? String(c.quota) : 'max';
      if (c.period) v += ` ${c.period}`;
      await writeCgroupFileAsync(file('cpu.max'), v);
    }
    if (burstPending) await writeCgroupFileAsync(file('cpu.max.burst'), String(c.burst));
  },
  stats(dir, s) {
    const st = parseFlatKeyed(readOptional(path.join(dir, 'cpu.stat')));
    s.cpu.usage = { ...omitZero({ total: (st.usage_usec ?? 0) * 1000 }), kernel: (st.system_usec ?? 0) * 1000, user: (st.user_usec ?? 0) * 1000 };
    s.cpu.throttling = omitZero({ periods: st.nr_periods ?? 0, throttledPeriods: st.nr_throttled ?? 0, throttledTime: (st.throttled_usec ?? 0) * 1000 });
  },
};
