/**
 * The Manager interface shared by the v1/hybrid and v2 implementations, and the parts of them
 * that do not depend on the cgroup version (OOM polling, destroy retries).
 */
import * as fs from 'node:fs';
import type { PlanMountStep } from '../native/init-plan';
import type { CgroupLayout } from './layout';
import type { LinuxRdma, LinuxResources } from './types';
import { errCode, errnoText, rmdirTree, sleep } from './util';

export interface CgroupState {
  layout: CgroupLayout;
  /**
   * Absolute host directories of the container's cgroup, runc's cgroup_paths: one key per v1
   * controller ("cpu", "memory", "name=systemd", ...), "" for the cgroup2 one (v2, and the
   * unified hierarchy of a hybrid host).
   */
  paths: Record<string, string>;
  /** The systemd driver's transient unit (absent: the fs driver). */
  systemd?: import('./systemd').SystemdUnitState;
}

export interface DestroyOptions {
  /** SIGKILL whatever is still in the cgroup between retries (off by default: delete decides). */
  killLeftovers?: boolean;
  /** Give up after this long (default 5 s). */
  timeoutMs?: number;
}

export interface CgroupManager {
  readonly state: CgroupState;
  /** mkdir and the limits, on the thread pool; a failure removes what it made. */
  create(): Promise<void>;
  apply(pid: number): Promise<void>;
  /**
   * Starts warming the kernel's migration lock for apply (util.ts warmMigrationLock), not to be
   * awaited; nothing for a loaded manager (resolves null) or systemd's.
   */
  primeMigration(): Promise<string | null>;
  /** New limits, in the same order of writes as create; under withRollback all or nothing. */
  update(resources: LinuxResources): Promise<void>;
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  isFrozen(): boolean;
  pids(): number[];
  killAll(signal: number): void;
  /** runc's `events --stats` data as JSON (stats.ts: uint64 counters exact; parseStats for numbers). */
  statsJson(): string;
  watchOom(onOom: () => void): () => void;
  destroy(opts?: DestroyOptions): Promise<void>;
  mountSteps(destination: string, flags: number, newCgroupNamespace: boolean): PlanMountStep[];
}

export interface ManagerOptions {
  resources?: LinuxResources;
  /**
   * runc's rootless cgroup manager: without an explicit cgroupsPath, a cgroup (v1: a controller's)
   * that cannot be created or joined for lack of permission is skipped with a warning, and only
   * a limit that needs it fails; device rules are never fatal.
   */
  rootless?: boolean;
  /** linux.cgroupsPath was given: then no permission error is ever skipped (runc's rule). */
  cgroupsPathGiven?: boolean;
  warn?: (msg: string) => void;
  /** Our own cgroup in one hierarchy (a new container's manager): what primeMigration writes. */
  ownCgroup?: string;
}

/** runc's isIgnorableError: a permission error (EPERM, EACCES, EROFS) of a rootless manager without cgroupsPath. */
export function rootlessIgnorable(opts: ManagerOptions, e: unknown): boolean {
  if (!opts.rootless || opts.cgroupsPathGiven) return false;
  const code = (e as NodeJS.ErrnoException)?.code;
  return code === 'EPERM' || code === 'EACCES' || code === 'EROFS';
}

/** runc's needAnyControllers: does any resource other than device rules ask for something? */
export function needsControllers(r: LinuxResources | undefined): boolean {
  const given = (v: unknown): boolean =>
    v !== undefined && v !== null && v !== 0 && v !== '' && !(Array.isArray(v) && v.length === 0) && !(typeof v === 'object' && !Array.isArray(v) && !Object.values(v as object).some(given));
  return Object.entries(r ?? {}).some(([k, v]) => k !== 'devices' && given(v));
}

/**
 * Removes every directory, retrying while the last processes are still exiting (rmdir returns
 * EBUSY until the kernel has dropped them from the cgroup). Idempotent: a missing dir is done.
 */
export async function removeDirs(dirs: string[], killAll: (() => void) | null, timeoutMs = 5000): Promise<void> {
  // Deepest first, so that a nested path (parent/child both ours) goes in the right order.
  const pending = [...new Set(dirs.filter(Boolean))].sort((a, b) => b.length - a.length);
  if (!pending.length) return; // nothing (e.g. rootless: every controller skipped)
  const deadline = Date.now() + timeoutMs;
  let delay = 10;
  let lastErr: Map<string, unknown> = new Map();
  while (pending.length) {
    lastErr = new Map();
    for (let i = 0; i < pending.length; ) {
      try {
        await rmdirTree(pending[i]);
        pending.splice(i, 1);
      } catch (e) {
        lastErr.set(pending[i], e);
        i++;
      }
    }
    if (!pending.length) return;
    if (Date.now() >= deadline) break;
    if (killAll) {
      try {
        killAll();
      } catch {}
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 200);
  }
  const why = pending.map((d) => `${d}: ${errnoText(lastErr.get(d))}`).join('; ');
  const busy = pending.some((d) => errCode(lastErr.get(d)) === 'EBUSY');
  throw new Error(`failed to remove cgroup ${why}${busy ? ' (processes are still in it)' : ''}`);
}

/**
 * Polls a counter (the kernel's oom_kill count) and calls onOom once per increase. Polling is what
 * we have without an eventfd in Node; 200 ms is well under the default events interval.
 */
export function pollCounter(read: () => number | undefined, onOom: () => void, intervalMs = 200, watchFile?: string): () => void {
  let last = read() ?? 0;
  let stopped = false;
  const check = () => {
    if (stopped) return;
    let now: number | undefined;
    try {
      now = read();
    } catch {
      return;
    }
    if (now !== undefined && now > last) {
      last = now;
      onOom();
    } else if (now !== undefined) last = now;
  };
  const timer = setInterval(check, intervalMs);
  timer.unref();
  let watcher: { close(): void } | null = null;
  if (watchFile) {
    // cgroup2 files signal modifications through inotify: faster than the poll, same check.
    try {
      const w = fs.watch(watchFile, { persistent: false }, () => check());
      w.on('error', () => {});
      watcher = w;
    } catch {}
  }
  return () => {
    if (stopped) return;
    // A last look: an OOM kill that ended the container may have happened since the last poll.
    check();
    stopped = true;
    clearInterval(timer);
    watcher?.close();
  };
}

/** Sends `signal` to each pid; one that has exited meanwhile (ESRCH) is no error. */
export function signalPids(pids: number[], signal: number): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch (e) {
      if (errCode(e) !== 'ESRCH') throw e;
    }
  }
}

/** pids.max (the same file on v1 and v2): 0 or less is no limit. */
export function pidsMaxValue(limit: number): string {
  return limit > 0 ? String(limit) : 'max';
}

/** One rdma.max line (the same syntax on v1 and v2): "<device> hca_handle=N hca_object=N". */
export function rdmaMaxLine(device: string, lim: LinuxRdma): string {
  const parts = [device];
  if (lim.hcaHandles !== undefined) parts.push(`hca_handle=${lim.hcaHandles}`);
  if (lim.hcaObjects !== undefined) parts.push(`hca_object=${lim.hcaObjects}`);
  return parts.join(' ');
}

/** runc's cgroups.ConvertCPUSharesToCgroupV2Value: [2, 262144] → [1, 10000]. */
export function sharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  return 1 + Math.floor(((shares - 2) * 9999) / 262142);
}

/** runc's cgroups.ConvertBlkIOToIOWeightValue: [10, 1000] → [1, 10000]. */
export function blkioWeightToIOWeight(weight: number): number {
  if (weight === 0) return 0;
  return 1 + Math.floor(((weight - 10) * 9999) / 990);
}

/** runc's ConvertMemorySwapToCgroupV2Value: v1 memsw (memory+swap) → v2 swap.max (swap only). */
export function memorySwapToV2(swap: number, memory: number): number {
  // -1 memory with no swap given: "unlimited both", as on v1.
  if (memory === -1 && swap === 0) return -1;
  if (swap === -1 || swap === 0) return swap;
  if (memory === 0 || memory === -1) throw new Error('linux.resources.memory.swap: unable to set swap limit without memory limit');
  if (memory < 0) throw new Error(`linux.resources.memory.limit: invalid memory value: ${memory}`);
  if (swap < memory) throw new Error(`linux.resources.memory.swap: memory+swap limit (${swap}) should be >= memory limit (${memory})`);
  return swap - memory;
}
