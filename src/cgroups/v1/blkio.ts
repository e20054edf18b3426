/** v1 blkio: CFQ or BFQ weights, throttles. */
import * as path from 'node:path';
import { exists, writeCgroupFileAsync } from '../util';
import type { V1Subsystem } from './controller';

const THROTTLES = [
  ['throttleReadBpsDevice', 'blkio.throttle.read_bps_device'],
  ['throttleWriteBpsDevice', 'blkio.throttle.write_bps_device'],
  ['throttleReadIOPSDevice', 'blkio.throttle.read_iops_device'],
  ['throttleWriteIOPSDevice', 'blkio.throttle.write_iops_device'],
] as const;

export const blkio: V1Subsystem = {
  name: 'blkio',
  async set(r, env) {
    const b = r.blockIO;
    if (!b) return;
    const needs = b.weight || b.leafWeight || b.weightDevice?.length || THROTTLES.some(([key]) => b[key]?.length);
    if (!needs) return;
    const dir = env.need();
    // CFQ's blkio.weight, or BFQ's blkio.bfq.weight when CFQ is gone (runc picks the same way).
    const bfq = !exists(path.join(dir, 'blkio.weight')) && exists(path.join(dir, 'blkio.bfq.weight'));
    const weightFile = bfq ? 'blkio.bfq.weight' : 'blkio.weight';
    const weightDevFile = bfq ? 'blkio.bfq.weight_device' : 'blkio.weight_device';
    if (b.weight) await writeCgroupFileAsync(path.join(dir, weightFile), String(b.weight));
    if (b.leafWeight) await writeCgroupFileAsync(path.join(dir, 'blkio.leaf_weight'), String(b.leafWeight));
    for (const wd of b.weightDevice ?? []) {
      if (wd.weight) await writeCgroupFileAsync(path.join(dir, weightDevFile), `${wd.major}:${wd.minor} ${wd.weight}`);
      if (wd.leafWeight) await writeCgroupFileAsync(path.join(dir, 'blkio.leaf_weight_device'), `${wd.major}:${wd.minor} ${wd.leafWeight}`);
    }
    for (const [key, file] of THROTTLES) {
      for (const t of b[key] ?? []) await writeCgroupFileAsync(path.join(dir, file), `${t.major}:${t.minor} ${t.rate}`);
    }
  },
};
