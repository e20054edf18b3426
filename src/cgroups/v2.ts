/**
 * cgroup v2 (unified hierarchy) through cgroupfs, like runc's libcontainer/cgroups/fs2. Device
 * rules need an eBPF program, which only the native addon can load (see deviceFilterLoader).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { PlanMountStep } from '../native/init-plan';
import { containerDeviceRules, type DeviceRule } from './devices';
import {
  blkioWeightToIOWeight,
  emptyStats,
  hugePageSizes,
  memorySwapToV2,
  omitZero,
  pollCounter,
  removeDirs,
  sharesToWeight,
  type CgroupManager,
  type CgroupState,
  type DestroyOptions,
  type ManagerOptions,
  needsControllers,
  rootlessIgnorable,
} from './manager';
import type { BlkioEntry, CgroupStats, LinuxResources } from './types';
import {
  allPids,
  CgroupError,
  errCode,
  exists,
  parseFlatKeyed,
  parseUint,
  parseCpuList,
  readOptional,
  readUintOptional,
  sleep,
  undoCreated,
  warnDefault,
  writeCgroupFile,
} from './util';

export type DeviceFilterLoader = (cgroupDir: string, rules: DeviceRule[]) => void;

let registeredLoader: DeviceFilterLoader | null = null;

/** Lets the native layer (or a test) provide the eBPF device filter loader. */
export function setDeviceFilterLoader(fn: DeviceFilterLoader | null): void {
  registeredLoader = fn;
}

/**
 * The loader: a registered one, else `loadDeviceFilter` from the addon wrapper when it has one.
 * Looked up at use time, so importing src/cgroups never loads the addon.
 */
function deviceFilterLoader(): DeviceFilterLoader | null {
  if (registeredLoader) return registeredLoader;
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const mod = require('../native/addon');
    if (typeof mod.loadDeviceFilter === 'function') return mod.loadDeviceFilter;
    const n = typeof mod.native === 'function' ? mod.native() : null;
    if (n && typeof n.loadDeviceFilter === 'function') return (dir: string, rules: DeviceRule[]) => n.loadDeviceFilter(dir, rules);
  } catch {}
  return null;
}

export class V2Manager implements CgroupManager {
  readonly state: CgroupState;
  private readonly warn: (m: string) => void;

  constructor(
    state: CgroupState,
    private readonly opts: ManagerOptions & { fsRoot?: string } = {},
  ) {
    this.state = state;
    this.warn = opts.warn ?? warnDefault;
  }

  private get dir(): string {
    return this.state.paths[''];
  }

  private file(name: string): string {
    return path.join(this.dir, name);
  }

  /** The cgroup2 mount root (the hierarchy's top), derived from the path we were given. */
  private get root(): string {
    return this.opts.fsRoot ?? '/sys/fs/cgroup';
  }

  create(): void {
    const created: string[] = [];
    try {
      try {
        this.mkdirEnablingControllers(created);
      } catch (e) {
        if (!this.rootlessSkip(e, false)) throw e;
        undoCreated(created);
        return;
      }
      this.set(this.opts.resources ?? {}, true);
    } catch (e) {
      undoCreated(created);
      throw e;
    }
  }

  /**
   * mkdir each level under the root, enabling every available controller in each parent's
   * cgroup.subtree_control on the way (a child only gets the controllers its parent delegates).
   */
  private mkdirEnablingControllers(created: string[]): void {
    const rel = path.relative(this.root, this.dir);
    if (rel.startsWith('..') || path.isAbsolute(rel)) throw new CgroupError(`cgroup path ${this.dir} is outside the cgroup2 mount ${this.root}`);
    const parts = rel === '' ? [] : rel.split('/');
    const avail = (readOptional(path.join(this.root, 'cgroup.controllers')) ?? '').trim().split(/\s+/).filter(Boolean);
    let cur = this.root;
    for (let i = 0; i < parts.length; i++) {
      // Enable in the parent before creating the child, one by one when the batch is refused
      // (a controller may be unavailable, e.g. cpu with RT tasks in the root): what is missing
      // surfaces later as a clear write error for the resource that needs it.
      const enable = avail.map((c) => `+${c}`).join(' ');
      if (enable) {
        try {
          writeCgroupFile(path.join(cur, 'cgroup.subtree_control'), enable);
        } catch {
          for (const c of avail) {
            try {
              writeCgroupFile(path.join(cur, 'cgroup.subtree_control'), `+${c}`);
            } catch {}
          }
        }
      }
      cur = path.join(cur, parts[i]);
      try {
        fs.mkdirSync(cur, { mode: 0o755 });
        created.push(cur);
      } catch (e) {
        if (errCode(e) !== 'EEXIST') throw new CgroupError(`mkdir ${cur}: ${(e as Error).message}`, errCode(e));
      }
    }
  }

  apply(pid: number): void {
    if (!this.dir) return; // skipped (rootless)
    try {
      writeCgroupFile(this.file('cgroup.procs'), String(pid));
    } catch (e) {
      // The cgroup was made by create() moments ago: it goes again.
      if (!this.rootlessSkip(e, true)) throw e;
    }
  }

  /**
   * runc's fs2 Apply, rootless: without cgroupsPath a cgroup we may not create or join is skipped
   * (with a warning) when no limit needs it, else refused in runc's words. Returns whether it was.
   */
  private rootlessSkip(e: unknown, remove: boolean): boolean {
    if (!rootlessIgnorable(this.opts, e)) return false;
    if (needsControllers(this.opts.resources)) {
      throw new CgroupError(`rootless needs no limits + no cgrouppath when no permission is granted for cgroups: ${(e as Error).message}`, errCode(e));
    }
    this.warn(`rootless: no permission for cgroup ${this.dir} (${(e as Error).message}): skipped, the container runs without a cgroup of its own (runc's rootless cgroup manager)`);
    if (remove) {
      try {
        fs.rmdirSync(this.dir);
      } catch {}
    }
    delete this.state.paths[''];
    return true;
  }

  update(resources: LinuxResources): void {
    this.set(resources, false);
  }

  private set(r: LinuxResources, creating: boolean): void {
    if (r.cpu) this.setCpu(r.cpu);
    if (r.cpu?.cpus) writeCgroupFile(this.file('cpuset.cpus'), r.cpu.cpus);
    if (r.cpu?.mems) writeCgroupFile(this.file('cpuset.mems'), r.cpu.mems);
    if (r.memory) this.setMemory(r.memory);
    if (r.pids && r.pids.limit !== undefined) writeCgroupFile(this.file('pids.max'), r.pids.limit > 0 ? String(r.pids.limit) : 'max');
    if (r.blockIO) this.setIo(r.blockIO);
    for (const h of r.hugepageLimits ?? []) writeCgroupFile(this.file(`hugetlb.${h.pageSize}.max`), String(h.limit));
    for (const [dev, lim] of Object.entries(r.rdma ?? {})) {
      const parts = [dev];
      if (lim.hcaHandles !== undefined) parts.push(`hca_handle=${lim.hcaHandles}`);
      if (lim.hcaObjects !== undefined) parts.push(`hca_object=${lim.hcaObjects}`);
      writeCgroupFile(this.file('rdma.max'), parts.join(' '));
    }
    if (r.network && (r.network.classID || r.network.priorities?.length)) {
      // net_cls/net_prio do not exist on v2 (runc ignores them there; a filter needs eBPF).
      this.warn('linux.resources.network is ignored on cgroup v2 (no net_cls/net_prio controllers)');
    }
    if (creating || r.devices) this.setDevices(r);
    if (r.unified) this.setUnified(r.unified);
  }

  private setCpu(c: NonNullable<LinuxResources['cpu']>): void {
    if (c.realtimePeriod || c.realtimeRuntime) {
      throw new CgroupError('linux.resources.cpu.realtimePeriod/realtimeRuntime: real-time scheduling limits are not supported on cgroup v2');
    }
    if (c.idle !== undefined && c.idle !== null) writeCgroupFile(this.file('cpu.idle'), String(c.idle));
    // An idle cgroup has no weight of its own: the kernel refuses cpu.weight then.
    if (c.shares && !c.idle) writeCgroupFile(this.file('cpu.weight'), String(sharesToWeight(c.shares)));
    let burstPending = false;
    if (c.burst !== undefined && c.burst !== null) {
      try {
        writeCgroupFile(this.file('cpu.max.burst'), String(c.burst));
      } catch (e) {
        // A burst larger than the old quota is refused: retry after cpu.max.
        if (errCode(e) !== 'EINVAL') throw e;
        burstPending = true;
      }
    }
    if (c.quota || c.period) {
      let v = c.quota && c.quota > 0 ? String(c.quota) : 'max';
      if (c.period) v += ` ${c.period}`;
      writeCgroupFile(this.file('cpu.max'), v);
      if (burstPending) writeCgroupFile(this.file('cpu.max.burst'), String(c.burst));
    } else if (burstPending) writeCgroupFile(this.file('cpu.max.burst'), String(c.burst));
  }

  private setMemory(m: NonNullable<LinuxResources['memory']>): void {
    const mem = m.limit ?? 0;
    const swapIn = m.swap ?? 0;
    if (m.checkBeforeUpdate && mem > 0) {
      const usage = readUintOptional(this.file('memory.current')) ?? 0;
      if (mem <= usage) throw new CgroupError(`rejecting memory limit ${mem} below usage ${usage}`);
    }
    const num = (v: number) => (v === 0 ? '' : v === -1 ? 'max' : String(v));
    if (mem !== 0 || swapIn !== 0) {
      const swap = memorySwapToV2(swapIn, mem);
      let swapStr = num(swap);
      // memory == swap in v1 terms: no swap at all.
      if (swapStr === '' && swap === 0 && swapIn > 0) swapStr = '0';
      if (swapStr !== '') {
        try {
          writeCgroupFile(this.file('memory.swap.max'), swapStr);
        } catch (e) {
          // Without swap accounting "max"/"0" are what we have anyway.
          if (!(errCode(e) === 'ENOENT' && (swapStr === 'max' || swapStr === '0'))) throw e;
        }
      }
      if (mem !== 0) writeCgroupFile(this.file('memory.max'), num(mem));
    }
    if (m.reservation) writeCgroupFile(this.file('memory.low'), num(m.reservation));
    if (m.kernel || m.kernelTCP) this.warn('linux.resources.memory.kernel/kernelTCP are ignored on cgroup v2');
    if (m.swappiness !== undefined && m.swappiness !== -1 && m.swappiness !== null) this.warn('linux.resources.memory.swappiness is ignored on cgroup v2');
    if (m.disableOOMKiller) this.warn('linux.resources.memory.disableOOMKiller is ignored on cgroup v2');
  }

  private setIo(b: NonNullable<LinuxResources['blockIO']>): void {
    // BFQ's io.bfq.weight takes blkio weights as they are (and per-device ones); else io.weight
    // with runc's conversion.
    const bfq = exists(this.file('io.bfq.weight'));
    if (b.weight) {
      if (bfq) writeCgroupFile(this.file('io.bfq.weight'), String(b.weight));
      else writeCgroupFile(this.file('io.weight'), String(blkioWeightToIOWeight(b.weight)));
    }
    if (b.leafWeight) this.warn('linux.resources.blockIO.leafWeight is ignored on cgroup v2');
    for (const wd of b.weightDevice ?? []) {
      if (!wd.weight) continue;
      if (bfq) writeCgroupFile(this.file('io.bfq.weight'), `${wd.major}:${wd.minor} ${wd.weight}`);
      else writeCgroupFile(this.file('io.weight'), `${wd.major}:${wd.minor} ${blkioWeightToIOWeight(wd.weight)}`);
    }
    const throttles = [
      ['throttleReadBpsDevice', 'rbps'],
      ['throttleWriteBpsDevice', 'wbps'],
      ['throttleReadIOPSDevice', 'riops'],
      ['throttleWriteIOPSDevice', 'wiops'],
    ] as const;
    for (const [key, name] of throttles) {
      for (const t of b[key] ?? []) writeCgroupFile(this.file('io.max'), `${t.major}:${t.minor} ${name}=${t.rate === 0 ? 'max' : t.rate}`);
    }
  }

  private setDevices(r: LinuxResources): void {
    const rules = containerDeviceRules(r.devices);
    const loader = deviceFilterLoader();
    if (!loader) {
      if (this.opts.rootless) return;
      // TODO(native): src/native/addon.ts must export loadDeviceFilter(cgroupDir, rules), which
      // attaches a BPF_CGROUP_DEVICE program (runc's devicefilter) to the cgroup.
      throw new CgroupError('device rules on cgroup v2 need the native eBPF loader (loadDeviceFilter in src/native/addon.ts is not available)');
    }
    try {
      loader(this.dir, rules);
    } catch (e) {
      // runc's fs2: device errors are ignored when rootless (an unprivileged user may not load
      // BPF_CGROUP_DEVICE programs); its devices are the host's nodes, bound with the user's access.
      if (!this.opts.rootless) throw e;
      this.warn(`rootless: device rules not applied (${(e as Error).message}); the container's devices are host nodes bound with the user's own access`);
    }
  }

  private setUnified(u: Record<string, string>): void {
    const avail = new Set((readOptional(this.file('cgroup.controllers')) ?? '').trim().split(/\s+/));
    for (const [k, v] of Object.entries(u)) {
      if (k.includes('/') || k === '' || k === '.' || k === '..') throw new CgroupError(`linux.resources.unified: key ${JSON.stringify(k)} must be a file name (no slashes)`);
      try {
        writeCgroupFile(this.file(k), v);
      } catch (e) {
        const c = errCode(e);
        if (c === 'ENOENT' || c === 'EACCES' || c === 'EPERM') {
          const dot = k.indexOf('.');
          if (dot <= 0) throw new CgroupError(`linux.resources.unified: key ${JSON.stringify(k)} must be in the form CONTROLLER.PARAMETER`);
          const ctrl = k.slice(0, dot);
          if (ctrl !== 'cgroup' && !avail.has(ctrl)) throw new CgroupError(`linux.resources.unified: ${JSON.stringify(k)} can't be set: controller ${JSON.stringify(ctrl)} not available`);
        }
        throw e;
      }
    }
  }

  private frozenNow(): boolean {
    const ev = parseFlatKeyed(readOptional(this.file('cgroup.events')));
    return ev.frozen === 1;
  }

  async freeze(): Promise<void> {
    writeCgroupFile(this.file('cgroup.freeze'), '1');
    // cgroup.freeze is a request: the cgroup is frozen once cgroup.events says so.
    for (let i = 0; i < 1000; i++) {
      if (this.frozenNow()) return;
      await sleep(10);
    }
    writeCgroupFile(this.file('cgroup.freeze'), '0');
    throw new CgroupError(`${this.file('cgroup.freeze')}: unable to freeze: not frozen after 10 s`);
  }

  async thaw(): Promise<void> {
    writeCgroupFile(this.file('cgroup.freeze'), '0');
    for (let i = 0; i < 1000; i++) {
      if (!this.frozenNow()) return;
      await sleep(10);
    }
    throw new CgroupError(`${this.file('cgroup.freeze')}: unable to thaw`);
  }

  isFrozen(): boolean {
    const t = readOptional(this.file('cgroup.freeze'));
    return t !== null && t.trim() === '1';
  }

  pids(): number[] {
    return allPids(this.dir);
  }

  killAll(signal: number): void {
    if (signal === 9 && exists(this.file('cgroup.kill'))) {
      writeCgroupFile(this.file('cgroup.kill'), '1');
      return;
    }
    const wasFrozen = this.isFrozen();
    // Freeze so nothing forks between listing and signalling.
    try {
      if (!wasFrozen) writeCgroupFile(this.file('cgroup.freeze'), '1');
    } catch {}
    try {
      for (const pid of this.pids()) {
        try {
          process.kill(pid, signal);
        } catch (e) {
          if (errCode(e) !== 'ESRCH') throw e;
        }
      }
    } finally {
      if (!wasFrozen) {
        try {
          writeCgroupFile(this.file('cgroup.freeze'), '0');
        } catch {}
      }
    }
  }

  stats(): CgroupStats {
    const s = emptyStats();
    const cpu = parseFlatKeyed(readOptional(this.file('cpu.stat')));
    s.cpu.usage = { ...omitZero({ total: (cpu.usage_usec ?? 0) * 1000 }), kernel: (cpu.system_usec ?? 0) * 1000, user: (cpu.user_usec ?? 0) * 1000 };
    s.cpu.throttling = omitZero({ periods: cpu.nr_periods ?? 0, throttledPeriods: cpu.nr_throttled ?? 0, throttledTime: (cpu.throttled_usec ?? 0) * 1000 });
    const raw = parseFlatKeyed(readOptional(this.file('memory.stat')));
    if (exists(this.file('memory.current'))) {
      const usage = readUintOptional(this.file('memory.current')) ?? 0;
      const limit = readUintOptional(this.file('memory.max')) ?? 0;
      const peak = readUintOptional(this.file('memory.peak')) ?? 0;
      const events = parseFlatKeyed(readOptional(this.file('memory.events')));
      const swapCur = readUintOptional(this.file('memory.swap.current'));
      const swapMax = readUintOptional(this.file('memory.swap.max'));
      const MAX = 18446744073709551615;
      s.memory = {
        ...omitZero({ cache: raw.file ?? 0 }),
        usage: { limit, ...omitZero({ usage, max: peak }), failcnt: events.max ?? 0 },
        // v1 reports memory+swap: keep that meaning for runc compatibility.
        swap: { limit: swapMax === undefined ? 0 : swapMax >= MAX || limit >= MAX ? MAX : swapMax + limit, ...omitZero({ usage: (swapCur ?? 0) + usage }), failcnt: 0 },
        kernel: { limit: 0, failcnt: 0 },
        kernelTCP: { limit: 0, failcnt: 0 },
        raw,
      };
    }
    const cur = readUintOptional(this.file('pids.current'));
    if (cur !== undefined) {
      const max = readOptional(this.file('pids.max'));
      s.pids = omitZero({ current: cur, limit: max === null || max.trim() === 'max' ? 0 : Number(max) });
    }
    const io = readOptional(this.file('io.stat'));
    if (io !== null) {
      const bytes: BlkioEntry[] = [];
      const ios: BlkioEntry[] = [];
      for (const line of io.split('\n')) {
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
    }
    for (const size of hugePageSizes()) {
      const usage = readUintOptional(this.file(`hugetlb.${size}.current`));
      if (usage === undefined) continue;
      const ev = parseFlatKeyed(readOptional(this.file(`hugetlb.${size}.events`)));
      s.hugetlb[size] = { ...omitZero({ usage, max: readUintOptional(this.file(`hugetlb.${size}.max`)) ?? 0 }), failcnt: ev.max ?? 0 };
    }
    const cpus = readOptional(this.file('cpuset.cpus.effective'));
    if (cpus !== null) {
      s.cpuset = {
        ...omitZero({ cpus: parseCpuList(cpus), mems: parseCpuList(readOptional(this.file('cpuset.mems.effective'))) }),
      } as CgroupStats['cpuset'];
    }
    return s;
  }

  watchOom(onOom: () => void): () => void {
    const file = this.file('memory.events');
    if (!exists(file)) return () => {};
    return pollCounter(() => {
      const t = readOptional(file);
      return t === null ? undefined : parseFlatKeyed(t).oom_kill ?? 0;
    }, onOom, 200, file);
  }

  async destroy(opts: DestroyOptions = {}): Promise<void> {
    await removeDirs([this.dir], opts.killLeftovers ? () => this.killAll(9) : null, opts.timeoutMs);
  }

  mountSteps(destination: string, flags: number, _newCgroupNamespace: boolean): PlanMountStep[] {
    // One cgroup2 mount: with a new cgroup namespace its root is the container's cgroup; without
    // one the whole hierarchy shows, as with runc.
    return [
      {
        kind: 'mount',
        source: 'cgroup',
        destination,
        fstype: 'cgroup2',
        flags,
        data: '',
        remountFlags: 0,
        propagation: [],
        recursiveAttrSet: 0,
        recursiveAttrClear: 0,
        sourceIsDir: true,
      },
    ];
  }
}

/**
 * The container's cgroup2 directory: an absolute cgroupsPath is relative to the mount, a
 * relative one to the parent of our own cgroup (ours most likely holds processes, so no
 * controller could be enabled below it — runc does the same).
 */
export function v2Path(root: string, selfV2: string, inner: string): string {
  if (path.posix.isAbsolute(inner)) return path.posix.join(root, inner);
  return path.posix.join(root, path.posix.dirname(selfV2 || '/'), inner);
}

