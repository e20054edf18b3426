/**
 * The pure half of the systemd cgroup driver (no D-Bus, no files): runc's `slice:prefix:name`
 * cgroupsPath rules, slice expansion, the unit properties a LinuxResources becomes, and the
 * `org.systemd.property.*` annotations (their values in GVariant text form, as runc parses them).
 * Property values are [name, D-Bus signature, value]; 64-bit values are bigints.
 */
import { containerDeviceRules, DeviceEmulator } from './devices';
import { memorySwapToV2, sharesToWeight } from './manager';
import type { LinuxResources } from './types';
import { CgroupError } from './util';
import * as fs from 'node:fs';
import { U64_MAX } from '../bundle/u64';

export type UnitProperty = [string, string, unknown];

/** USEC_INFINITY / "infinity" of systemd's uint64 properties. */
export { U64_MAX };

/** The prefix of the default unit, `tsrun-<id>.scope`, when cgroupsPath is empty (runc uses "runc"). */
export const DEFAULT_SCOPE_PREFIX = 'tsrun';

export interface SystemdCgroupName {
  /** The unit's parent slice as given ("" = the default: system.slice, user.slice when rootless). */
  parent: string;
  prefix: string;
  name: string;
  /** `<prefix>-<name>.scope`, or `<name>` when it ends in ".slice". */
  unit: string;
  /** The slice the unit goes into (Slice= of a scope, Wants= of a slice). */
  slice: string;
  /** The unit's cgroup relative to the manager's root: "/system.slice/tsrun-abc.scope". */
  cgroup: string;
}

/**
 * runc's specconv rules: an empty cgroupsPath is `:<prefix>:<id>` (system.slice); otherwise it must
 * be exactly three colon-separated fields.
 */
export function parseSystemdCgroupsPath(cgroupsPath: string | undefined, id: string, rootless = false): SystemdCgroupName {
  let parent = '';
  let prefix = DEFAULT_SCOPE_PREFIX;
  let name = id;
  if (cgroupsPath) {
    const parts = cgroupsPath.split(':');
    if (parts.length !== 3) {
      throw new CgroupError(`linux.cgroupsPath: expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, got ${JSON.stringify(cgroupsPath)} instead`);
    }
    [parent, prefix, name] = parts;
  }
  if (name === '') throw new CgroupError(`linux.cgroupsPath: ${JSON.stringify(cgroupsPath)}: the unit name (third field) is empty`);
  for (const [what, v] of [['slice', parent], ['prefix', prefix], ['name', name]]) {
    // Unit names never hold a slash; one here would also make the cgroup path escape the slice.
    if (v.includes('/') || v.includes('\0')) throw new CgroupError(`linux.cgroupsPath: ${JSON.stringify(cgroupsPath)}: the ${what} must not contain "/"`);
  }
  const isSlice = name.endsWith('.slice');
  const unit = isSlice ? name : `${prefix}-${name}.scope`;
  const slice = parent || (rootless ? 'user.slice' : 'system.slice');
  const slicePath = expandSlice(slice);
  // A slice's place in the tree is its own name (a-b.slice is /a.slice/a-b.slice); a scope lives in its slice.
  const cgroup = isSlice ? expandSlice(name) : `${slicePath === '/' ? '' : slicePath}/${unit}`;
  return { parent, prefix, name, unit, slice, cgroup };
}

/** runc's ExpandSlice: "a-b.slice" → "/a.slice/a-b.slice"; "-.slice" → "/". */
export function expandSlice(slice: string): string {
  const suffix = '.slice';
  const bad = () => new CgroupError(`invalid slice name: ${slice}`);
  if (slice.length < suffix.length || !slice.endsWith(suffix) || slice.includes('/')) throw bad();
  const base = slice.slice(0, -suffix.length);
  if (base === '-') return '/';
  let out = '';
  let prefix = '';
  for (const c of base.split('-')) {
    if (c === '') throw bad();
    out += `/${prefix}${c}${suffix}`;
    prefix += `${c}-`;
  }
  return out;
}

/** runc's RangeToBits: "0-3,8" → the little-endian CPU mask systemd's AllowedCPUs takes. */
export function rangeToBits(list: string, field: string): Buffer {
  const bits: number[] = [];
  for (const part of list.split(',')) {
    const p = part.trim();
    if (p === '') continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(p);
    if (!m) throw new CgroupError(`${field}=${JSON.stringify(list)} conversion error: invalid range ${JSON.stringify(p)}`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo || hi > 65535) throw new CgroupError(`${field}=${JSON.stringify(list)} conversion error: invalid range ${JSON.stringify(p)}`);
    for (let i = lo; i <= hi; i++) bits.push(i);
  }
  if (!bits.length) throw new CgroupError(`${field}=${JSON.stringify(list)} conversion error: empty list`);
  const buf = Buffer.alloc(Math.floor(Math.max(...bits) / 8) + 1);
  for (const b of bits) buf[b >> 3] |= 1 << (b & 7);
  return buf;
}

/** -1 (and anything above 2^63) is "infinity" for systemd. */
function u64(v: number): bigint {
  return v < 0 ? U64_MAX : BigInt(Math.floor(v));
}

/** runc's addCpuQuota: CPUQuotaPerSecUSec rounded up to 10 ms, CPUQuotaPeriodUSec from v242. */
function cpuQuotaProps(out: UnitProperty[], quota: number, period: number, version: () => number): void {
  if (period) {
    if (version() >= 242) out.push(['CPUQuotaPeriodUSec', 't', BigInt(period)]);
  }
  if (quota || period) {
    let perSec = U64_MAX;
    if (quota > 0) {
      const p = BigInt(period || 100000);
      perSec = (BigInt(quota) * 1000000n) / p;
      if (perSec % 10000n !== 0n) perSec = (perSec / 10000n + 1n) * 10000n;
    }
    out.push(['CPUQuotaPerSecUSec', 't', perSec]);
  }
}

function cpusetProps(out: UnitProperty[], cpus: string | undefined, mems: string | undefined, version: () => number): void {
  if (!cpus && !mems) return;
  // AllowedCPUs/AllowedMemoryNodes exist since systemd v244; older ones get the files only.
  if (version() < 244) return;
  if (cpus) out.push(['AllowedCPUs', 'ay', rangeToBits(cpus, 'resources.CPU.Cpus')]);
  if (mems) out.push(['AllowedMemoryNodes', 'ay', rangeToBits(mems, 'resources.CPU.Mems')]);
}

/**
 * runc's generateDeviceProperties: DevicePolicy=strict and DeviceAllow= the simplified allow
 * list (the eBPF program / devices.list the fs managers write stays the real enforcement).
 */
export function deviceProps(r: LinuxResources, warn: (m: string) => void, statFn: (p: string) => boolean = pathExists): UnitProperty[] {
  const emu = DeviceEmulator.fromRules(containerDeviceRules(r.devices));
  if (emu.isDenyList()) {
    if (emu.equals(DeviceEmulator.fromRules([{ type: 'a', major: -1, minor: -1, access: 'rwm', allow: true }]))) {
      return [['DevicePolicy', 's', 'auto'], ['DeviceAllow', 'a(ss)', []]];
    }
    warn("systemd doesn't support blacklist device rules -- applying temporary deny-all rule");
    return [['DevicePolicy', 's', 'strict'], ['DeviceAllow', 'a(ss)', []]];
  }
  const allow: [string, string][] = [];
  for (const line of emu.list()) {
    const m = /^([abc]) (\*|\d+):(\*|\d+) ([rwm]+)$/.exec(line);
    if (!m) continue;
    const [, type, major, minor, perms] = m;
    const prefix = type === 'b' ? 'block-' : 'char-';
    if (major === '*') {
      if (minor !== '*') {
        warn(`systemd doesn't support '*:n' device rules -- temporarily ignoring rule: ${line}`);
        continue;
      }
      allow.push([`${prefix}*`, perms]);
    } else if (minor === '*') {
      const group = deviceGroup(type as 'b' | 'c', Number(major));
      if (!group) {
        warn(`could not find device group for '${type}/${major}' in /proc/devices -- temporarily ignoring rule: ${line}`);
        continue;
      }
      allow.push([group, perms]);
    } else {
      const p = `/dev/${type === 'b' ? 'block' : 'char'}/${major}:${minor}`;
      // systemd warns about paths that do not exist; /sys/dev/... stands in for an unpopulated /dev.
      if (!statFn(p) && !statFn(`/sys${p}`)) {
        warn(`skipping device ${p} for systemd: no such device`);
        continue;
      }
      allow.push([p, perms]);
    }
  }
  return [['DevicePolicy', 's', 'strict'], ['DeviceAllow', 'a(ss)', []], ['DeviceAllow', 'a(ss)', allow]];
}

function pathExists(p: string): boolean {
  try {
    fs.statSync(p);
    return true;
  } catch {
    return false;
  }
}

/** "char-pts" for (c, 136), from /proc/devices. */
export function deviceGroup(type: 'b' | 'c', major: number, text?: string): string {
  let t = text;
  if (t === undefined) {
    try {
      t = fs.readFileSync('/proc/devices', 'utf8');
    } catch {
      return '';
    }
  }
  let cur = '';
  for (const raw of t.split('\n')) {
    const line = raw.trim();
    if (line === 'Character devices:') cur = 'c';
    else if (line === 'Block devices:') cur = 'b';
    else if (line && cur === type) {
      const m = /^(\d+)\s+(\S+)$/.exec(line);
      if (m && Number(m[1]) === major) return `${type === 'b' ? 'block-' : 'char-'}${m[2]}`;
    }
  }
  return '';
}

export interface ResourcePropsOptions {
  v2: boolean;
  /** systemd's version (Manager.Version), asked only when a property depends on it. */
  version: () => number;
  warn: (m: string) => void;
  /** create, or an update that carries devices: the device properties too. */
  devices: boolean;
}

/** runc's genV2ResourcesProperties / genV1ResourcesProperties. */
export function resourceProps(r: LinuxResources, o: ResourcePropsOptions): UnitProperty[] {
  const out: UnitProperty[] = [];
  if (o.devices) out.push(...deviceProps(r, o.warn));
  const mem = r.memory?.limit ?? 0;
  const cpu = r.cpu ?? {};
  if (o.v2) {
    if (mem) out.push(['MemoryMax', 't', u64(mem)]);
    if (r.memory?.reservation) out.push(['MemoryLow', 't', u64(r.memory.reservation)]);
    if (r.memory && (r.memory.swap || mem)) {
      const swap = memorySwapToV2(r.memory.swap ?? 0, mem);
      if (swap !== 0) out.push(['MemorySwapMax', 't', u64(swap)]);
    }
    if (cpu.shares) out.push(['CPUWeight', 't', BigInt(sharesToWeight(cpu.shares))]);
  } else {
    if (mem) out.push(['MemoryLimit', 't', u64(mem)]);
    if (cpu.shares) out.push(['CPUShares', 't', BigInt(cpu.shares)]);
  }
  cpuQuotaProps(out, cpu.quota ?? 0, cpu.period ?? 0, o.version);
  if (!o.v2 && r.blockIO?.weight) out.push(['BlockIOWeight', 't', BigInt(r.blockIO.weight)]);
  const pids = r.pids?.limit;
  if (pids !== undefined && (pids > 0 || pids === -1)) out.push(['TasksMax', 't', u64(pids)]);
  cpusetProps(out, cpu.cpus, cpu.mems, o.version);
  if (o.v2 && r.unified) out.push(...unifiedProps(r.unified, o.version));
  return out;
}

/**
 * runc's unifiedResToSystemdProps: the unified keys systemd has a property for (the rest: files
 * only). That a key is a file name was checked before (validate.ts checkResources).
 */
export function unifiedProps(u: Record<string, string>, version: () => number): UnitProperty[] {
  const out: UnitProperty[] = [];
  const uint = (k: string, v: string): bigint => {
    if (v === 'max') return U64_MAX;
    if (!/^\d+$/.test(v)) throw new CgroupError(`linux.resources.unified: unified resource ${JSON.stringify(k)} value conversion error: ${JSON.stringify(v)} is not a number`);
    return BigInt(v);
  };
  const mem: Record<string, string> = { 'memory.high': 'MemoryHigh', 'memory.low': 'MemoryLow', 'memory.min': 'MemoryMin', 'memory.max': 'MemoryMax', 'memory.swap.max': 'MemorySwapMax' };
  for (const [k, raw] of Object.entries(u)) {
    if (!k.includes('.')) throw new CgroupError(`linux.resources.unified: unified resource ${JSON.stringify(k)} must be in the form CONTROLLER.PARAMETER`);
    const v = raw.trim();
    if (k === 'cpu.max') {
      const f = v.split(/\s+/).filter(Boolean);
      if (f.length < 1 || f.length > 2) throw new CgroupError(`linux.resources.unified: unified resource "cpu.max" value invalid: ${JSON.stringify(v)}`);
      const quota = f[0] === 'max' ? 0 : Number(uint(k, f[0]));
      const period = f.length === 2 ? Number(uint(k, f[1])) : 100000;
      cpuQuotaProps(out, quota, period, version);
    } else if (k === 'cpu.weight') out.push(['CPUWeight', 't', uint(k, v)]);
    else if (k === 'cpuset.cpus' || k === 'cpuset.mems') {
      if (version() >= 244) out.push([k === 'cpuset.cpus' ? 'AllowedCPUs' : 'AllowedMemoryNodes', 'ay', rangeToBits(v, `unified resource ${JSON.stringify(k)}`)]);
    } else if (mem[k]) out.push([mem[k], 't', uint(k, v)]);
    else if (k === 'pids.max') out.push(['TasksMax', 't', uint(k, v)]);
  }
  return out;
}

// ---------------------------------------------------------------- org.systemd.property.* annotations

const ANNOTATION_PREFIX = 'org.systemd.property.';

/**
 * runc's initSystemdProps: every `org.systemd.property.<Name>` annotation is a unit property whose
 * value is GVariant text ("uint64 123", "true", "'s'", "['a', 'b']", "@as []"); a name ending in
 * lowercase+"Sec" becomes "...USec" with its number scaled to microseconds.
 */
export function annotationProps(annotations: Record<string, string> | undefined): UnitProperty[] {
  const out: UnitProperty[] = [];
  for (const [k, v] of Object.entries(annotations ?? {})) {
    if (!k.startsWith(ANNOTATION_PREFIX)) continue;
    let name = k.slice(ANNOTATION_PREFIX.length);
    if (name.length < 3) throw new CgroupError(`annotation ${k} name incorrect: too short`);
    if (!/^[A-Za-z]+$/.test(name)) throw new CgroupError(`annotation ${k} name incorrect: contains non-alphabetic character`);
    let parsed: { sig: string; value: unknown };
    try {
      parsed = parseGVariant(v);
    } catch (e) {
      throw new CgroupError(`annotation ${k}=${v} value parse error: ${(e as Error).message}`);
    }
    if (name.endsWith('Sec') && /[a-z]/.test(name[name.length - 4] ?? '')) {
      name = `${name.slice(0, -3)}USec`;
      const M = 1000000n;
      const x = parsed.value;
      if (!'ynqiuxtd'.includes(parsed.sig) || parsed.sig.length !== 1) throw new CgroupError(`annotation ${k}=${v} value parse error: not a number`);
      const usec = parsed.sig === 'd' ? BigInt(Math.floor((x as number) * 1e6)) : BigInt(x as number | bigint) * M;
      parsed = { sig: 't', value: usec };
    }
    out.push([name, parsed.sig, parsed.value]);
  }
  return out;
}

const TYPE_KEYWORDS: Record<string, string> = { byte: 'y', int16: 'n', uint16: 'q', int32: 'i', uint32: 'u', int64: 'x', uint64: 't', handle: 'h', boolean: 'b', double: 'd', objectpath: 'o', signature: 'g' };

/** A GVariant text value (the subset runc's godbus ParseVariant accepts for unit properties). */
export function parseGVariant(text: string): { sig: string; value: unknown } {
  const p = new GVariantParser(text);
  const r = p.value(undefined);
  p.ws();
  if (p.i !== text.length) throw new Error(`unexpected ${JSON.stringify(text.slice(p.i))}`);
  if (r.sig === '') throw new Error('cannot infer the type of an empty array (use @as [])');
  return r;
}

class GVariantParser {
  i = 0;
  constructor(private readonly s: string) {}

  ws(): void {
    while (this.i < this.s.length && /\s/.test(this.s[this.i])) this.i++;
  }

  private word(): string {
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.s.slice(this.i));
    return m ? m[0] : '';
  }

  /** One value; `want` is the expected signature when known (array elements, annotations). */
  value(want: string | undefined): { sig: string; value: unknown } {
    this.ws();
    const c = this.s[this.i];
    if (c === undefined) throw new Error('unexpected end of input');
    if (c === '@') {
      this.i++;
      const start = this.i;
      while (this.i < this.s.length && !/\s/.test(this.s[this.i])) this.i++;
      const sig = this.s.slice(start, this.i);
      return this.value(sig);
    }
    const w = this.word();
    if (TYPE_KEYWORDS[w]) {
      this.i += w.length;
      return this.value(TYPE_KEYWORDS[w]);
    }
    if (w === 'true' || w === 'false') {
      this.i += w.length;
      if (want && want !== 'b') throw new Error(`boolean where ${want} is expected`);
      return { sig: 'b', value: w === 'true' };
    }
    if (c === "'" || c === '"') return this.str(want);
    if (c === '[') return this.array(want);
    if (/[-+0-9.]/.test(c)) return this.num(want);
    throw new Error(`unexpected ${JSON.stringify(this.s.slice(this.i))}`);
  }

  private str(want: string | undefined): { sig: string; value: unknown } {
    const q = this.s[this.i++];
    let out = '';
    for (;;) {
      const c = this.s[this.i++];
      if (c === undefined) throw new Error('unterminated string');
      if (c === q) break;
      if (c === '\\') {
        const e = this.s[this.i++];
        const map: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', v: '\v' };
        if (e === undefined) throw new Error('unterminated string');
        out += map[e] ?? e;
      } else out += c;
    }
    const sig = want ?? 's';
    if (!'sog'.includes(sig) || sig.length !== 1) throw new Error(`string where ${sig} is expected`);
    return { sig, value: out };
  }

  private num(want: string | undefined): { sig: string; value: unknown } {
    const m = /^[-+]?(0x[0-9a-fA-F]+|\d+(\.\d*)?([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?)/.exec(this.s.slice(this.i));
    if (!m) throw new Error(`bad number ${JSON.stringify(this.s.slice(this.i))}`);
    this.i += m[0].length;
    const isFloat = /[.eE]/.test(m[0]) && !/^[-+]?0x/.test(m[0]);
    const sig = want ?? (isFloat ? 'd' : 'i');
    if (sig === 'd') return { sig, value: Number(m[0]) };
    if (!'ynqiuxth'.includes(sig) || sig.length !== 1) throw new Error(`number where ${sig} is expected`);
    if (isFloat) throw new Error(`${m[0]} is not an integer`);
    const neg = m[0].startsWith('-');
    const big = BigInt(m[0].replace(/^[-+]/, '')) * (neg ? -1n : 1n);
    const ranges: Record<string, [bigint, bigint]> = {
      y: [0n, 255n], n: [-32768n, 32767n], q: [0n, 65535n], i: [-(2n ** 31n), 2n ** 31n - 1n], h: [-(2n ** 31n), 2n ** 31n - 1n],
      u: [0n, 2n ** 32n - 1n], x: [-(2n ** 63n), 2n ** 63n - 1n], t: [0n, U64_MAX],
    };
    const [lo, hi] = ranges[sig];
    if (big < lo || big > hi) throw new Error(`${m[0]} out of range for ${sig}`);
    return { sig, value: sig === 'x' || sig === 't' ? big : Number(big) };
  }

  private array(want: string | undefined): { sig: string; value: unknown } {
    if (want && !want.startsWith('a')) throw new Error(`array where ${want} is expected`);
    let elem = want ? want.slice(1) : undefined;
    this.i++;
    const items: unknown[] = [];
    this.ws();
    if (this.s[this.i] === ']') {
      this.i++;
      return { sig: elem ? `a${elem}` : '', value: items };
    }
    for (;;) {
      const v = this.value(elem);
      if (elem === undefined) elem = v.sig;
      else if (v.sig !== elem) throw new Error(`array elements of different types (${elem}, ${v.sig})`);
      items.push(v.value);
      this.ws();
      const c = this.s[this.i++];
      if (c === ']') break;
      if (c !== ',') throw new Error('expected "," or "]" in an array');
    }
    return { sig: `a${elem}`, value: elem === 'y' ? Buffer.from(items as number[]) : items };
  }
}
