/** v1 cpuacct: usage stats only (nothing in linux.resources is written there). */
import * as path from 'node:path';
import { omitZero } from '../manager';
import { parseFlatKeyed, readOptional, readUintOptional } from '../util';
import type { V1Subsystem } from './controller';

/** cpuacct.stat counts in USER_HZ, 100 a second on Linux: nanoseconds per tick. */
const NS_PER_USER_HZ_TICK = 10_000_000;

export const cpuacct: V1Subsystem = {
  name: 'cpuacct',
  stats(dir, s) {
    const total = readUintOptional(path.join(dir, 'cpuacct.usage')) ?? 0;
    const percpu = (readOptional(path.join(dir, 'cpuacct.usage_percpu')) ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
    const pk: number[] = [];
    const pu: number[] = [];
    // "cpu user system" rows, nanoseconds.
    for (const line of (readOptional(path.join(dir, 'cpuacct.usage_all')) ?? '').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length === 3) {
        pu.push(Number(f[1]));
        pk.push(Number(f[2]));
      }
    }
    const st = parseFlatKeyed(readOptional(path.join(dir, 'cpuacct.stat')));
    s.cpu.usage = {
      ...omitZero({ total, percpu, percpu_kernel: pk, percpu_user: pu }),
      kernel: (st.system ?? 0) * NS_PER_USER_HZ_TICK,
      user: (st.user ?? 0) * NS_PER_USER_HZ_TICK,
    };
  },
};
