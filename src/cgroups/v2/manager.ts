/**
 * cgroup v2 (unified hierarchy) through cgroupfs, like runc's libcontainer/cgroups/fs2: the
 * manager makes the directory (enabling controllers on the way) and joins it, and each
 * controller module writes its part of linux.resources. The stats come from the one native
 * reader (stats.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { PlanMountStep } from '../../native/init-plan';
import { pollCounter, removeDirs, signalPids, type CgroupManager, type CgroupState, type DestroyOptions, type ManagerOptions, needsControllers, rootlessIgnorable } from '../manager';
import { cgroupStatsJson } from '../stats';
import type { LinuxResources } from '../types';
import { allPids, CgroupError, errCode, exists, parseFlatKeyed, readOptional, undoCreated, warnDefault, writeCgroupFile, writeCgroupFileAsync, warmMigrationLock, writeCgroupProcs } from '../util';
import { checkResources } from '../validate';
import type { V2Controller, V2SetEnv } from './controller';
import { cpu } from './cpu';
import { cpuset } from './cpuset';
import { devices } from './devices';
import { freeze, isFrozen, thaw } from './freezer';
import { hugetlb } from './hugetlb';
import { io } from './io';
import { memory } from './memory';
import { network } from './network';
import { pids } from './pids';
import { rdma } from './rdma';
import { unified } from './unified';

export { setDeviceFilterLoader, type DeviceFilterLoader } from './devices';

/** The order of the writes: cpu before cpuset, memory's swap with its limit, devices then the raw unified files last. */
const CONTROLLERS: readonly V2Controller[] = [cpu, cpuset, memory, pids, io, hugetlb, rdma, network, devices, unified];

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

  async create(): Promise<void> {
    checkResources(this.opts.resources ?? {}, 'v2', true);
    const created: string[] = [];
    try {
      try {
        await this.mkdirEnablingControllers(created);
      } catch (e) {
        if (!this.rootlessSkip(e, false)) throw e;
        await undoCreated(created);
        return;
      }
      await this.set(this.opts.resources ?? {}, true);
    } catch (e) {
      await undoCreated(created);
      throw e;
    }
  }

  /**
   * mkdir each level under the root, enabling every available controller in each parent's
   * cgroup.subtree_control on the way (a child only gets the controllers its parent delegates).
   */
  private async mkdirEnablingControllers(created: string[]): Promise<void> {
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
          await writeCgroupFileAsync(path.join(cur, 'cgroup.subtree_control'), enable);
        } catch {
          for (const c of avail) {
            try {
              await writeCgroupFileAsync(path.join(cur, 'cgroup.subtree_control'), `+${c}`);
            } catch {}
          }
        }
      }
      cur = path.join(cur, parts[i]);
      try {
        await fs.promises.mkdir(cur, { mode: 0o755 });
        created.push(cur);
      } catch (e) {
        if (errCode(e) !== 'EEXIST') throw new CgroupError(`mkdir ${cur}: ${(e as Error).message}`, errCode(e));
      }
    }
  }

  primeMigration(): Promise<string | null> {
    return this.opts.ownCgroup ? warmMigrationLock(this.opts.ownCgroup) : Promise.resolve(null);
  }

  async apply(pid: number): Promise<void> {
    if (!this.dir) return; // skipped (rootless)
    try {
      await writeCgroupProcs(this.dir, pid);
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

  async update(resources: LinuxResources): Promise<void> {
    checkResources(resources, 'v2', false);
    await this.set(resources, false);
  }

  private async set(r: LinuxResources, creating: boolean): Promise<void> {
    const env: V2SetEnv = { creating, rootless: !!this.opts.rootless, warn: this.warn };
    for (const c of CONTROLLERS) await c.set?.(this.dir, r, env);
  }

  freeze(): Promise<void> {
    return freeze(this.dir);
  }

  thaw(): Promise<void> {
    return thaw(this.dir);
  }

  isFrozen(): boolean {
    return isFrozen(this.dir);
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
      signalPids(this.pids(), signal);
    } finally {
      if (!wasFrozen) {
        try {
          writeCgroupFile(this.file('cgroup.freeze'), '0');
        } catch {}
      }
    }
  }

  statsJson(): string {
    return cgroupStatsJson('v2', { '': this.dir });
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

