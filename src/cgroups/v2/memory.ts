/** v2 memory: swap.max before memory.max (v1's memory+swap converted), memory.low; stats in v1's terms. */
import * as path from 'node:path';
import { memorySwapToV2, omitZero } from '../manager';
import { CgroupError, errCode, exists, parseFlatKeyed, readOptional, readUintOptional, writeCgroupFileAsync } from '../util';
import type { V2Controller } from './controller';

/** "max" as the kernel prints it in a 64-bit counter file, read as a number. */
const UNLIMITED = 18446744073709551615;

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
  stats(dir, s) {
    const file = (f: string) => path.join(dir, f);
    const raw = parseFlatKeyed(readOptional(file('memory.stat')));
    if (!exists(file('memory.current'))) return;
    const usage = readUintOptional(file('memory.current')) ?? 0;
    const limit = readUintOptional(file('memory.max')) ?? 0;
    const peak = readUintOptional(file('memory.peak')) ?? 0;
    const events = parseFlatKeyed(readOptional(file('memory.events')));
    const swapCur = readUintOptional(file('memory.swap.current'));
    const swapMax = readUintOptional(file('memory.swap.max'));
    s.memory = {
      ...omitZero({ cache: raw.file ?? 0 }),
      usage: { limit, ...omitZero({ usage, max: peak }), failcnt: events.max ?? 0 },
      // v1 reports memory+swap: keep that meaning for runc compatibility.
      swap: { limit: swapMax === undefined ? 0 : swapMax >= UNLIMITED || limit >= UNLIMITED ? UNLIMITED : swapMax + limit, ...omitZero({ usage: (swapCur ?? 0) + usage }), failcnt: 0 },
      kernel: { limit: 0, failcnt: 0 },
      kernelTCP: { limit: 0, failcnt: 0 },
      raw,
    };
  },
};
