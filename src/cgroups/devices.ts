/**
 * Device cgroup rules: the spec's linux.resources.devices plus runc's default allow list, in
 * runc's order (bundle rules first, defaults appended last), as v1 devices.allow/deny lines or as
 * a rule list for the v2 eBPF program.
 */
import type { LinuxDeviceCgroup } from './types';

export interface DeviceRule {
  /** 'a' | 'b' | 'c' */
  type: 'a' | 'b' | 'c';
  /** -1 = wildcard */
  major: number;
  minor: number;
  /** subset of "rwm" */
  access: string;
  allow: boolean;
}

/**
 * runc 1.1's specconv.AllowedDevices (checked against `runc run` on this host: devices.list of a
 * default container): mknod of anything, the /dev basics, ptys, ptmx, and tun/tap.
 */
export const DEFAULT_ALLOWED_DEVICES: readonly DeviceRule[] = [
  { type: 'c', major: -1, minor: -1, access: 'm', allow: true },
  { type: 'b', major: -1, minor: -1, access: 'm', allow: true },
  { type: 'c', major: 1, minor: 3, access: 'rwm', allow: true }, // /dev/null
  { type: 'c', major: 1, minor: 8, access: 'rwm', allow: true }, // /dev/random
  { type: 'c', major: 1, minor: 7, access: 'rwm', allow: true }, // /dev/full
  { type: 'c', major: 5, minor: 0, access: 'rwm', allow: true }, // /dev/tty
  { type: 'c', major: 1, minor: 5, access: 'rwm', allow: true }, // /dev/zero
  { type: 'c', major: 1, minor: 9, access: 'rwm', allow: true }, // /dev/urandom
  { type: 'c', major: 136, minor: -1, access: 'rwm', allow: true }, // /dev/pts/*
  { type: 'c', major: 5, minor: 2, access: 'rwm', allow: true }, // /dev/ptmx
  { type: 'c', major: 10, minor: 200, access: 'rwm', allow: true }, // /dev/net/tun
];

/** Validates and converts spec rules; errors name the offending rule. */
export function specDeviceRules(devs: LinuxDeviceCgroup[] | undefined): DeviceRule[] {
  const out: DeviceRule[] = [];
  (devs ?? []).forEach((d, i) => {
    const where = `linux.resources.devices[${i}]`;
    if (typeof d.allow !== 'boolean') throw new Error(`${where}.allow: must be true or false`);
    const type = d.type === undefined || d.type === '' ? 'a' : d.type;
    if (type !== 'a' && type !== 'b' && type !== 'c') throw new Error(`${where}.type: invalid device type ${JSON.stringify(d.type)} (want a, b or c)`);
    const access = d.access === undefined || d.access === '' ? 'rwm' : d.access;
    if (!/^[rwm]{1,3}$/.test(access) || new Set(access).size !== access.length) {
      throw new Error(`${where}.access: invalid device access ${JSON.stringify(d.access)} (want a combination of r, w, m)`);
    }
    const num = (v: number | null | undefined, name: string) => {
      if (v === undefined || v === null || v === -1) return -1;
      if (!Number.isInteger(v) || v < 0) throw new Error(`${where}.${name}: invalid device number ${v}`);
      return v;
    };
    out.push({ type, major: num(d.major, 'major'), minor: num(d.minor, 'minor'), access, allow: d.allow });
  });
  return out;
}

/** The complete rule list a container gets: bundle rules, extra device nodes, runc's defaults. */
export function containerDeviceRules(spec: LinuxDeviceCgroup[] | undefined, extra: DeviceRule[] = []): DeviceRule[] {
  return [...specDeviceRules(spec), ...extra, ...DEFAULT_ALLOWED_DEVICES];
}

/** "c 1:3 rwm" (v1 devices.allow / devices.deny syntax). */
export function v1RuleString(r: DeviceRule): string {
  if (r.type === 'a') return 'a';
  const n = (x: number) => (x < 0 ? '*' : String(x));
  return `${r.type} ${n(r.major)}:${n(r.minor)} ${r.access}`;
}
