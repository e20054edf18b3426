/**
 * A container's cgroup statistics, runc's `events --stats` data: read by the native reader
 * (addon/common/cgroup_stats.cpp through the addon's cgroupStats), the one reader there is, which
 * bin/tsrun's front door prints from too. It returns JSON so that the uint64 counters stay exact
 * (runc prints 9223372036854771712, not the nearest double) for those who print it; parseStats
 * is for those who compute with the numbers.
 */
import { native } from '../native/addon';
import type { CgroupLayout } from './layout';
import type { CgroupStats } from './types';
import { CgroupError, errnoText } from './util';

/** `layout` and `paths` as in CgroupState; 'none' is no cgroup: every member empty. */
export function cgroupStatsJson(layout: CgroupLayout | 'none', paths: Record<string, string>): string {
  try {
    return native().cgroupStats(layout, paths);
  } catch (e) {
    // "<file>: read", the file that exists but could not be read: the wording of every cgroup error.
    const err = e as NodeJS.ErrnoException;
    if (typeof err.syscall === 'string' && err.code) throw new CgroupError(`${err.syscall}: ${errnoText(err)}`, err.code);
    throw e;
  }
}

export function parseStats(json: string): CgroupStats {
  return JSON.parse(json) as CgroupStats;
}
