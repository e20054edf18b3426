/** v2 io: BFQ's or the converted io.weight, io.max throttles. */
import * as path from 'node:path';
import { blkioWeightToIOWeight } from '../manager';
import { exists, writeCgroupFileAsync } from '../util';
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
};
