/** v1 memory: limit and memsw in the order the kernel accepts, kmem, soft limit, OOM. */
import * as path from 'node:path';
import { CgroupError, errCode, exists, parseUint, readCgroupFile, readOptional, readUintOptional, writeCgroupFileAsync } from '../util';
import type { V1Subsystem } from './controller';

export const memory: V1Subsystem = {
  name: 'memory',
  async set(r, env) {
    const m = r.memory;
    if (!m) return;
    const dir = env.need();
    const limitFile = path.join(dir, 'memory.limit_in_bytes');
    const swFile = path.join(dir, 'memory.memsw.limit_in_bytes');
    const mem = m.limit ?? 0;
    let swap = m.swap ?? 0;
    // -1 memory with no swap given means "unlimited both" (runc), when swap accounting exists.
    if (mem === -1 && swap === 0 && exists(swFile)) swap = -1;
    if (m.checkBeforeUpdate && mem > 0) {
      const usage = readUintOptional(path.join(dir, 'memory.usage_in_bytes')) ?? 0;
      if (mem <= usage) throw new CgroupError(`rejecting memory limit ${mem} below usage ${usage}`);
    }
    const setMem = async () => {
      if (mem === 0) return;
      try {
        await writeCgroupFileAsync(limitFile, String(mem));
      } catch (e) {
        if (errCode(e) !== 'EBUSY') throw e;
        // EBUSY: below current usage. Say so, as runc does.
        const usage = readUintOptional(path.join(dir, 'memory.usage_in_bytes'));
        const peak = readUintOptional(path.join(dir, 'memory.max_usage_in_bytes'));
        throw new CgroupError(`${limitFile}: write ${mem}: unable to set memory limit to ${mem} (current usage: ${usage}, peak usage: ${peak})`, 'EBUSY');
      }
    };
    const setSwap = async () => {
      if (swap === 0) return;
      await writeCgroupFileAsync(swFile, String(swap));
    };
    // The kernel demands memory <= memsw at every step: order the two writes accordingly.
    if (mem !== 0 && swap !== 0) {
      const cur = parseUint(readCgroupFile(limitFile));
      if (swap === -1 || cur < swap) {
        await setSwap();
        await setMem();
      } else {
        await setMem();
        await setSwap();
      }
    } else {
      await setMem();
      await setSwap();
    }
    for (const [key, file] of [
      ['kernel', 'memory.kmem.limit_in_bytes'],
      ['kernelTCP', 'memory.kmem.tcp.limit_in_bytes'],
    ] as const) {
      const v = m[key];
      if (v === undefined || v === 0) continue;
      try {
        await writeCgroupFileAsync(path.join(dir, file), String(v));
      } catch (e) {
        // Kernel memory limits are deprecated (and refused since Linux 6.1): warn, do not fail.
        const c = errCode(e);
        if (c === 'ENOENT' || c === 'EOPNOTSUPP' || c === 'ENOTSUP' || c === 'EINVAL' || (e as Error).message.includes('524')) {
          env.warn(`linux.resources.memory.${key} ignored: ${(e as Error).message}`);
        } else throw e;
      }
    }
    if (m.reservation !== undefined && m.reservation !== 0) await writeCgroupFileAsync(path.join(dir, 'memory.soft_limit_in_bytes'), String(m.reservation));
    if (m.disableOOMKiller) await writeCgroupFileAsync(path.join(dir, 'memory.oom_control'), '1');
    // (Its range was checked before anything was written: validate.ts.)
    if (m.swappiness !== undefined && m.swappiness !== null && m.swappiness !== -1) await writeCgroupFileAsync(path.join(dir, 'memory.swappiness'), String(m.swappiness));
    if (m.useHierarchy !== undefined) {
      const want = m.useHierarchy ? '1' : '0';
      const file = path.join(dir, 'memory.use_hierarchy');
      // Recent kernels fix use_hierarchy at 1 and refuse any write of 0; writing the value already
      // there is a no-op we can skip.
      if ((readOptional(file) ?? '').trim() !== want) await writeCgroupFileAsync(file, want);
    }
  },
};
