/**
 * cgroup v1 (and hybrid: v1 controllers + the cgroup2 "unified" hierarchy, which only tracks
 * processes) through cgroupfs, like runc's libcontainer/cgroups/fs: the manager makes and joins
 * the directories, and each subsystem module writes its part of linux.resources. The stats come
 * from the one native reader (stats.ts).
 */
import * as path from 'node:path';
import { MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_REMOUNT } from '../../bundle/mount-options';
import type { PlanMountStep } from '../../native/init-plan';
import type { CgroupLayout, CgroupMount } from '../layout';
import { parseCgroupMounts, readMountinfo, V1_CONTROLLERS } from '../layout';
import { pollCounter, removeDirs, signalPids, type CgroupManager, type CgroupState, type DestroyOptions, type ManagerOptions, rootlessIgnorable } from '../manager';
import { cgroupStatsJson } from '../stats';
import type { LinuxResources } from '../types';
import { allPids, CgroupError, errCode, exists, mkdirRecording, parseFlatKeyed, readCgroupFile, readOptional, undoCreated, warnDefault, warmMigrationLock, writeCgroupFile, writeCgroupFilesAsync } from '../util';
import { checkResources } from '../validate';
import { blkio } from './blkio';
import type { V1SetEnv, V1Subsystem } from './controller';
import { cpu } from './cpu';
import { cpuset, mkdirCpuset } from './cpuset';
import { devices } from './devices';
import { freeze, freezeForChange, freezerState, thaw } from './freezer';
import { hugetlb } from './hugetlb';
import { memory } from './memory';
import { net_cls } from './net_cls';
import { net_prio } from './net_prio';
import { pids } from './pids';
import { rdma } from './rdma';

/** runc's order of subsystems: Set writes them in this order (cpuset before devices and memory...). */
const SUBSYSTEMS: readonly V1Subsystem[] = [cpuset, devices, memory, cpu, pids, blkio, hugetlb, net_cls, net_prio, rdma];

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

  async create(): Promise<void> {
    const created: string[] = [];
    try {
      checkResources(this.opts.resources ?? {}, 'v1', true);
      for (const [ctrl, dir] of Object.entries(this.state.paths)) {
        try {
          if (ctrl === 'cpuset') await mkdirCpuset(dir, created);
          else await mkdirRecording(dir, created);
        } catch (e) {
          if (!rootlessIgnorable(this.opts, e)) throw e;
          this.skip(ctrl, dir, e);
        }
      }
      this.warnSkipped();
      await this.set(this.opts.resources ?? {}, true);
    } catch (e) {
      await undoCreated(created);
      throw e;
    }
  }

  primeMigration(): Promise<string | null> {
    return this.opts.ownCgroup ? warmMigrationLock(this.opts.ownCgroup) : Promise.resolve(null);
  }

  async apply(pid: number): Promise<void> {
    // Every hierarchy's cgroup.procs in one batch on the thread pool; after a failure the batch
    // goes on with the hierarchies after it.
    let pending = Object.entries(this.state.paths);
    while (pending.length) {
      try {
        await writeCgroupFilesAsync(pending.map(([, dir]) => [path.join(dir, 'cgroup.procs'), String(pid)]));
        pending = [];
      } catch (e) {
        const i = (e as { index?: number }).index;
        if (i === undefined) throw e;
        const [ctrl, dir] = pending[i];
        // Rootless: a controller whose existing cgroup we may not join is skipped as at create,
        // unless a limit was set there.
        if (!rootlessIgnorable(this.opts, e) || this.limited.has(ctrl)) throw e;
        this.skip(ctrl, dir, e);
        pending = pending.slice(i + 1);
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

  async update(resources: LinuxResources): Promise<void> {
    checkResources(resources, 'v1', false);
    await this.set(resources, false);
  }

  private async set(r: LinuxResources, creating: boolean): Promise<void> {
    for (const sub of SUBSYSTEMS) {
      if (!sub.set) continue;
      const env: V1SetEnv = {
        need: () => this.need(sub.name),
        dir: this.p(sub.name),
        creating,
        rootless: !!this.opts.rootless,
        warn: this.warn,
        freezeForDeviceReset: () => this.freezeForDeviceReset(),
      };
      await sub.set(r, env);
    }
  }

  /**
   * Freezes the container for the duration of a devices "a" reset, so that none of its processes
   * can open a device while the cgroup allows everything (or nothing) in between: the change is
   * atomic for them. Returns the thaw; null when no process is in the cgroup (create) or it is
   * already frozen (paused: it stays so).
   */
  private async freezeForDeviceReset(): Promise<(() => Promise<void>) | null> {
    if (this.pids().length === 0) return null;
    const freezer = this.p('freezer');
    if (!freezer) {
      throw new CgroupError('cannot switch the device rules of a running container between allow-list and deny-list without the freezer controller: cgroup v1 would pass through allow-all or deny-all');
    }
    return freezeForChange(freezer);
  }

  /** The freezer's directory, or the error that says pause/resume cannot work without one. */
  private freezer(verb: 'pause' | 'resume'): string {
    const dir = this.p('freezer');
    if (!dir) throw new CgroupError(`the freezer controller is not mounted on this host: cannot ${verb}`);
    return dir;
  }

  freeze(): Promise<void> {
    return freeze(this.freezer('pause'));
  }

  thaw(): Promise<void> {
    return thaw(this.freezer('resume'));
  }

  isFrozen(): boolean {
    const dir = this.p('freezer');
    if (!dir) return false;
    try {
      return freezerState(dir) === 'FROZEN';
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
      signalPids(this.pids(), signal);
    } finally {
      if (froze) {
        try {
          writeCgroupFile(file, 'THAWED');
        } catch {}
      }
    }
  }

  statsJson(): string {
    return cgroupStatsJson(this.state.layout, this.state.paths);
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

/** `inner` in a hierarchy: absolute from its root, relative (or '') from our own cgroup `own`. */
export function hierarchyPath(m: CgroupMount, inner: string, own: string): string {
  if (path.posix.isAbsolute(inner)) return path.posix.join(m.mountpoint, inner);
  // Our own cgroup, seen through a mount whose root may itself be a sub-cgroup.
  let rel = own;
  if (m.root !== '/' && (rel === m.root || rel.startsWith(m.root + '/'))) rel = rel.slice(m.root.length) || '/';
  return path.posix.join(m.mountpoint, rel, inner);
}

