/**
 * Device cgroup rules: the spec's linux.resources.devices with runc's default allow list appended
 * (specconv.CreateCgroupConfig), as v1 devices.allow/deny lines or as a rule list for the v2 eBPF
 * program; and runc's cgroup v1 "devices" emulator, which turns the current state of a cgroup and
 * a target rule list into the minimal sequence of writes between them.
 */
import type { LinuxDeviceCgroup } from './types';
import { CgroupError } from './util';

/**
 * Order of device types. Plain comparison: the first String#localeCompare in a process builds an
 * ICU collator (12 ms here), and the types are single ASCII letters.
 */
const byType = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

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
    // runc's parser keeps the r, w and m it finds and ignores other letters ("rwa" is "rw"); a
    // string with none of them fails there (never read as "rwm"), and is refused here.
    if (d.access !== undefined && typeof d.access !== 'string') throw new Error(`${where}.access: must be a string`);
    const given = d.access ?? '';
    const access = given === '' ? 'rwm' : ['r', 'w', 'm'].filter((c) => given.includes(c)).join('');
    if (access === '') throw new Error(`${where}.access: ${JSON.stringify(given)} has none of r, w, m`);
    const num = (v: number | null | undefined, name: string) => {
      if (v === undefined || v === null || v === -1) return -1;
      if (!Number.isInteger(v) || v < 0) throw new Error(`${where}.${name}: invalid device number ${v}`);
      return v;
    };
    out.push({ type, major: num(d.major, 'major'), minor: num(d.minor, 'minor'), access, allow: d.allow });
  });
  return out;
}

/**
 * The complete rule list a container gets, as runc's specconv.CreateCgroupConfig builds it: the
 * bundle's rules in order, then runc's defaults appended (so a config can never lock out
 * /dev/null, and a deny-all config still gets the defaults). Device nodes of linux.devices get no
 * rule: runc 1.1 does not allow them in the device cgroup (containerd and dockerd add an explicit
 * resources.devices rule for each device they pass). runc also drops a default whose path
 * (/dev/null, ...) linux.devices redefines; we keep it: the default devices are harmless and the
 * manager does not know linux.devices.
 */
export function containerDeviceRules(spec: LinuxDeviceCgroup[] | undefined): DeviceRule[] {
  return [...specDeviceRules(spec), ...DEFAULT_ALLOWED_DEVICES.map((r) => ({ ...r }))];
}

/** "c 1:3 rwm" (v1 devices.allow / devices.deny syntax). */
export function v1RuleString(r: DeviceRule): string {
  if (r.type === 'a') return 'a';
  const n = (x: number) => (x < 0 ? '*' : String(x));
  return `${r.type} ${n(r.major)}:${n(r.minor)} ${r.access}`;
}

// ---- runc's libcontainer/cgroups/devices emulator (cgroup v1 semantics) -------------------------

const ACC_R = 4;
const ACC_W = 2;
const ACC_M = 1;

function accBits(access: string): number {
  let a = 0;
  for (const ch of access) a |= ch === 'r' ? ACC_R : ch === 'w' ? ACC_W : ch === 'm' ? ACC_M : 0;
  return a;
}

function accString(a: number): string {
  return (a & ACC_R ? 'r' : '') + (a & ACC_W ? 'w' : '') + (a & ACC_M ? 'm' : '');
}

interface Meta {
  type: 'b' | 'c';
  major: number;
  minor: number;
}

const metaKey = (m: Meta) => `${m.type} ${m.major} ${m.minor}`;
const num = (x: number) => (x < 0 ? '*' : String(x));

/**
 * The state of a v1 devices cgroup: a default (deny = allow-list mode, allow = deny-list mode)
 * and exceptions to it, with the kernel's semantics: a rule of the default's verdict removes
 * (part of) an exception, the other verdict adds one, "a" resets to a default with no exception.
 * Like runc, removing part of a wildcard exception is refused: the kernel silently ignores it,
 * which would leave a device open that the config denies.
 */
export class DeviceEmulator {
  private defaultAllow = false;
  private rules = new Map<string, { meta: Meta; acc: number }>();

  /** runc's buildEmulator: an allow-list with nothing allowed, then every rule in order. */
  static fromRules(rules: readonly DeviceRule[]): DeviceEmulator {
    const e = new DeviceEmulator();
    for (const r of rules) e.apply(r);
    return e;
  }

  /**
   * From devices.list. A deny-list cgroup shows only "a *:* rwm" (its exceptions are not
   * listed), so it reads back as allow-all, as in runc's EmulatorFromList.
   */
  static fromList(text: string): DeviceEmulator {
    const e = new DeviceEmulator();
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (!line) continue;
      const m = /^([abc]) (\*|\d+):(\*|\d+) ([rwm]+)$/.exec(line);
      if (!m) throw new CgroupError(`devices.list: malformed rule ${JSON.stringify(line)}`);
      const n = (x: string) => (x === '*' ? -1 : Number(x));
      e.apply({ allow: true, type: m[1] as DeviceRule['type'], major: n(m[2]), minor: n(m[3]), access: m[4] });
    }
    return e;
  }

  clone(): DeviceEmulator {
    const e = new DeviceEmulator();
    e.defaultAllow = this.defaultAllow;
    for (const [k, v] of this.rules) e.rules.set(k, { meta: { ...v.meta }, acc: v.acc });
    return e;
  }

  isDenyList(): boolean {
    return this.defaultAllow;
  }

  equals(o: DeviceEmulator): boolean {
    if (this.defaultAllow !== o.defaultAllow || this.rules.size !== o.rules.size) return false;
    for (const [k, v] of this.rules) if (o.rules.get(k)?.acc !== v.acc) return false;
    return true;
  }

  /**
   * One rule, as a write to devices.allow/deny. `strict` (the default, for configs) refuses what
   * the kernel would silently ignore; false replays a write as the kernel does it.
   */
  apply(rule: DeviceRule, strict = true): void {
    if (rule.type === 'a') {
      this.defaultAllow = rule.allow;
      this.rules.clear();
      return;
    }
    const meta: Meta = { type: rule.type, major: rule.major < 0 ? -1 : rule.major, minor: rule.minor < 0 ? -1 : rule.minor };
    const acc = accBits(rule.access);
    if (rule.allow === this.defaultAllow) this.remove(meta, acc, rule, strict);
    else this.add(meta, acc);
  }

  private add(meta: Meta, acc: number): void {
    const k = metaKey(meta);
    const cur = this.rules.get(k);
    this.rules.set(k, { meta, acc: (cur?.acc ?? 0) | acc });
  }

  private remove(meta: Meta, acc: number, rule: DeviceRule, strict: boolean): void {
    const partials: Meta[] = [
      { type: meta.type, major: -1, minor: meta.minor },
      { type: meta.type, major: meta.major, minor: -1 },
      { type: meta.type, major: -1, minor: -1 },
    ];
    for (const p of strict ? partials : []) {
      if (metaKey(p) === metaKey(meta)) continue;
      const w = this.rules.get(metaKey(p));
      if (w && w.acc & acc) {
        const mode = this.defaultAllow ? 'deny' : 'allow';
        throw new CgroupError(
          `device rule ${rule.allow ? 'allow' : 'deny'} ${v1RuleString(rule)}: cannot punch a hole in the wildcard ${mode} rule ${p.type} ${num(p.major)}:${num(p.minor)} ${accString(w.acc)} (cgroup v1 would silently ignore it)`,
          'EINVAL',
        );
      }
    }
    const k = metaKey(meta);
    const cur = this.rules.get(k);
    if (!cur) return;
    const left = cur.acc & ~acc;
    if (left) cur.acc = left;
    else this.rules.delete(k);
  }

  /** Whether the kernel lets `access` to the device through (match_exception[_partial]). */
  allows(type: 'b' | 'c', major: number, minor: number, access: string): boolean {
    const acc = accBits(access);
    for (const { meta, acc: ex } of this.rules.values()) {
      if (meta.type !== type || (meta.major >= 0 && meta.major !== major) || (meta.minor >= 0 && meta.minor !== minor)) continue;
      // Allow-list: one exception must cover all of it; deny-list: any overlap denies.
      if (!this.defaultAllow && (acc & ~ex) === 0) return true;
      if (this.defaultAllow && acc & ex) return false;
    }
    return this.defaultAllow;
  }

  /** The devices.list the kernel would show. */
  list(): string[] {
    if (this.defaultAllow) return ['a *:* rwm'];
    return this.ordered().map(({ meta, acc }) => `${meta.type} ${num(meta.major)}:${num(meta.minor)} ${accString(acc)}`);
  }

  private ordered(): { meta: Meta; acc: number }[] {
    return [...this.rules.values()].sort((a, b) => a.meta.major - b.meta.major || a.meta.minor - b.meta.minor || byType(a.meta.type, b.meta.type));
  }

  /**
   * runc's Transition: the writes that take this state to `target`. Between two allow-lists no
   * reset: first what is dropped, then what is gained, so every intermediate state allows at most
   * what both allow, then grows to the target. A change of mode, or a deny-list source (whose
   * exceptions devices.list does not show), needs an "a" reset first: only then are there
   * intermediate states allowing more than the target (after "allow a"), or less than both.
   */
  transition(target: DeviceEmulator): DeviceRule[] {
    const out: DeviceRule[] = [];
    let old = this.rules;
    const rule = (meta: Meta, acc: number, allow: boolean): DeviceRule => ({ type: meta.type, major: meta.major, minor: meta.minor, access: accString(acc), allow });
    if (this.defaultAllow || this.defaultAllow !== target.defaultAllow) {
      out.push({ type: 'a', major: -1, minor: -1, access: 'rwm', allow: target.defaultAllow });
      old = new Map();
    }
    const oldSorted = [...old.values()].sort((a, b) => a.meta.major - b.meta.major || a.meta.minor - b.meta.minor || byType(a.meta.type, b.meta.type));
    for (const { meta, acc } of oldSorted) {
      const dropped = acc & ~(target.rules.get(metaKey(meta))?.acc ?? 0);
      if (dropped) out.push(rule(meta, dropped, target.defaultAllow));
    }
    for (const { meta, acc } of target.ordered()) {
      const gained = acc & ~(old.get(metaKey(meta))?.acc ?? 0);
      if (gained) out.push(rule(meta, gained, !target.defaultAllow));
    }
    return out;
  }
}
