/**
 * exec: a new process inside a running container. tsrun-init (stage 0) joins every namespace of
 * the container's init, forks (a pid namespace only applies to children), and the child takes on
 * the process settings — capabilities, no_new_privs, rlimits, user, cwd, env, LSM label and the
 * container's seccomp filter — before it execs. Stage 0 is placed in the container's cgroup first.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadCgroupManager } from '../cgroups';
import { spawnInit, type InitProcess } from '../native/init-process';
import { buildExecPlan } from '../spec/plan';
import type { Process } from '../spec/types';
import type { RuntimeContext } from './context';
import { RuntimeError } from './errors';
import { checkSelinuxLabel, deriveStatus, loadContainer, ociState, passedFds, writePidFile } from './lifecycle';

export interface ExecOptions {
  id: string;
  process: Process;
  consoleSocket?: string;
  detach?: boolean;
  pidFile?: string;
  preserveFds?: number;
  ignorePaused?: boolean;
  stdio?: [number, number, number];
}

/** runc's exit status for an exec that failed before the process ran. */
export const EXEC_FAILED_STATUS = 255;

/**
 * Runs the process; resolves with its exit status (0 when detached, once it runs). Failures before
 * the process execs are RuntimeErrors with exit status 255 and runc's "exec failed: " prefix.
 */
export async function execProcess(ctx: RuntimeContext, opts: ExecOptions): Promise<number> {
  const saved = loadContainer(ctx.root, opts.id);
  const status = deriveStatus(ctx.root, saved);
  if (status === 'stopped') throw new RuntimeError('cannot exec in a stopped container');
  if (status === 'paused' && !opts.ignorePaused) throw new RuntimeError('cannot exec in a paused container (use --ignore-paused to override)');
  if (opts.process.terminal && !opts.consoleSocket) throw new RuntimeError('cannot allocate tty if runc will detach without setting console socket');
  if (!opts.process.terminal && opts.consoleSocket) throw new RuntimeError('cannot use console socket if runc will not detach or allocate tty');

  checkSelinuxLabel(opts.process.selinuxLabel);
  const { fds: extraFds, env: extraEnv } = passedFds(opts.preserveFds ?? 0);
  const proc: Process = extraEnv.length ? { ...opts.process, env: [...(opts.process.env ?? []), ...extraEnv] } : opts.process;
  let seccomp = null;
  if (saved.config.linux?.seccomp) {
    const { compileSeccomp } = await import('../seccomp/compile');
    seccomp = compileSeccomp(saved.config.linux.seccomp, { state: JSON.stringify(ociState(saved, status)), warn: (m: string) => ctx.log.warn(m), debug: (m: string) => ctx.log.debug(m) });
  }
  const plan = buildExecPlan({
    id: saved.id,
    initPid: saved.initPid,
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
    init = spawnInit({ stdio, extraFds });
  } finally {
    if (devNull >= 0) fs.closeSync(devNull);
  }
  let pid = 0;
  try {
    if (saved.cgroup) loadCgroupManager(saved.cgroup).apply(init.stage0Pid);
    init.sendPlan(plan);
    for (;;) {
      const msg = await init.next();
      if (msg.type === 'pid') {
        pid = msg.pid;
      } else if (msg.type === 'error') {
        throw new RuntimeError(`exec failed: ${msg.message}`, EXEC_FAILED_STATUS);
      } else if (msg.type === 'ready' || msg.type === 'eof') {
        // The process exec'd: its copy of the sync socket closed on exec.
        if (!pid) throw new RuntimeError('exec failed: the process did not start', EXEC_FAILED_STATUS);
        if (opts.pidFile) writePidFile(opts.pidFile, pid);
        if (opts.detach) {
          init.detach();
          return 0;
        }
        if (msg.type === 'eof') return exitFromStage0(init);
      } else if (msg.type === 'exit') {
        if (!pid) throw new RuntimeError('exec failed: the process did not start', EXEC_FAILED_STATUS);
        if (opts.pidFile && !fs.existsSync(opts.pidFile)) writePidFile(opts.pidFile, pid);
        return msg.status;
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

async function exitFromStage0(init: InitProcess): Promise<number> {
  // The socket closed without an exit message: stage 0 died; report its status.
  const exit = await init.stage0Exit;
  return exit.signal ? 128 + (require('node:os').constants.signals[exit.signal] ?? 0) : exit.code ?? EXEC_FAILED_STATUS;
}
