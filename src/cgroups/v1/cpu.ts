/** v1 cpu: real-time budget, shares (the kernel's clamp is an error), CFS quota/period/burst, idle. */
import * as path from 'node:path';
import { CgroupError, errCode, parseUint, readCgroupFile, writeCgroupFileAsync } from '../util';
import type { V1Subsystem } from './controller';

export const cpu: V1Subsystem = {
  name: 'cpu',
  async set(r, env) {
    const c = r.cpu;
    if (!c) return;
    const needsCpu = c.shares || c.quota || c.period || c.burst !== undefined || c.idle !== undefined || c.realtimePeriod || c.realtimeRuntime;
    if (!needsCpu) return;
    const dir = env.need();
    // RT first: a period/runtime pair must fit before tasks may join (runc sets it at Apply).
    if (c.realtimePeriod) await writeCgroupFileAsync(path.join(dir, 'cpu.rt_period_us'), String(c.realtimePeriod));
    if (c.realtimeRuntime) await writeCgroupFileAsync(path.join(dir, 'cpu.rt_runtime_us'), String(c.realtimeRuntime));
    if (c.shares) {
      const f = path.join(dir, 'cpu.shares');
      await writeCgroupFileAsync(f, String(c.shares));
      // The kernel clamps silently; runc reports the clamp as an error.
      const got = parseUint(readCgroupFile(f));
      if (c.shares > got) throw new CgroupError(`${f}: write ${c.shares}: the maximum allowed cpu-shares is ${got}`);
      if (c.shares < got) throw new CgroupError(`${f}: write ${c.shares}: the minimum allowed cpu-shares is ${got}`);
    }
    let retryPeriod = false;
    if (c.period) {
      try {
        await writeCgroupFileAsync(path.join(dir, 'cpu.cfs_period_us'), String(c.period));
      } catch (e) {
        // A shorter period can exceed the parent's quota with the old quota: retry after the quota.
        if (errCode(e) !== 'EINVAL' || !c.quota) throw e;
        retryPeriod = true;
      }
    }
    if (c.quota) {
      await writeCgroupFileAsync(path.join(dir, 'cpu.cfs_quota_us'), String(c.quota));
      if (retryPeriod) await writeCgroupFileAsync(path.join(dir, 'cpu.cfs_period_us'), String(c.period));
    }
    if (c.burst !== undefined && c.burst !== null) await writeCgroupFileAsync(path.join(dir, 'cpu.cfs_burst_us'), String(c.burst));
    if (c.idle !== undefined && c.idle !== null) await writeCgroupFileAsync(path.join(dir, 'cpu.idle'), String(c.idle));
  },
};
