/** v2 cpu: idle, weight (from shares), cpu.max and its burst. */
import * as path from 'node:path';
import { sharesToWeight } from '../manager';
import { errCode, writeCgroupFileAsync } from '../util';
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
};
