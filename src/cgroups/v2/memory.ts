/** v2 memory: swap.max before memory.max (v1's memory+swap converted), memory.low. */
import * as path from 'node:path';
import { memorySwapToV2 } from '../manager';
import { CgroupError, errCode, readUintOptional, writeCgroupFileAsync } from '../util';
import type { V2Controller } from './controller';

export const memory: V2Controller = {
  name: 'memory',
  async set(dir, r, env) {
    const m = r.memory;
    if (!m) return;
    const file = (f: string) => path.join(dir, f);
    const mem = m.limit ?? 0;
    const swapIn = m.swap ?? 0;
    if (m.checkBeforeUpdate && mem > 0) {
      const usage = readUintOptional(file('memory.current')) ?? 0;
      if (mem <= usage) throw new CgroupError(`rejecting memory limit ${mem} below usage ${usage}`);
    }
    const num = (v: number) => (v === 0 ? '' : v === -1 ? 'max' : String(v));
    if (mem !== 0 || swapIn !== 0) {
      const swap = memorySwapToV2(swapIn, mem);
      let swapStr = num(swap);
      // memory == swap in v1 terms: no swap at all.
      if (swapStr === '' && swap === 0 && swapIn > 0) swapStr = '0';
      if (swapStr !== '') {
        try {
          await writeCgroupFileAsync(file('memory.swap.max'), swapStr);
        } catch (e) {
          // Without swap accounting "max"/"0" are what we have anyway.
          if (!(errCode(e) === 'ENOENT' && (swapStr === 'max' || swapStr === '0'))) throw e;
        }
      }
      if (mem !== 0) await writeCgroupFileAsync(file('memory.max'), num(mem));
    }
    if (m.reservation) await writeCgroupFileAsync(file('memory.low'), num(m.reservation));
    if (m.kernel || m.kernelTCP) env.warn('linux.resources.memory.kernel/kernelTCP are ignored on cgroup v2');
    if (m.swappiness !== undefined && m.swappiness !== -1 && m.swappiness !== null) env.warn('linux.resources.memory.swappiness is ignored on cgroup v2');
    if (m.disableOOMKiller) env.warn('linux.resources.memory.disableOOMKiller is ignored on cgroup v2');
  },
};
