/**
 * exec: a new process inside a running container. tsrun-init (stage 0) joins every namespace of
 * the container's init, forks (a pid namespace only applies to children), and the child takes on
 * the process settings — capabilities, no_new_privs, rlimits, user, cwd, env, LSM label and the
 * container's seccomp filter — before it execs. Stage 0 is placed in the container's cgroup first.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { primeHostMigration } from '../cgroups';
import { writeCgroupProcs } from '../cgroups/util';
import { managerOf } from './container-cgroup';
import { spawnInit, type InitProcess } from '../native/init-process';
import { execProcessSpec } from '../plan/defaults';
import { buildExecPlan } from '../plan/plan';
import type { Process } from '../bundle/types';
import type { RuntimeContext } from './context';
import { InitError, RuntimeError, errInvalid } from './errors';
import { writePidFile } from './files';
import { checkRootlessUser, isRootlessEuid } from './rootless';
import { checkSelinuxLabel } from './selinux';
import { deriveStatus, loadContainer, ociState } from './state';
import { checkTransition } from './transitions';

export interface ExecOptions {
  id: string;
  process: Process;
  consoleSocket?: string;
  detach?: boolean;
  pidFile?: string;
  ignorePaused?: boolean;
  stdio?: [number, number, number];
  /** runc 1.1's --cgroup: `[<controller>[,<controller>]:]<path>`, existing sub-cgroups. */
  cgroup?: string[];
  /** As CreateOptions.passFds: the fds after stdio, when the caller worked them out. */
  passFds?: { fds: number[]; env: string[] };
}

/**
 * The cgroup directories an exec'd process joins: the container's, or with --cgroup an existing
 * sub-cgroup of it — for every hierarchy (`sub`) or the named controllers (`cpu,memory:sub`).
 */
export function execCgroupDirs(paths: Record<string, string>, specs: string[]): string[] {
  const chosen = new Map(Object.entries(paths));
  for (const spec of specs) {
    const colon = spec.indexOf(':');
    const controllers = colon >= 0 ? spec.slice(0, colon).split(',').filter(Boolean) : [...chosen.keys()];
    // Inside the container's cgroup whatever it says ("/a/../../x" stays below it).
    const sub = path.posix.normalize('/' + (colon >= 0 ? spec.slice(colon + 1) : spec));
    if (sub === '/') throw new RuntimeError(`--cgroup ${JSON.stringify(spec)}: no sub-cgroup given`);
    for (const c of controllers) {
      const base = paths[c];
      if (base === undefined) throw new RuntimeError(`--cgroup ${JSON.stringify(spec)}: controller ${JSON.stringify(c)} is not one of the container's`);
      const dir = path.join(base, sub);
      if (!fs.existsSync(path.join(dir, 'cgroup.procs'))) throw new RuntimeError(`--cgroup ${JSON.stringify(spec)}: cgroup path ${dir} does not exist`);
      chosen.set(c, dir);
    }
  }
  return [...new Set(chosen.values())].filter(Boolean);
}

/** runc's exit status for an exec that failed before the process ran. */
export const EXEC_FAILED_STATUS = 255;

/** The largest uid/gid runc accepts (libcontainer/user: 1<<31 - 1); 4294967295 is -1, "unchanged", to setresuid. */
export const MAX_ID = 2147483647;

/** The process-changing flags of `exec` without --process. */
export interface ExecFlags {
  args: string[];
  tty: boolean;
  cwd?: string;
  env: string[];
  /** uid[:gid], numeric. */
  user?: string;
  additionalGids: number[];
  noNewPrivs: boolean;
  apparmor?: string;
  processLabel?: string;
  cap: string[];
}

function execFailed(msg: string): RuntimeError {
  return new RuntimeError(`exec failed: ${msg}`, EXEC_FAILED_STATUS);
}

/** A uid or gid from the command line: decimal, 0..MAX_ID (runc refuses the others with exit 255). */
function parseId(text: string, what: string, flag: string): number {
  if (!/^\d+$/.test(text)) throw execFailed(`invalid ${flag}: ${what} ${JSON.stringify(text)} is not a number (only numeric uid[:gid] is supported)`);
  const n = Number(text);
  if (n > MAX_ID) throw execFailed(`invalid ${flag}: ${what} ${text} out of range: uids and gids must be in range 0-${MAX_ID}`);
  return n;
}

/**
 * runc's exec without --process: the container's own process with what the flags change. The
 * result still goes through execProcessSpec in execProcess, like a --process file.
 */
export function processFromFlags(base: Process, f: ExecFlags): Process {
  if (f.args.length === 0) throw new RuntimeError('exec args cannot be empty');
  const proc = structuredClone(base);
  proc.args = [...f.args];
  proc.terminal = f.tty;
  if (f.cwd) proc.cwd = f.cwd;
  // runc: -e KEY=value replaces the container's KEY (never a second KEY that getenv ignores).
  const keyOf = (e: string) => (e.includes('=') ? e.slice(0, e.indexOf('=')) : e);
  const overridden = new Set(f.env.map(keyOf));
  proc.env = [...(base.env ?? []).filter((e) => !overridden.has(keyOf(e))), ...f.env];
  if (f.user) {
    const [u, g, ...rest] = f.user.split(':');
    if (rest.length) throw execFailed(`invalid --user ${f.user}: only numeric uid[:gid] is supported`);
    const uid = parseId(u, 'uid', '--user');
    const gid = g !== undefined ? parseId(g, 'gid', '--user') : proc.user?.gid ?? 0;
    proc.user = { ...proc.user, uid, gid };
  }
  if (f.additionalGids.length) {
    const gids = f.additionalGids.map((g) => {
      // yargs gives numbers (NaN for text); runc: "additional-gids must be a positive number".
      if (!Number.isSafeInteger(g) || g < 0 || g > MAX_ID) throw execFailed(`invalid --additional-gids ${g}: uids and gids must be in range 0-${MAX_ID}`);
      return g;
    });
    proc.user = { ...(proc.user ?? { uid: 0, gid: 0 }), additionalGids: gids };
  }
  if (f.noNewPrivs) proc.noNewPrivileges = true;
  if (f.apparmor) proc.apparmorProfile = f.apparmor;
  if (f.processLabel) proc.selinuxLabel = f.processLabel;
  if (f.cap.length) {
    const caps = proc.capabilities ?? {};
    // runc adds --cap to bounding, effective and permitted (never inheritable: CVE-2022-29162),
    // and to ambient only when the base process already has ambient capabilities.
    for (const set of ['bounding', 'effective', 'permitted'] as const) caps[set] = [...new Set([...(caps[set] ?? []), ...f.cap])];
    if (caps.ambient?.length) caps.ambient = [...new Set([...caps.ambient, ...f.cap])];
    proc.capabilities = caps;
  }
  return proc;
}

/** A process that runs: its host pid now, its exit status (or 128+signal) later. */
export interface StartedProcess {
  pid: number;
  exited: Promise<number>;
}

/**
 * Checks the container and the process, then starts the process and resolves once it runs (it
 * exec'd) with its pid and a promise of its exit status, which stage 0 reports (it waits for its
 * child; nothing here waits for arbitrary children of this Node process). `detach`: stage 0 goes
 * away once the process runs and `exited` resolves to 0 at once. Failures before the process
 * execs are RuntimeErrors with exit status 255 and runc's "exec failed: " prefix.
 */
export async function startExec(ctx: RuntimeContext, opts: ExecOptions): Promise<StartedProcess> {
  const saved = loadContainer(ctx.root, opts.id);
  const status = deriveStatus(ctx.root, saved);
  checkTransition(opts.ignorePaused ? 'execIgnorePaused' : 'exec', status, saved.id);
  if (opts.process.terminal && !opts.consoleSocket) throw errInvalid('cannot allocate tty if runc will detach without setting console socket');
  if (!opts.process.terminal && opts.consoleSocket) throw errInvalid('cannot use console socket if runc will not detach or allocate tty');
  if (opts.cgroup?.length && saved.cgroup) execCgroupDirs(saved.cgroup.paths, opts.cgroup); // bad --cgroup fails before anything runs
  // The placement below, once the pid is known, then finds the migration lock warm.
  if (saved.cgroup) void primeHostMigration();

  // Whatever the exec process leaves out (capabilities, no_new_privs, rlimits, labels) is the
  // container's, never the runtime's own: see src/plan/defaults.ts.
  const own = execProcessSpec(opts.process, saved.config.process, (m) => ctx.log.warn(m));
  checkSelinuxLabel(own.selinuxLabel);
  // Rootless (euid != 0): runc's setupUser checks for the exec'd process too.
  if (isRootlessEuid()) checkRootlessUser(own.user, saved.config);
  const { fds: extraFds, env: extraEnv } = opts.passFds ?? { fds: [], env: [] };
  const proc: Process = extraEnv.length ? { ...own, env: [...(own.env ?? []), ...extraEnv] } : own;
  let seccomp = null;
  if (saved.config.linux?.seccomp) {
    const { compileSeccompAsync } = await import('../seccomp/compile');
    seccomp = await compileSeccompAsync(saved.config.linux.seccomp, { state: JSON.stringify(ociState(saved, status)), warn: (m: string) => ctx.log.warn(m), debug: (m: string) => ctx.log.debug(m) });
  }
  const plan = buildExecPlan({
    id: saved.id,
    initPid: saved.initPid,
    initStartTime: saved.initStartTime,
    process: proc,
    config: saved.config,
    consoleSocket: opts.consoleSocket ? path.resolve(opts.consoleSocket) : '',
    preserveFds: extraFds.length,
    waitForExit: !opts.detach,
    seccomp,
    warn: (m: string) => ctx.log.warn(m),
  });

  let stdio: [number, number, number] | 'inherit' = opts.stdio ?? 'inherit';
  let devNull = -1;
  if (proc.terminal) {
    devNull = fs.openSync('/dev/null', 'r+');
    stdio = [devNull, devNull, devNull];
  }
  let init: InitProcess;
  try {
    init = await spawnInit({ stdio, extraFds });
  } finally {
    if (devNull >= 0) fs.closeSync(devNull);
  }
  let pid = 0;
  try {
    init.sendPlan(plan);
    for (;;) {
      const msg = await init.next();
      if (msg.type === 'pid') {
        pid = msg.pid;
        // Into the container's cgroup (or --cgroup's sub-cgroups) before stage 0 releases it
        // (stage 0 itself stays out).
        if (saved.cgroup && opts.cgroup?.length) {
          // On the thread pool, as every cgroup.procs write: a migration can take many ms.
          for (const dir of execCgroupDirs(saved.cgroup.paths, opts.cgroup)) await writeCgroupProcs(dir, pid);
        } else if (saved.cgroup) await managerOf(ctx, saved.cgroup).apply(pid);
        init.sendPlaced();
      } else if (msg.type === 'error') {
        throw new InitError(`exec failed: ${msg.message}`, msg.phase, msg.errno ?? 0, EXEC_FAILED_STATUS);
      } else if (msg.type === 'ready' || msg.type === 'eof') {
        // The process exec'd: its copy of the sync socket closed on exec.
        if (!pid) throw new RuntimeError('exec failed: the process did not start', EXEC_FAILED_STATUS);
        if (opts.pidFile) await writePidFile(opts.pidFile, pid);
        if (opts.detach) {
          init.detach();
          return { pid, exited: Promise.resolve(0) };
        }
        return { pid, exited: msg.type === 'eof' ? exitFromStage0(init) : exitStatus(init) };
      } else if (msg.type === 'exit') {
        // Done before we heard it run: the status is already known.
        if (!pid) throw new RuntimeError('exec failed: the process did not start', EXEC_FAILED_STATUS);
        if (opts.pidFile && !fs.existsSync(opts.pidFile)) await writePidFile(opts.pidFile, pid);
        return { pid, exited: Promise.resolve(msg.status) };
      }
    }
  } catch (e) {
    init.kill();
    if (pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    throw e;
  }
}

/** The exit status stage 0 reports for its child (after the process ran). */
export async function exitStatus(init: InitProcess): Promise<number> {
  for (;;) {
    const msg = await init.next();
    if (msg.type === 'exit') return msg.status;
    if (msg.type === 'eof') return exitFromStage0(init);
  }
}

async function exitFromStage0(init: InitProcess): Promise<number> {
  // The socket closed without an exit message: stage 0 died; report its status.
  const exit = await init.stage0Exit;
  return exit.signal ? 128 + (require('node:os').constants.signals[exit.signal] ?? 0) : exit.code ?? EXEC_FAILED_STATUS;
}
