/** v2 io: BFQ's or the converted io.weight, io.max throttles; byte and operation stats from io.stat. */
import * as path from 'node:path';
import { blkioWeightToIOWeight, omitZero } from '../manager';
import type { BlkioEntry } from '../types';
import { exists, parseUint, readOptional, writeCgroupFileAsync } from '../util';
import type { V2Controller } from './controller';

const THROTTLES = [
  ['throttleReadBpsDevice', 'rbps'],
  ['throttleWriteBpsDevice', 'wbps'],
  ['throttleReadIOPSDevice', 'riops'],
  ['throttleWriteIOPSDevice', 'wiops'],
] as const;

export const io: V2Controller = {
  name: 'io',
  async set(dir, r, env) {
    const b = r.blockIO;
    if (!b) return;
    const file = (f: string) => path.join(dir, f);
    // BFQ's io.bfq.weight takes blkio weights as they are (and per-device ones); else io.weight
    // with runc's conversion.
    const bfq = exists(file('io.bfq.weight'));
    if (b.weight) {
      if (bfq) await writeCgroupFileAsync(file('io.bfq.weight'), String(b.weight));
      else await writeCgroupFileAsync(file('io.weight'), String(blkioWeightToIOWeight(b.weight)));
    }
    if (b.leafWeight) env.warn('linux.resources.blockIO.leafWeight is ignored on cgroup v2');
    for (const wd of b.weightDevice ?? []) {
      if (!wd.weight) continue;
      if (bfq) await writeCgroupFileAsync(file('io.bfq.weight'), `${wd.major}:${wd.minor} ${wd.weight}`);
      else await writeCgroupFileAsync(file('io.weight'), `${wd.major}:${wd.minor} ${blkioWeightToIOWeight(wd.weight)}`);
    }
    for (const [key, name] of THROTTLES) {
      for (const t of b[key] ?? []) await writeCgroupFileAsync(file('io.max'), `${t.major}:${t.minor} ${name}=${t.rate === 0 ? 'max' : t.rate}`);
    }
  },
  stats(dir, s) {
    const text = readOptional(path.join(dir, 'io.stat'));
    if (text === null) return;
    const bytes: BlkioEntry[] = [];
    const ios: BlkioEntry[] = [];
    for (const line of text.split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f.length < 2) continue;
      const [major, minor] = f[0].split(':').map(Number);
      const kv: Record<string, number> = {};
      for (const x of f.slice(1)) {
        const [k, v] = x.split('=');
        kv[k] = parseUint(v ?? '0');
      }
      bytes.push(omitZero({ major, minor, op: 'Read', value: kv.rbytes ?? 0 }), omitZero({ major, minor, op: 'Write', value: kv.wbytes ?? 0 }));
      ios.push(omitZero({ major, minor, op: 'Read', value: kv.rios ?? 0 }), omitZero({ major, minor, op: 'Write', value: kv.wios ?? 0 }));
    }
    s.blkio = omitZero({ ioServiceBytesRecursive: bytes, ioServicedRecursive: ios });
  },
};
