/**
 * The value checks of linux.resources that depend on the cgroup version, made before a single
 * file is written (create and update alike), so that a refused value never leaves a cgroup half
 * set. The shape (types, ranges of the JSON schema) is checked earlier, by the bundle loader
 * (config.json) and resourcesProblems (update). What only the kernel can say (a cpuset outside
 * the parent's, a limit below usage) is left to the controllers' writes.
 */
import { containerDeviceRules, DeviceEmulator } from './devices';
import { memorySwapToV2 } from './manager';
import type { LinuxResources } from './types';
import { CgroupError } from './util';

export type ResourcesVersion = 'v1' | 'v2';

/**
 * Throws the first problem, in runc's words. `creating`: the resources come from config.json,
 * whose errors name the field (update's do not, as runc's).
 */
export function checkResources(r: LinuxResources, version: ResourcesVersion, creating: boolean): void {
  if (version === 'v1') checkV1(r, creating);
  else checkV2(r);
  // Device rules: a bad one (or, on v1, one the kernel would silently ignore) is an error everywhere.
  if (r.devices) {
    const rules = containerDeviceRules(r.devices);
    if (version === 'v1') DeviceEmulator.fromRules(rules);
  }
}

function checkV1(r: LinuxResources, creating: boolean): void {
  if (r.unified && Object.keys(r.unified).length) {
    throw new CgroupError(`${creating ? 'linux.resources.unified: ' : ''}invalid configuration: cannot use unified on cgroup v1`);
  }
  const swappiness = r.memory?.swappiness;
  if (swappiness !== undefined && swappiness !== null && swappiness !== -1 && !(swappiness >= 0 && swappiness <= 100)) {
    throw new CgroupError(`linux.resources.memory.swappiness: invalid value:${swappiness}. valid memory swappiness range is 0-100`);
  }
}

function checkV2(r: LinuxResources): void {
  const c = r.cpu;
  if (c && (c.realtimePeriod || c.realtimeRuntime)) {
    throw new CgroupError('linux.resources.cpu.realtimePeriod/realtimeRuntime: real-time scheduling limits are not supported on cgroup v2');
  }
  const m = r.memory;
  // The v1 memory+swap value converts to swap.max or fails (swap without memory, swap < memory).
  if (m && ((m.limit ?? 0) !== 0 || (m.swap ?? 0) !== 0)) memorySwapToV2(m.swap ?? 0, m.limit ?? 0);
  // Both drivers (the systemd one writes what it has no property for): runc's words.
  for (const k of Object.keys(r.unified ?? {})) {
    if (k.includes('/') || k === '' || k === '.' || k === '..') throw new CgroupError(`linux.resources.unified: unified resource ${JSON.stringify(k)} must be a file name (no slashes)`);
  }
}
