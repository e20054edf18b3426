/**
 * cgroup v1 (and hybrid: v1 controllers + the cgroup2 "unified" hierarchy, which only tracks
 * processes) through cgroupfs, like runc's libcontainer/cgroups/fs.
 */
import * as path from 'node:path';
import { MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_REMOUNT } from '../bundle/mount-options';
import type { PlanMountStep } from '../native/init-plan';
import { containerDeviceRules, DeviceEmulator, v1RuleString } from './devices';
import type { CgroupLayout, CgroupMount } from './layout';
import { parseCgroupMounts, readMountinfo, V1_CONTROLLERS } from './layout';
import {
  emptyStats,
  hugePageSizes,
  omitZero,
  pollCounter,
  removeDirs,
  type CgroupManager,
  type CgroupState,
  type DestroyOptions,
  type ManagerOptions,
  rootlessIgnorable,
} from './manager';
import type { BlkioEntry, BlkioStats, CgroupStats, LinuxResources, MemoryEntry } from './types';
import {
  allPids,
  CgroupError,
  errCode,
  exists,
  mkdirRecording,
  parseCpuList,
  parseFlatKeyed,
  parseUint,
  readCgroupFile,
  readOptional,
  readUintOptional,
  sleep,
  undoCreated,
  warnDefault,
  writeCgroupFile,
} from './util';

/** runc's Set order of subsystems. */
const SET_ORDER = ['cpuset', 'devices', 'memory', 'cpu', 'pids', 'blkio', 'hugetlb', 'net_cls', 'net_prio', 'rdma'];

export class V1Manager implements CgroupManager {
  readonly state: CgroupState;
  private readonly warn: (m: string) => void;

  constructor(
    state: CgroupState,
    private readonly opts: ManagerOptions = {},
  ) {
    this.state = state;
    this.warn = opts.warn ?? warnDefault;
  }

  private p(ctrl: string): string | undefined {
    return this.state.paths[ctrl];
  }

  /** Path of a controller that must be there for a resource the config asks for. */
  private need(ctrl: string): string {
    const d = this.p(ctrl);
    // runc's wording when a controller is not mounted on the host.
    if (!d && this.skipped.has(ctrl)) throw new CgroupError(`cannot set ${ctrl} limit: container could not join or create cgroup`);
    if (!d) throw new CgroupError(`cannot set ${ctrl} limit: container could not join or create cgroup (the ${ctrl} controller is not mounted on this host)`);
    this.limited.add(ctrl);
    return d;
  }

  private uniqueDirs(): string[] {
    return [...new Set(Object.values(this.state.paths))];
  }

  create(): void {
    const created: string[] = [];
    try {
      if (this.opts.resources?.unified && Object.keys(this.opts.resources.unified).length) {
        throw new CgroupError('linux.resources.unified: invalid configuration: cannot use unified on cgroup v1');
      }
      for (const [ctrl, dir] of Object.entries(this.state.paths)) {
        try {
          if (ctrl === 'cpuset') this.mkdirCpuset(dir, created);
          else mkdirRecording(dir, created);
        } catch (e) {
          if (!rootlessIgnorable(this.opts, e)) throw e;
          this.skip(ctrl, dir, e);
        }
      }
      this.warnSkipped();
      this.set(this.opts.resources ?? {}, true);
    } catch (e) {
      undoCreated(created);
      throw e;
    }
  }

  /**
   * A cpuset cgroup with empty cpuset.cpus/mems refuses tasks (ENOSPC). New levels start empty,
   * and so may a parent someone made beforehand: every level from the hierarchy root down gets
   * the values of its nearest ancestor that has them, as runc's cpuset ensureParent does.
   */
  private mkdirCpuset(dir: string, created: string[]): void {
    mkdirRecording(dir, created);
    const chain: string[] = [];
    for (let d = dir; readOptional(path.join(d, 'cpuset.cpus')) !== null; d = path.dirname(d)) {
      chain.unshift(d);
      if (path.dirname(d) === d) break;
    }
    for (const f of ['cpuset.cpus', 'cpuset.mems']) {
      let inherited = '';
      for (const d of chain) {
        const mine = (readOptional(path.join(d, f)) ?? '').trim();
        if (mine !== '') inherited = mine;
        else if (inherited !== '') writeCgroupFile(path.join(d, f), inherited);
      }
    }
  }

  apply(pid: number): void {
    for (const [ctrl, dir] of Object.entries(this.state.paths)) {
      try {
        writeCgroupFile(path.join(dir, 'cgroup.procs'), String(pid));
      } catch (e) {
        // Rootless: a controller whose existing cgroup we may not join is skipped as at create,
        // unless a limit was set there.
        if (!rootlessIgnorable(this.opts, e) || this.limited.has(ctrl)) throw e;
        this.skip(ctrl, dir, e);
      }
    }
    this.warnSkipped();
  }

  /** Controllers skipped (rootless, no permission) and not yet warned about. */
  private readonly skipped = new Set<string>();
  private unwarned: { ctrl: string; why: string }[] = [];
  /** Controllers a limit was written to at create. */
  private readonly limited = new Set<string>();

  private skip(ctrl: string, dir: string, e: unknown): void {
    delete this.state.paths[ctrl];
    this.skipped.add(ctrl);
    // Without cgroupsPath the container's processes stay in our own cgroup, the parent of the
    // one we could not make: that is what a cgroup mount shows them (runc's view too).
    this.ownCgroup[ctrl] = path.dirname(dir);
    this.unwarned.push({ ctrl: ctrl || 'unified', why: (e as Error).message });
  }

  private warnSkipped(): void {
    if (!this.unwarned.length) return;
    const [first, ...rest] = this.unwarned;
    const ctrls = this.unwarned.map((u) => u.ctrl).join(',');
    this.warn(`rootless: no permission for cgroups (${first.why}${rest.length ? `, and as much for ${rest.length} more` : ''}): the container runs without a cgroup of its own for ${ctrls} (runc's rootless cgroup manager)`);
    this.unwarned = [];
  }

  /** Skipped controllers: the cgroup the container's processes are in instead (our own). */
  private readonly ownCgroup: Record<string, string> = {};

  update(resources: LinuxResources): void {
    if (resources.unified && Object.keys(resources.unified).length) {
      throw new CgroupError('invalid configuration: cannot use unified on cgroup v1');
    }
    this.set(resources, false);
  }

  private set(r: LinuxResources, creating: boolean): void {
    for (const sub of SET_ORDER) {
      switch (sub) {
        case 'cpuset':
          if (r.cpu?.cpus !== undefined && r.cpu.cpus !== '') writeCgroupFile(path.join(this.need('cpuset'), 'cpuset.cpus'), r.cpu.cpus);
          if (r.cpu?.mems !== undefined && r.cpu.mems !== '') writeCgroupFile(path.join(this.need('cpuset'), 'cpuset.mems'), r.cpu.mems);
          break;
        case 'devices':
          if (creating || r.devices) this.setDevices(r);
          break;
        case 'memory':
          if (r.memory) this.setMemory(r.memory);
          break;
        case 'cpu':
          if (r.cpu) this.setCpu(r.cpu);
          break;
        case 'pids':
          if (r.pids && r.pids.limit !== undefined) {
            writeCgroupFile(path.join(this.need('pids'), 'pids.max'), r.pids.limit > 0 ? String(r.pids.limit) : 'max');
          }
          break;
        case 'blkio':
          if (r.blockIO) this.setBlkio(r.blockIO);
          break;
        case 'hugetlb':
          for (const h of r.hugepageLimits ?? []) {
            writeCgroupFile(path.join(this.need('hugetlb'), `hugetlb.${h.pageSize}.limit_in_bytes`), String(h.limit));
          }
          break;
        case 'net_cls':
          if (r.network?.classID) writeCgroupFile(path.join(this.need('net_cls'), 'net_cls.classid'), String(r.network.classID));
          break;
        case 'net_prio':
          for (const p of r.network?.priorities ?? []) {
            writeCgroupFile(path.join(this.need('net_prio'), 'net_prio.ifpriomap'), `${p.name} ${p.priority}`);
          }
          break;
        case 'rdma':
          for (const [dev, lim] of Object.entries(r.rdma ?? {})) {
            const parts = [dev];
            if (lim.hcaHandles !== undefined) parts.push(`hca_handle=${lim.hcaHandles}`);
            if (lim.hcaObjects !== undefined) parts.push(`hca_object=${lim.hcaObjects}`);
            writeCgroupFile(path.join(this.need('rdma'), 'rdma.max'), parts.join(' '));
          }
          break;
      }
    }
  }

  /**
   * runc's fs DevicesGroup.Set: the target is the config's rules with runc's defaults appended
   * (the same on create and on update, so an update can never lock out /dev/null), reached from
   * what devices.list shows by the emulator's minimal transition, then checked against
   * devices.list. Written in create(), before the init joins the cgroup: the container's first
   * instruction already runs under the rules.
   */
  private setDevices(r: LinuxResources): void {
    // Built first: a bad rule (or one cgroup v1 would silently ignore) is an error everywhere.
    const target = DeviceEmulator.fromRules(containerDeviceRules(r.devices));
    const dir = this.p('devices');
    if (!dir) {
      if (this.opts.rootless) return;
      throw new CgroupError('cannot set devices limit: the devices controller is not mounted on this host');
    }
    const listFile = path.join(dir, 'devices.list');
    try {
      const current = DeviceEmulator.fromList(readCgroupFile(listFile));
      const steps = current.transition(target);
      if (steps.length) {
        // An "a" reset passes through allow-all or deny-all: freeze whoever could see it.
        const reset = steps.some((s) => s.type === 'a');
        const thaw = reset ? this.freezeForDeviceReset() : null;
        let written = 0;
        try {
          for (const rule of steps) {
            writeCgroupFile(path.join(dir, rule.allow ? 'devices.allow' : 'devices.deny'), v1RuleString(rule));
            written++;
          }
        } catch (e) {
          // Stopped after a reset: the cgroup may allow more than either rule set. Fail closed
          // (deny all), then back to the old rules when devices.list showed them all.
          if (reset && written > 0) {
            try {
              writeCgroupFile(path.join(dir, 'devices.deny'), 'a');
              if (!current.isDenyList()) for (const rule of new DeviceEmulator().transition(current)) writeCgroupFile(path.join(dir, 'devices.allow'), v1RuleString(rule));
            } catch {}
          }
          throw e;
        } finally {
          thaw?.();
        }
      }
      // runc's final check: the kernel must show exactly the target (a deny-list only shows its mode).
      const now = DeviceEmulator.fromList(readCgroupFile(listFile));
      if (target.isDenyList() ? !now.isDenyList() : !now.equals(target)) {
        throw new CgroupError(`${listFile}: the device rules in force (${now.list().join(', ')}) are not the ones configured (${target.list().join(', ')})`);
      }
    } catch (e) {
      // runc ignores device cgroup errors when rootless: it cannot work there.
      if (this.opts.rootless) return;
      throw e;
    }
  }

  /**
   * Freezes the container for the duration of a devices "a" reset, so that none of its processes
   * can open a device while the cgroup allows everything (or nothing) in between: the change is
   * atomic for them. Returns the thaw; null when no process is in the cgroup (create) or it is
   * already frozen (paused: it stays so). Synchronous, like the rest of update.
   */
  private freezeForDeviceReset(): (() => void) | null {
    if (this.pids().length === 0) return null;
    const freezer = this.p('freezer');
    if (!freezer) {
      throw new CgroupError('cannot switch the device rules of a running container between allow-list and deny-list without the freezer controller: cgroup v1 would pass through allow-all or deny-all');
    }
    const file = path.join(freezer, 'freezer.state');
    if (readCgroupFile(file).trim() === 'FROZEN') return null;
    const pause = new Int32Array(new SharedArrayBuffer(4));
    for (let i = 0; i < 500; i++) {
      if (i % 50 === 0) writeCgroupFile(file, 'FROZEN');
      if (readCgroupFile(file).trim() === 'FROZEN') return () => writeCgroupFile(file, 'THAWED');
      Atomics.wait(pause, 0, 0, 10);
    }
    writeCgroupFile(file, 'THAWED');
    throw new CgroupError(`${file}: could not freeze the container (still FREEZING after 5 s) to change its device rules atomically; they were not changed`);
  }

  private setMemory(m: NonNullable<LinuxResources['memory']>): void {
    const dir = this.need('memory');
    const limitFile = path.join(dir, 'memory.limit_in_bytes');
    const swFile = path.join(dir, 'memory.memsw.limit_in_bytes');
    const mem = m.limit ?? 0;
    let swap = m.swap ?? 0;
    // -1 memory with no swap given means "unlimited both" (runc), when swap accounting exists.
    if (mem === -1 && swap === 0 && exists(swFile)) swap = -1;
    if (m.checkBeforeUpdate && mem > 0) {
      const usage = readUintOptional(path.join(dir, 'memory.usage_in_bytes')) ?? 0;
      if (mem <= usage) throw new CgroupError(`rejecting memory limit ${mem} below usage ${usage}`);
    }
    const setMem = () => {
      if (mem === 0) return;
      try {
        writeCgroupFile(limitFile, String(mem));
      } catch (e) {
        if (errCode(e) !== 'EBUSY') throw e;
        // EBUSY: below current usage. Say so, as runc does.
        const usage = readUintOptional(path.join(dir, 'memory.usage_in_bytes'));
        const peak = readUintOptional(path.join(dir, 'memory.max_usage_in_bytes'));
        throw new CgroupError(`${limitFile}: write ${mem}: unable to set memory limit to ${mem} (current usage: ${usage}, peak usage: ${peak})`, 'EBUSY');
      }
    };
    const setSwap = () => {
      if (swap === 0) return;
      writeCgroupFile(swFile, String(swap));
    };
    // The kernel demands memory <= memsw at every step: order the two writes accordingly.
    if (mem !== 0 && swap !== 0) {
      const cur = parseUint(readCgroupFile(limitFile));
      if (swap === -1 || cur < swap) {
        setSwap();
        setMem();
      } else {
        setMem();
        setSwap();
      }
    } else {
      setMem();
      setSwap();
    }
    for (const [key, file] of [
      ['kernel', 'memory.kmem.limit_in_bytes'],
      ['kernelTCP', 'memory.kmem.tcp.limit_in_bytes'],
    ] as const) {
      const v = m[key];
      if (v === undefined || v === 0) continue;
      try {
        writeCgroupFile(path.join(dir, file), String(v));
      } catch (e) {
        // Kernel memory limits are deprecated (and refused since Linux 6.1): warn, do not fail.
        const c = errCode(e);
        if (c === 'ENOENT' || c === 'EOPNOTSUPP' || c === 'ENOTSUP' || c === 'EINVAL' || (e as Error).message.includes('524')) {
          this.warn(`linux.resources.memory.${key} ignored: ${(e as Error).message}`);
        } else throw e;
      }
    }
    if (m.reservation !== undefined && m.reservation !== 0) writeCgroupFile(path.join(dir, 'memory.soft_limit_in_bytes'), String(m.reservation));
    if (m.disableOOMKiller) writeCgroupFile(path.join(dir, 'memory.oom_control'), '1');
    if (m.swappiness !== undefined && m.swappiness !== null && m.swappiness !== -1) {
      if (!(m.swappiness >= 0 && m.swappiness <= 100)) {
        throw new CgroupError(`linux.resources.memory.swappiness: invalid value:${m.swappiness}. valid memory swappiness range is 0-100`);
      }
      writeCgroupFile(path.join(dir, 'memory.swappiness'), String(m.swappiness));
    }
    if (m.useHierarchy !== undefined) {
      const want = m.useHierarchy ? '1' : '0';
      const file = path.join(dir, 'memory.use_hierarchy');
      // Recent kernels fix use_hierarchy at 1 and refuse any write of 0; writing the value already
      // there is a no-op we can skip.
      if ((readOptional(file) ?? '').trim() !== want) writeCgroupFile(file, want);
    }
  }

  private setCpu(c: NonNullable<LinuxResources['cpu']>): void {
    const needsCpu = c.shares || c.quota || c.period || c.burst !== undefined || c.idle !== undefined || c.realtimePeriod || c.realtimeRuntime;
    if (!needsCpu) return;
    const dir = this.need('cpu');
    // RT first: a period/runtime pair must fit before tasks may join (runc sets it at Apply).
    if (c.realtimePeriod) writeCgroupFile(path.join(dir, 'cpu.rt_period_us'), String(c.realtimePeriod));
    if (c.realtimeRuntime) writeCgroupFile(path.join(dir, 'cpu.rt_runtime_us'), String(c.realtimeRuntime));
    if (c.shares) {
      const f = path.join(dir, 'cpu.shares');
      writeCgroupFile(f, String(c.shares));
      // The kernel clamps silently; runc reports the clamp as an error.
      const got = parseUint(readCgroupFile(f));
      if (c.shares > got) throw new CgroupError(`${f}: write ${c.shares}: the maximum allowed cpu-shares is ${got}`);
      if (c.shares < got) throw new CgroupError(`${f}: write ${c.shares}: the minimum allowed cpu-shares is ${got}`);
    }
    let retryPeriod = false;
    if (c.period) {
      try {
        writeCgroupFile(path.join(dir, 'cpu.cfs_period_us'), String(c.period));
      } catch (e) {
        // A shorter period can exceed the parent's quota with the old quota: retry after the quota.
        if (errCode(e) !== 'EINVAL' || !c.quota) throw e;
        retryPeriod = true;
      }
    }
    if (c.quota) {
      writeCgroupFile(path.join(dir, 'cpu.cfs_quota_us'), String(c.quota));
      if (retryPeriod) writeCgroupFile(path.join(dir, 'cpu.cfs_period_us'), String(c.period));
    }
    if (c.burst !== undefined && c.burst !== null) writeCgroupFile(path.join(dir, 'cpu.cfs_burst_us'), String(c.burst));
    if (c.idle !== undefined && c.idle !== null) writeCgroupFile(path.join(dir, 'cpu.idle'), String(c.idle));
  }

  private setBlkio(b: NonNullable<LinuxResources['blockIO']>): void {
    const needs =
      b.weight || b.leafWeight || b.weightDevice?.length || b.throttleReadBpsDevice?.length || b.throttleWriteBpsDevice?.length || b.throttleReadIOPSDevice?.length || b.throttleWriteIOPSDevice?.length;
    if (!needs) return;
    const dir = this.need('blkio');
    // CFQ's blkio.weight, or BFQ's blkio.bfq.weight when CFQ is gone (runc picks the same way).
    const bfq = !exists(path.join(dir, 'blkio.weight')) && exists(path.join(dir, 'blkio.bfq.weight'));
    const weightFile = bfq ? 'blkio.bfq.weight' : 'blkio.weight';
    const weightDevFile = bfq ? 'blkio.bfq.weight_device' : 'blkio.weight_device';
    if (b.weight) writeCgroupFile(path.join(dir, weightFile), String(b.weight));
    if (b.leafWeight) writeCgroupFile(path.join(dir, 'blkio.leaf_weight'), String(b.leafWeight));
    for (const wd of b.weightDevice ?? []) {
      if (wd.weight) writeCgroupFile(path.join(dir, weightDevFile), `${wd.major}:${wd.minor} ${wd.weight}`);
      if (wd.leafWeight) writeCgroupFile(path.join(dir, 'blkio.leaf_weight_device'), `${wd.major}:${wd.minor} ${wd.leafWeight}`);
    }
    const throttles = [
      ['throttleReadBpsDevice', 'blkio.throttle.read_bps_device'],
      ['throttleWriteBpsDevice', 'blkio.throttle.write_bps_device'],
      ['throttleReadIOPSDevice', 'blkio.throttle.read_iops_device'],
      ['throttleWriteIOPSDevice', 'blkio.throttle.write_iops_device'],
    ] as const;
    for (const [key, file] of throttles) {
      for (const t of b[key] ?? []) writeCgroupFile(path.join(dir, file), `${t.major}:${t.minor} ${t.rate}`);
    }
  }

  private freezerState(): string {
    const dir = this.p('freezer');
    if (!dir) throw new CgroupError('the freezer controller is not mounted on this host: cannot pause');
    return readCgroupFile(path.join(dir, 'freezer.state')).trim();
  }

  async freeze(): Promise<void> {
    const dir = this.p('freezer');
    if (!dir) throw new CgroupError('the freezer controller is not mounted on this host: cannot pause');
    const file = path.join(dir, 'freezer.state');
    // A cgroup can stay FREEZING while a task is in an uninterruptible sleep: rewrite FROZEN
    // periodically, and after ~10 s give up and thaw rather than leave it half frozen.
    for (let i = 0; i < 1000; i++) {
      if (i % 50 === 0) writeCgroupFile(file, 'FROZEN');
      const st = readCgroupFile(file).trim();
      if (st === 'FROZEN') return;
      await sleep(10);
    }
    writeCgroupFile(file, 'THAWED');
    throw new CgroupError(`${file}: unable to freeze: still FREEZING after 10 s`);
  }

  async thaw(): Promise<void> {
    const dir = this.p('freezer');
    if (!dir) throw new CgroupError('the freezer controller is not mounted on this host: cannot resume');
    const file = path.join(dir, 'freezer.state');
    for (let i = 0; i < 1000; i++) {
      if (i % 50 === 0) writeCgroupFile(file, 'THAWED');
      if (readCgroupFile(file).trim() === 'THAWED') return;
      await sleep(10);
    }
    throw new CgroupError(`${file}: unable to thaw`);
  }

  isFrozen(): boolean {
    if (!this.p('freezer')) return false;
    try {
      return this.freezerState() === 'FROZEN';
    } catch (e) {
      if (errCode(e) === 'ENOENT') return false;
      throw e;
    }
  }

  /** The hierarchy used to list processes: freezer (what pause acts on), else any. */
  private procsDir(): string | undefined {
    return this.p('freezer') ?? this.p('pids') ?? this.p('name=systemd') ?? this.p('') ?? Object.values(this.state.paths)[0];
  }

  pids(): number[] {
    const d = this.procsDir();
    return d ? allPids(d) : [];
  }

  killAll(signal: number): void {
    // Hybrid: the unified hierarchy has cgroup.kill (5.14+), which cannot miss a forking task.
    const unified = this.p('');
    if (signal === 9 && unified && exists(path.join(unified, 'cgroup.kill'))) {
      try {
        writeCgroupFile(path.join(unified, 'cgroup.kill'), '1');
        return;
      } catch (e) {
        if (errCode(e) === 'ENOENT') return;
      }
    }
    // Otherwise freeze so nothing forks between listing and signalling, then thaw (runc does).
    const freezer = this.p('freezer');
    const file = freezer ? path.join(freezer, 'freezer.state') : '';
    let froze = false;
    if (file && exists(file) && readCgroupFile(file).trim() === 'THAWED') {
      try {
        writeCgroupFile(file, 'FROZEN');
        froze = true;
      } catch {}
    }
    try {
      for (const pid of this.pids()) {
        try {
          process.kill(pid, signal);
        } catch (e) {
          if (errCode(e) !== 'ESRCH') throw e;
        }
      }
    } finally {
      if (froze) {
        try {
          writeCgroupFile(file, 'THAWED');
        } catch {}
      }
    }
  }

  stats(): CgroupStats {
    const s = emptyStats();
    const cpuacct = this.p('cpuacct');
    if (cpuacct) {
      const total = readUintOptional(path.join(cpuacct, 'cpuacct.usage')) ?? 0;
      const percpu = (readOptional(path.join(cpuacct, 'cpuacct.usage_percpu')) ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
      const pk: number[] = [];
      const pu: number[] = [];
      // "cpu user system" rows, nanoseconds.
      for (const line of (readOptional(path.join(cpuacct, 'cpuacct.usage_all')) ?? '').split('\n').slice(1)) {
        const f = line.trim().split(/\s+/);
        if (f.length === 3) {
          pu.push(Number(f[1]));
          pk.push(Number(f[2]));
        }
      }
      // cpuacct.stat is in USER_HZ (100 a second on Linux).
      const st = parseFlatKeyed(readOptional(path.join(cpuacct, 'cpuacct.stat')));
      s.cpu.usage = {
        ...omitZero({ total, percpu, percpu_kernel: pk, percpu_user: pu }),
        kernel: (st.system ?? 0) * 10_000_000,
        user: (st.user ?? 0) * 10_000_000,
      };
    }
    const cpu = this.p('cpu');
    if (cpu) {
      const st = parseFlatKeyed(readOptional(path.join(cpu, 'cpu.stat')));
      s.cpu.throttling = omitZero({ periods: st.nr_periods ?? 0, throttledPeriods: st.nr_throttled ?? 0, throttledTime: st.throttled_time ?? 0 });
    }
    const cpuset = this.p('cpuset');
    if (cpuset) {
      const n = (f: string) => Number((readOptional(path.join(cpuset, f)) ?? '0').trim()) || 0;
      s.cpuset = {
        ...omitZero({ cpus: parseCpuList(readOptional(path.join(cpuset, 'cpuset.cpus'))) }),
        cpu_exclusive: n('cpuset.cpu_exclusive'),
        ...omitZero({ mems: parseCpuList(readOptional(path.join(cpuset, 'cpuset.mems'))) }),
        mem_hardwall: n('cpuset.mem_hardwall'),
        mem_exclusive: n('cpuset.mem_exclusive'),
        memory_migrate: n('cpuset.memory_migrate'),
        memory_spread_page: n('cpuset.memory_spread_page'),
        memory_spread_slab: n('cpuset.memory_spread_slab'),
        memory_pressure: n('cpuset.memory_pressure'),
        sched_load_balance: n('cpuset.sched_load_balance'),
        sched_relax_domain_level: n('cpuset.sched_relax_domain_level'),
      } as CgroupStats['cpuset'];
    }
    const mem = this.p('memory');
    if (mem && exists(path.join(mem, 'memory.stat'))) {
      const raw = parseFlatKeyed(readOptional(path.join(mem, 'memory.stat')));
      const entry = (prefix: string): MemoryEntry => {
        const u = readUintOptional(path.join(mem, `${prefix}.usage_in_bytes`));
        const limit = readUintOptional(path.join(mem, `${prefix}.limit_in_bytes`)) ?? 0;
        const failcnt = readUintOptional(path.join(mem, `${prefix}.failcnt`)) ?? 0;
        const max = readUintOptional(path.join(mem, `${prefix}.max_usage_in_bytes`)) ?? 0;
        return { limit, ...omitZero({ usage: u ?? 0, max }), failcnt };
      };
      s.memory = {
        ...omitZero({ cache: raw.cache ?? 0 }),
        usage: entry('memory'),
        swap: entry('memory.memsw'),
        kernel: entry('memory.kmem'),
        kernelTCP: entry('memory.kmem.tcp'),
        raw,
      };
    }
    const pids = this.p('pids');
    if (pids) {
      const max = readOptional(path.join(pids, 'pids.max'));
      s.pids = omitZero({ current: readUintOptional(path.join(pids, 'pids.current')) ?? 0, limit: max === null || max.trim() === 'max' ? 0 : Number(max) });
    }
    const blkio = this.p('blkio');
    if (blkio) s.blkio = blkioStats(blkio);
    const hugetlb = this.p('hugetlb');
    if (hugetlb) {
      for (const size of hugePageSizes()) {
        const f = (x: string) => readUintOptional(path.join(hugetlb, `hugetlb.${size}.${x}`)) ?? 0;
        s.hugetlb[size] = { ...omitZero({ usage: f('usage_in_bytes'), max: f('max_usage_in_bytes') }), failcnt: f('failcnt') };
      }
    }
    return s;
  }

  watchOom(onOom: () => void): () => void {
    const mem = this.p('memory');
    if (!mem) return () => {};
    // memory.oom_control has an oom_kill counter (4.13+): polling it is exact, unlike under_oom
    // which is only set while the OOM killer is disabled. Without eventfd, this is the way.
    const file = path.join(mem, 'memory.oom_control');
    let lastUnder = 0;
    let rises = 0;
    return pollCounter(() => {
      const t = readOptional(file);
      if (t === null) return undefined;
      const kv = parseFlatKeyed(t);
      // With the OOM killer disabled nothing is killed: entering under_oom is the event then.
      const under = kv.under_oom ?? 0;
      if (under && !lastUnder) rises++;
      lastUnder = under;
      return (kv.oom_kill ?? 0) + rises;
    }, onOom);
  }

  async destroy(opts: DestroyOptions = {}): Promise<void> {
    await removeDirs(this.uniqueDirs(), opts.killLeftovers ? () => this.killAll(9) : null, opts.timeoutMs);
  }

  mountSteps(destination: string, flags: number, newCgroupNamespace: boolean): PlanMountStep[] {
    const dest = destination.replace(/\/+$/, '') || '/';
    const steps: PlanMountStep[] = [];
    const base = (m: Omit<Extract<PlanMountStep, { kind: 'mount' }>, 'kind' | 'propagation' | 'recursiveAttrSet' | 'recursiveAttrClear' | 'remountFlags'> & { remountFlags?: number }): PlanMountStep => ({
      kind: 'mount',
      propagation: [],
      recursiveAttrSet: 0,
      recursiveAttrClear: 0,
      remountFlags: 0,
      ...m,
    });
    // runc: a tmpfs (its default flags, mode=755) holding one mount per hierarchy.
    steps.push(base({ source: 'tmpfs', destination: dest, fstype: 'tmpfs', flags: MS_NOSUID | MS_NODEV | MS_NOEXEC, data: 'mode=755', sourceIsDir: true }));
    const mounts = parseCgroupMounts(readMountinfo()).filter((m) => m.fstype === 'cgroup');
    const comounted: string[] = [];
    const seen = new Set<string>();
    for (const m of mounts) {
      const dirOf = (c: string) => this.state.paths[c] ?? this.ownCgroup[c];
      const ctrl = m.controllers.find((c) => dirOf(c) !== undefined);
      if (!ctrl || seen.has(m.mountpoint)) continue;
      seen.add(m.mountpoint);
      const name = path.basename(m.mountpoint);
      const target = `${dest}/${name}`;
      if (newCgroupNamespace) {
        // In its own cgroup namespace the container mounts the hierarchy itself: its root is
        // then the container's cgroup.
        const data = name === 'systemd' ? 'name=systemd' : name;
        steps.push(base({ source: name === 'systemd' ? 'systemd' : 'cgroup', destination: target, fstype: 'cgroup', flags: MS_NOSUID | MS_NODEV | MS_NOEXEC | (flags & MS_RDONLY), data, sourceIsDir: true }));
      } else {
        const remount = flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
        steps.push(base({ source: dirOf(ctrl)!, destination: target, fstype: '', flags: MS_BIND | MS_REC, data: '', remountFlags: remount, sourceIsDir: true }));
      }
      if (name.includes(',')) comounted.push(name);
    }
    // "cpu,cpuacct" is reachable as cpu and cpuacct too (symlinks, as on the host).
    for (const mc of comounted) {
      for (const ss of mc.split(',')) if (ss !== mc) steps.push({ kind: 'symlink', target: mc, linkPath: `${dest}/${ss}` });
    }
    return steps;
  }
}

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
  // CFQ files when present and non-empty, else BFQ's, else the throttle ones (runc's order).
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

/**
 * The container's directory in every v1 hierarchy (runc's cgroup paths): an absolute cgroupsPath
 * is relative to each hierarchy root, a relative one to the cgroup of the calling process.
 */
export function v1Paths(mounts: CgroupMount[], self: Record<string, string>, inner: string, layout: CgroupLayout): Record<string, string> {
  const paths: Record<string, string> = {};
  for (const ctrl of V1_CONTROLLERS) {
    const m = mounts.find((x) => x.fstype === 'cgroup' && x.controllers.includes(ctrl));
    if (!m) continue;
    paths[ctrl] = hierarchyPath(m, inner, self[ctrl] ?? '/');
  }
  if (layout === 'hybrid') {
    const u = mounts.find((x) => x.fstype === 'cgroup2');
    if (u) paths[''] = hierarchyPath(u, inner, self[''] ?? '/');
  }
  return paths;
}

function hierarchyPath(m: CgroupMount, inner: string, own: string): string {
  if (path.posix.isAbsolute(inner)) return path.posix.join(m.mountpoint, inner);
  // Our own cgroup, seen through a mount whose root may itself be a sub-cgroup.
  let rel = own;
  if (m.root !== '/' && (rel === m.root || rel.startsWith(m.root + '/'))) rel = rel.slice(m.root.length) || '/';
  return path.posix.join(m.mountpoint, rel, inner);
}

