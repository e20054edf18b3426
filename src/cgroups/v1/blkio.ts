/** v1 blkio: CFQ or BFQ weights, throttles; stats from CFQ, BFQ or the throttle files (runc's order). */
import * as path from 'node:path';
import { omitZero } from '../manager';
import type { BlkioEntry, BlkioStats } from '../types';
import { exists, readOptional, writeCgroupFileAsync } from '../util';
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
  stats(dir, s) {
    s.blkio = blkioStats(dir);
  },
};

function blkioStats(dir: string): BlkioStats {
  const parse = (file: string): BlkioEntry[] | undefined => {
    const t = readOptional(path.join(dir, file));
    if (t === null) return undefined;
    const out: BlkioEntry[] = [];
    for (const line of t.split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f.length < 2 || f[0] === 'Total') continue;
      const [maj, min] = f[0].split(':').map(Number);
      if (f.length === 3) out.push(omitZero({ major: maj, minor: min, op: f[1], value: Number(f[2]) }));
      else out.push(omitZero({ major: maj, minor: min, value: Number(f[1]) }));
    }
    return out;
  };
  const cfq = parse('blkio.io_serviced_recursive');
  if (cfq && cfq.length) {
    return omitZero({
      ioServiceBytesRecursive: parse('blkio.io_service_bytes_recursive'),
      ioServicedRecursive: cfq,
      ioQueueRecursive: parse('blkio.io_queued_recursive'),
      ioServiceTimeRecursive: parse('blkio.io_service_time_recursive'),
      ioWaitTimeRecursive: parse('blkio.io_wait_time_recursive'),
      ioMergedRecursive: parse('blkio.io_merged_recursive'),
      ioTimeRecursive: parse('blkio.time_recursive'),
      sectorsRecursive: parse('blkio.sectors_recursive'),
    });
  }
  const bfq = parse('blkio.bfq.io_serviced_recursive');
  if (bfq && bfq.length) {
    return omitZero({ ioServiceBytesRecursive: parse('blkio.bfq.io_service_bytes_recursive'), ioServicedRecursive: bfq });
  }
  return omitZero({ ioServiceBytesRecursive: parse('blkio.throttle.io_service_bytes_recursive'), ioServicedRecursive: parse('blkio.throttle.io_serviced_recursive') });
}
