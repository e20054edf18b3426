/**
 * Small cgroupfs helpers shared by the v1 and v2 managers: writes whose errors name the file and
 * the value (the one thing a user needs to fix a bad config), tolerant readers, runc's CleanPath.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { channel } from 'node:diagnostics_channel';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** strerror(3) texts (glibc wording, as runc/Go print them) for the errnos cgroupfs returns. */
const ERRNO_TEXT: Record<string, string> = {
  EINVAL: 'invalid argument',
  EBUSY: 'device or resource busy',
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on device',
  EROFS: 'read-only file system',
  ERANGE: 'numerical result out of range',
  EOPNOTSUPP: 'operation not supported',
  ENOTSUP: 'operation not supported',
  ENODEV: 'no such device',
  ENXIO: 'no such device or address',
  ESRCH: 'no such process',
  EEXIST: 'file exists',
  ENOTDIR: 'not a directory',
  EIO: 'input/output error',
  ENOMEM: 'cannot allocate memory',
  EAGAIN: 'resource temporarily unavailable',
  E2BIG: 'argument list too long',
  EFBIG: 'file too large',
  EISDIR: 'is a directory',
};

export function errnoText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err && err.code && ERRNO_TEXT[err.code]) return ERRNO_TEXT[err.code];
  // The kernel's internal ENOTSUPP (524) leaks out of some cgroup v1 files (kmem limits).
  if (err && (err.errno === -524 || err.errno === 524)) return 'unknown error 524';
  if (err && err.code) return err.code.toLowerCase();
  return String((e as Error)?.message ?? e);
}

export function errCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException)?.code;
}

/** An error carrying the errno code of the failed syscall (so callers can still branch on it). */
export class CgroupError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'CgroupError';
  }
}

/** "<file>: write <value>: <errno text>": what every failed write of a cgroup file says. */
function writeError(file: string, value: string, e: unknown): CgroupError {
  return new CgroupError(`${file}: write ${value}: ${errnoText(e)}`, errCode(e));
}

/** While an update runs: the value each file had before its first write in it (per update). */
type Journal = { file: string; before: string }[];
// Created on the first update: most CLI calls never write a cgroup file.
let journals: AsyncLocalStorage<Journal> | undefined;

/**
 * Runs `fn` (an update's writes) so that a failure half-way restores, in reverse order, every
 * single-value file it had already written (runc's Set re-applies the old config for the same
 * reason: a container must not end up half-updated). Multi-line files (throttle lists, device
 * rules) are not journaled: their writes are changes, not values; device rules have their own
 * transition. The journal belongs to this call's async context, so that concurrent updates of
 * different containers in one process (the shim) never restore one another's files.
 */
export async function withRollback<T>(fn: () => Promise<T>): Promise<T> {
  journals ??= new AsyncLocalStorage<Journal>();
  if (journals.getStore()) return fn();
  const written: Journal = [];
  try {
    return await journals.run(written, fn);
  } catch (e) {
    for (const { file, before } of written.reverse()) {
      try {
        await writeCgroupFileAsync(file, before);
      } catch {
        // Best effort: the error that matters is the one that stopped the update.
      }
    }
    throw e;
  }
}

/**
 * Writes one value to a cgroup file in a single write(2) (cgroupfs parses each write as a whole),
 * synchronously: for kill and freeze. Never creates the file: a missing interface file is an
 * error, not an empty regular file. Errors read "<file>: write <value>: <errno text>".
 */
export function writeCgroupFile(file: string, value: string): void {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_TRUNC);
  } catch (e) {
    throw writeError(file, value, e);
  }
  try {
    fs.writeSync(fd, value);
  } catch (e) {
    throw writeError(file, value, e);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Writes of a cgroup's create and update (and of a process into cgroup.procs), in order, on
 * libuv's thread pool as one piece of work (addon/native/files.cc): cgroupfs writes take the
 * kernel's cgroup locks, and with 20 containers being made at once they took a large share of
 * a millisecond each; a daemon's event loop must not wait for them. Same file semantics and
 * errors as writeCgroupFile; stops at the first failure. Under withRollback each file's value is
 * journaled first.
 */
export async function writeCgroupFilesAsync(files: [file: string, value: string][]): Promise<void> {
  if (files.length === 0) return;
  const journal = journals?.getStore();
  if (journal) {
    for (const [file] of files) {
      if (journal.some((j) => j.file === file)) continue;
      let before: string | undefined;
      try {
        // Write-only files (devices.allow/deny, cgroup.kill…) cannot be read: nothing to restore.
        before = readOptional(file)?.trim();
      } catch {}
      if (before !== undefined && before !== '' && !before.includes('\n')) journal.push({ file, before });
    }
  }
  // Loaded when first written, not when src/cgroups is imported (CLI start-up: see index.ts).
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { native } = require('../native/addon') as typeof import('../native/addon');
  if (writeChannel().hasSubscribers) writeChannel().publish({ phase: 'write', files: files.length });
  try {
    await native().writeFiles(files);
  } catch (e) {
    const i = (e as { index?: number }).index;
    if (i === undefined) throw e;
    // `index`: how many of the files were written before the one that failed.
    throw Object.assign(writeError(files[i][0], files[i][1], e), { index: i });
  } finally {
    if (writeChannel().hasSubscribers) writeChannel().publish({ phase: 'written' });
  }
}

/** One file: writeCgroupFilesAsync of one. */
export function writeCgroupFileAsync(file: string, value: string): Promise<void> {
  return writeCgroupFilesAsync([[file, value]]);
}

/** TSRUN_TRACE's probe (src/cli/trace-probes.ts) of the thread pool's cgroup writes. */
export const CGROUP_WRITE_CHANNEL = 'tsrun:cgroup-write';
let cgroupWriteChannel: ReturnType<typeof channel> | undefined;
const writeChannel = () => (cgroupWriteChannel ??= channel(CGROUP_WRITE_CHANNEL));

/**
 * Moves a process into a cgroup: its pid into `cgroup.procs`, on the thread pool. The kernel
 * migrates the task during the write (with cpusets, on a loaded host, many ms).
 */
export function writeCgroupProcs(dir: string, pid: number): Promise<void> {
  return writeCgroupFileAsync(path.join(dir, 'cgroup.procs'), String(pid));
}

/**
 * The first write to any cgroup.procs after a quiet spell waits for an RCU grace period: the
 * kernel takes cgroup_threadgroup_rwsem (one lock for every hierarchy, v1 and v2) for writing,
 * and its rcu_sync first waits for a grace period (6-16 ms measured on this VM; runc pays it on
 * its first cgroup.procs write as well). A writer within about a grace period of the last one
 * does not wait. So a create starts a write that moves nothing (our own pid into the cgroup we
 * are already in), on the thread pool, as it spawns the init: the container's placement a few ms
 * later finds the lock warm. It holds cgroup_mutex while it waits, so it starts only after the
 * container's directories exist (a mkdir would wait behind it). Its outcome is ignored: without
 * permission there is no warm-up, nothing else (the promise never rejects: null, or why not).
 */
export function warmMigrationLock(ownCgroupDir: string): Promise<string | null> {
  return writeCgroupProcs(ownCgroupDir, process.pid).then(
    () => null,
    (e) => (e as Error).message,
  );
}

export function readCgroupFile(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new CgroupError(`${file}: read: ${errnoText(e)}`, errCode(e));
  }
}

/** Reads a file, or returns null when it does not exist (optional controllers and files). */
export function readOptional(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (errCode(e) === 'ENOENT' || errCode(e) === 'ENODEV' || errCode(e) === 'EOPNOTSUPP') return null;
    throw new CgroupError(`${file}: read: ${errnoText(e)}`, errCode(e));
  }
}

export function exists(file: string): boolean {
  try {
    fs.accessSync(file);
    return true;
  } catch {
    return false;
  }
}

/** "max" and kernel "unlimited" values become Number.MAX_SAFE_INTEGER-safe numbers. */
export function parseUint(s: string): number {
  const t = s.trim();
  if (t === 'max') return 18446744073709551615; // what runc reports (math.MaxUint64)
  const n = Number(t);
  return Number.isFinite(n) && n >= 0 ? n : 0;
}

/** Reads a single-number file; missing file → undefined. */
export function readUintOptional(file: string): number | undefined {
  const s = readOptional(file);
  return s === null ? undefined : parseUint(s);
}

/** "key value" lines (memory.stat, cpu.stat, memory.events, ...). */
export function parseFlatKeyed(text: string | null): Record<string, number> {
  const out: Record<string, number> = {};
  if (!text) return out;
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) out[k] = parseUint(v);
  }
  return out;
}

/**
 * runc's utils.CleanPath: lexical clean, and a relative path can never climb above its base
 * ("../../x" → "x") — cgroupsPath comes from an untrusted bundle.
 */
export function cleanPath(p: string): string {
  if (p === '') return '';
  const cleaned = path.posix.normalize(p);
  if (path.posix.isAbsolute(cleaned)) return cleaned.replace(/\/+$/, '') || '/';
  const rel = path.posix.relative('/', path.posix.normalize('/' + cleaned));
  return rel === '' ? '' : rel;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Lists every pid in cgroup.procs of `dir` and all its descendants. */
export function allPids(dir: string, procsFile = 'cgroup.procs'): number[] {
  const out: number[] = [];
  const walk = (d: string) => {
    const text = readOptional(path.join(d, procsFile));
    if (text === null) return;
    for (const l of text.split('\n')) if (l.trim()) out.push(Number(l));
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) walk(path.join(d, e.name));
  };
  walk(dir);
  return out;
}

/**
 * rmdir a cgroup dir and its sub-cgroups (children first; a cgroup dir only holds kernel files,
 * which rmdir removes with it). ENOENT is success (idempotent). On the thread pool: a cgroupfs
 * rmdir takes the kernel's cgroup lock, and delete removes one directory per hierarchy. The
 * directory is only listed when the rmdir says it is not empty (a sub-cgroup: EBUSY, or a
 * process still in it, which the caller retries): one trip to the pool in the common case.
 */
export async function rmdirTree(dir: string): Promise<void> {
  try {
    await fs.promises.rmdir(dir);
    return;
  } catch (e) {
    const code = errCode(e);
    if (code === 'ENOENT') return;
    if (code !== 'EBUSY' && code !== 'ENOTEMPTY') throw e;
  }
  let entries: fs.Dirent[];
  try {
    entries = await fs.promises.readdir(dir, { withFileTypes: true });
  } catch (e) {
    if (errCode(e) === 'ENOENT') return;
    throw e;
  }
  const subs = entries.filter((e) => e.isDirectory());
  for (const e of subs) await rmdirTree(path.join(dir, e.name));
  try {
    await fs.promises.rmdir(dir);
  } catch (e) {
    if (errCode(e) !== 'ENOENT') throw e;
  }
}

/**
 * mkdir -p that records which directories it created (so a failed create removes exactly those,
 * never a parent that existed before), parents first. On the thread pool (cgroupfs mkdir takes
 * the kernel's cgroup lock). The common case costs one mkdir: the parents are only looked at when
 * the kernel says one is missing.
 */
export async function mkdirRecording(dir: string, created: string[], mode = 0o755): Promise<void> {
  try {
    await fs.promises.mkdir(dir, { mode });
    created.push(dir);
    return;
  } catch (e) {
    if (errCode(e) === 'EEXIST') return;
    if (errCode(e) !== 'ENOENT' || path.dirname(dir) === dir) throw new CgroupError(`mkdir ${dir}: ${errnoText(e)}`, errCode(e));
  }
  await mkdirRecording(path.dirname(dir), created, mode);
  try {
    await fs.promises.mkdir(dir, { mode });
    created.push(dir);
  } catch (e) {
    if (errCode(e) !== 'EEXIST') throw new CgroupError(`mkdir ${dir}: ${errnoText(e)}`, errCode(e));
  }
}

/** Removes the recorded directories, deepest first, ignoring what cannot be removed. */
export async function undoCreated(created: string[]): Promise<void> {
  for (const d of [...created].reverse()) {
    try {
      await rmdirTree(d);
    } catch {}
  }
}

export function warnDefault(msg: string): void {
  process.stderr.write(`tsrun: warning: ${msg}\n`);
}
