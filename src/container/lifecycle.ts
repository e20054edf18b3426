/**
 * The container state machine, runc's transitions:
 *
 *   (none) --create--> created --start--> running --(init exits)--> stopped --delete--> (none)
 *                         |                 |  ^
 *                         |              pause resume
 *                         |                 v  |
 *                         |               paused
 *                         +--delete (kills the waiting init)--> (none)
 *
 * The status is never stored: it is derived from the world, like runc does, so it cannot go
 * stale: stopped when the init (same pid and start time) is gone, created while its exec fifo
 * exists, paused while its cgroup is frozen, running otherwise.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isRunningSystemd, loadCgroupManager, newCgroupManager, SYSTEMD_NOT_RUNNING, type CgroupManager } from '../cgroups';
import { runHooks, runHooksWarnOnly } from '../hooks/run';
import { native } from '../native/addon';
import type { InitPlan, PlanSeccomp } from '../native/init-plan';
import { spawnInit, type InitProcess } from '../native/init-process';
import { loadBundleConfig } from '../bundle/load';
import { MS_BIND, MS_REC, MS_REMOUNT } from '../bundle/mount-options';
import { buildCreatePlan, statBindSources } from '../plan/plan';
import type { Spec } from '../bundle/types';
import type { RuntimeContext } from './context';
import { InitError, RuntimeError, errExists, errInvalid, errNotExist, errNotRunning, errState } from './errors';
import { createFileAtomically, makeDir } from './files';
import { containerDir, validateId } from './ids';
import { lockDir, type ContainerLock } from './lock';
import { checkRootlessConfig, isRootlessEuid, rootlessCgroups, writeIdMaps } from './rootless';
import { isSameProcessAlive, readProcStat, sleep, waitGone } from './proc';
import {
  CorruptStateError,
  EXEC_FIFO,
  START_REPLY_FIFO,
  OCI_VERSION,
  ensureRoot,
  listIds,
  readIntent,
  readState,
  rfc3339Nano,
  writeIntent,
  writeState,
  type OciState,
  type SavedState,
} from './state-store';

export interface CreateOptions {
  id: string;
  bundle: string;
  pidFile?: string;
  consoleSocket?: string;
  noPivot?: boolean;
  noNewKeyring?: boolean;
  /** Stdio of the container process: the caller's own by default. */
  stdio?: [number, number, number];
  /**
   * The fds the container process gets after stdio (they become 3, 4, …) and the env that goes
   * with them: the CLI passes LISTEN_FDS and --preserve-fds (src/cli/foreground.ts), a daemon none.
   */
  passFds?: { fds: number[]; env: string[] };
  /**
   * A daemon's create: stage 0 stays as the init's parent (outside the container's cgroup) and
   * reports its exit status; `Created.init` delivers it. The CLI's create leaves nothing behind.
   */
  superviseExit?: boolean;
}


/** OCI state as `state` prints it (and as hooks receive it). */
export function ociState(saved: SavedState, status: OciState['status']): OciState {
  const st: OciState = {
    ociVersion: OCI_VERSION,
    id: saved.id,
    pid: status === 'stopped' ? 0 : saved.initPid,
    status,
    bundle: saved.bundle,
    rootfs: saved.rootfs,
    created: saved.created,
    owner: saved.owner,
  };
  const annotations = saved.config.annotations;
  if (annotations && Object.keys(annotations).length > 0) st.annotations = annotations;
  return st;
}

export function deriveStatus(root: string, saved: SavedState): OciState['status'] {
  // Half-created: still being created while its creator lives; a creator killed half-way left a
  // container that is stopped (and that delete removes, from its intent record).
  if (saved.initPid === 0) return saved.creatorPid && isSameProcessAlive(saved.creatorPid, saved.creatorStartTime ?? 0) ? 'creating' : 'stopped';
  if (!isSameProcessAlive(saved.initPid, saved.initStartTime)) return 'stopped';
  if (fs.existsSync(path.join(containerDir(root, saved.id), EXEC_FIFO))) return 'created';
  if (saved.cgroup) {
    try {
      if (loadCgroupManager(saved.cgroup).isFrozen()) return 'paused';
    } catch {
      // A cgroup that cannot be read does not make a live init any less running.
    }
  }
  return 'running';
}

export function loadContainer(root: string, id: string): SavedState {
  validateId(id);
  const saved = readState(root, id);
  if (!saved) throw errNotExist();
  return saved;
}

export function containerState(ctx: RuntimeContext, id: string): OciState {
  const saved = loadContainer(ctx.root, id);
  return ociState(saved, deriveStatus(ctx.root, saved));
}

export function listContainers(ctx: RuntimeContext): OciState[] {
  const out: OciState[] = [];
  for (const id of listIds(ctx.root)) {
    let saved: SavedState | null;
    try {
      saved = readState(ctx.root, id);
    } catch {
      continue;
    }
    if (saved) out.push(ociState(saved, deriveStatus(ctx.root, saved)));
  }
  return out;
}

/** runc's check: a process label on a host without SELinux is an error, before anything runs. */
export function checkSelinuxLabel(label: string | undefined): void {
  if (!label) return;
  let enabled = false;
  try {
    enabled = fs.readFileSync('/sys/fs/selinux/enforce', 'utf8') !== undefined;
  } catch {}
  if (!enabled) throw new RuntimeError('selinux label is specified in config, but selinux is disabled or not supported');
}

/**
 * Writes a pid file atomically: decimal, no newline (containerd reads it as it appears). Its
 * directory may be writable by others: the temp file `.<name>` is created exclusively, as runc
 * does, so a planted `.<name>` (file or symlink) fails the command with "file exists" instead of
 * having root write through it.
 */
export function writePidFile(file: string, pid: number): void {
  const abs = path.resolve(file);
  createFileAtomically(path.dirname(abs), path.basename(abs), String(pid), { mode: 0o644 });
}

/** The OCI state split around the pid, for the hooks the init runs itself. */
function stateAroundPid(state: OciState): { prefix: string; suffix: string } {
  // `pid` follows ociVersion, id and status, none of which can contain a quote, so the first
  // occurrence of the marker is the real field and not part of an annotation value.
  const json = JSON.stringify({ ociVersion: state.ociVersion, id: state.id, status: state.status, pid: -424242, bundle: state.bundle, rootfs: state.rootfs, created: state.created, annotations: state.annotations, owner: state.owner });
  const at = json.indexOf('-424242');
  return { prefix: json.slice(0, at), suffix: json.slice(at + '-424242'.length) };
}

async function compileSeccompFor(config: Spec, state: OciState, ctx: RuntimeContext): Promise<PlanSeccomp | null> {
  const seccomp = config.linux?.seccomp;
  if (!seccomp) return null;
  const { compileSeccompAsync } = await import('../seccomp/compile');
  return compileSeccompAsync(seccomp, { state: JSON.stringify(state), warn: (m: string) => ctx.log.warn(m), debug: (m: string) => ctx.log.debug(m) });
}

interface Created {
  saved: SavedState;
  /** run in the foreground with a terminal: the pty master tsrun connects to its stdio. */
  consoleMaster?: number;
  /** Present when the caller asked to wait for the container's exit (run without -d). */
  init?: InitProcess;
}

/**
 * create: everything is set up and the init waits (on its exec fifo) before the user process.
 * Any failure undoes all of it: init killed, cgroup removed, state dir removed.
 */
export async function createContainer(ctx: RuntimeContext, opts: CreateOptions, runMode?: { waitForExit: boolean }): Promise<Created> {
  const id = validateId(opts.id);
  // runc's check (cgroups/manager.New), before anything exists.
  if (ctx.systemdCgroup && !isRunningSystemd()) throw new RuntimeError(SYSTEMD_NOT_RUNNING);
  const bundle = path.resolve(opts.bundle);
  // Validate before anything exists on disk: a bad bundle leaves nothing behind.
  const config = loadBundleConfig(bundle);
  if (opts.consoleSocket && !config.process?.terminal) {
    throw errInvalid('cannot use console socket if runc will not detach or allocate tty');
  }
  // run in the foreground with a terminal and no console socket: tsrun receives the pty itself
  // and connects it to its own stdio, as runc does.
  const ownConsole = !!config.process?.terminal && !opts.consoleSocket && !!runMode?.waitForExit;
  if (config.process?.terminal && !opts.consoleSocket && !ownConsole) {
    throw errInvalid('cannot allocate tty if runc will detach without setting console socket');
  }
  checkSelinuxLabel(config.process?.selinuxLabel);
  // runc's RootlessEUID: what an unprivileged user cannot have is refused before anything exists.
  const rootless = isRootlessEuid();
  if (rootless) checkRootlessConfig(config);
  const { fds: extraFds, env: extraEnv } = opts.passFds ?? { fds: [], env: [] };

  ensureRoot(ctx.root);
  const dir = containerDir(ctx.root, id);
  try {
    makeDir(dir, 0o711);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw errExists();
    throw e;
  }
  let lock: ContainerLock | null = null;
  let cgroup: CgroupManager | null = null;
  let init: InitProcess | null = null;
  let initPid = 0;
  let hooksRan = false;
  let consoleServer: ConsoleServer | null = null;
  let afterUnlock: (() => Promise<void>) | null = null;
  try {
    lock = await lockDir(dir);
    const rootfs = path.resolve(bundle, config.root!.path);
    const saved: SavedState = {
      id,
      initPid: 0,
      initStartTime: 0,
      bundle,
      rootfs,
      created: rfc3339Nano(),
      owner: '',
      config,
      cgroup: null,
      started: false,
      creatorPid: process.pid,
      creatorStartTime: readProcStat(process.pid)?.startTime ?? 0,
    };

    cgroup = newCgroupManager({
      id,
      cgroupsPath: config.linux?.cgroupsPath,
      resources: config.linux?.resources,
      systemd: ctx.systemdCgroup,
      rootless: ctx.rootlessCgroups ?? rootlessCgroups(null),
      annotations: config.annotations,
      warn: (m: string) => ctx.log.warn(m),
    });
    // Intent before effect: what delete -f must remove is on disk before any of it exists.
    saved.cgroup = cgroup.state;
    writeIntent(ctx.root, { id, cgroup: cgroup.state });
    writeState(ctx.root, saved);
    cgroup.create();
    // Rootless without permission (and without limits): no cgroup at all (the manager warned).
    const noCgroup = () => Object.keys(cgroup!.state.paths).length === 0;
    // A skipped cgroup still knows what a cgroup mount shows the container (our own cgroup).
    const cgroupForMounts = cgroup;
    if (noCgroup()) {
      saved.cgroup = null;
      cgroup = null;
      writeState(ctx.root, saved);
    }
    // runc's checks of a cgroup that existed before: a frozen one would hang the init for ever in
    // its first write (refused); processes already in it only get runc's warning.
    if (cgroup?.isFrozen()) throw new RuntimeError("container's cgroup unexpectedly frozen");
    const already = cgroup?.pids() ?? [];
    if (already.length) ctx.log.warn(`container's cgroup is not empty: ${already.length} process(es) found`);

    const waitForExit = runMode?.waitForExit ?? opts.superviseExit ?? false;
    let consoleSocket = opts.consoleSocket ? path.resolve(opts.consoleSocket) : '';
    if (ownConsole) {
      consoleSocket = path.join(dir, 'console.sock');
      consoleServer = await listenForConsole(consoleSocket);
    }
    // run does create+start in one go: no fifo, the init execs as soon as it is ready.
    const execFifo = runMode ? '' : path.join(dir, EXEC_FIFO);
    const startReplyFifo = execFifo ? path.join(dir, START_REPLY_FIFO) : '';
    // Stage 0 opens both on the host side, before it joins or creates any namespace, and the
    // container init inherits the fds: no chown for a user namespace, no path resolved inside.
    for (const fifo of [execFifo, startReplyFifo].filter(Boolean)) native().mkfifo(fifo, 0o600);

    const creatingState = ociState(saved, 'creating');
    const [seccomp, bindSources] = await Promise.all([compileSeccompFor(config, creatingState, ctx), statBindSources(config, bundle)]);
    const around = stateAroundPid(creatingState);
    const processConfig = config.process!;
    const plan: InitPlan = buildCreatePlan({
      id,
      bundle,
      config: extraEnv.length ? { ...config, process: { ...processConfig, env: [...(processConfig.env ?? []), ...extraEnv] } } : config,
      execFifo,
      consoleSocket,
      noPivot: opts.noPivot ?? false,
      preserveFds: extraFds.length,
      waitForExit,
      statePrefix: around.prefix,
      stateSuffix: around.suffix,
      seccomp,
      cgroupMountSteps: (dest: string, flags: number, newNs: boolean) => {
        const steps = cgroupForMounts.mountSteps(dest, flags, newNs);
        if (!rootless) return steps;
        // runc's mountCgroupV2 fallback (it binds where the mount fails with EPERM or EBUSY, as
        // cgroup2 does for an unprivileged user namespace): the container's own cgroup when it has
        // a cgroup namespace (the view that namespace would give), else the host's hierarchy.
        const own = newNs ? cgroup?.state.paths[''] : undefined;
        return steps.map((st) => (st.kind === 'mount' && st.fstype === 'cgroup2' ? { ...st, source: own ?? '/sys/fs/cgroup', fstype: '', flags: (MS_BIND | MS_REC) >>> 0, remountFlags: (st.flags & ~(MS_BIND | MS_REC | MS_REMOUNT)) >>> 0, data: '' } : st));
      },
      rootless,
      warn: (m: string) => ctx.log.warn(m),
      bindSources,
    });

    if (plan.mode === 'create') {
      plan.sessionKeyring = opts.noNewKeyring ? '' : `_ses.${id}`;
      plan.startReplyFifo = startReplyFifo;
      if (rootless) plan.rootless = true;
    }
    // Rootless with a new user namespace: its maps are written from here on "pid" (tsrun never
    // changes namespace, so newuidmap, /proc and /etc/subuid are the host's).
    const mapsByParent = rootless && plan.mode === 'create' && plan.namespaces.some((n) => n.type === 'user' && !n.path);
    // With a terminal the container's stdio is the pty: the init must not hold our own stdio
    // (containerd waits for EOF on it).
    let stdio: [number, number, number] | 'inherit' = opts.stdio ?? 'inherit';
    let devNull = -1;
    if (processConfig.terminal) {
      devNull = fs.openSync('/dev/null', 'r+');
      stdio = [devNull, devNull, devNull];
    }
    try {
      init = spawnInit({ stdio, extraFds });
    } finally {
      if (devNull >= 0) fs.closeSync(devNull);
    }
    init.sendPlan(plan);

    for (;;) {
      const msg = await init.next();
      if (msg.type === 'pid') {
        initPid = msg.pid;
        saved.initPid = initPid;
        // The start time is read now, while the init certainly exists; if it is already gone,
        // its error message is on its way and the loop reports that instead.
        saved.initStartTime = readProcStat(initPid)?.startTime ?? 0;
        if (mapsByParent && plan.mode === 'create') writeIdMaps(initPid, plan.uidMappings, plan.gidMappings);
        // The container process waits until it is in its cgroup; stage 0 (the runtime's) never
        // is, so `ps`/`kill --all` see container processes only.
        if (cgroup) {
          cgroup.apply(initPid);
          if (noCgroup()) {
            saved.cgroup = null;
            await cgroup.destroy();
            cgroup = null;
          }
        }
        init.sendPlaced();
      } else if (msg.type === 'hooks') {
        hooksRan = true;
        const stateJson = JSON.stringify(ociState(saved, 'creating'));
        await runHooks('prestart', config.hooks?.prestart, stateJson, bundle);
        await runHooks('createRuntime', config.hooks?.createRuntime, stateJson, bundle);
        init.sendContinue();
      } else if (msg.type === 'createContainerHooks') {
        hooksRan = true;
      } else if (msg.type === 'ready') {
        break;
      } else if (msg.type === 'error') {
        throw new InitError(msg.message, msg.phase, msg.errno ?? 0);
      } else if (msg.type === 'eof') {
        const exit = await init.stage0Exit;
        throw new RuntimeError(`container init exited before it was ready (${exit.signal ? `signal ${exit.signal}` : `status ${exit.code}`})`);
      } else if (msg.type === 'exit') {
        throw new RuntimeError(`container process exited during set-up with status ${msg.status}`);
      }
    }
    if (initPid === 0) throw new RuntimeError('container init did not report its pid');
    // A created init waits on its fifo, so it must be alive now; under `run` it may be done already.
    if (!runMode && !isSameProcessAlive(initPid, saved.initStartTime)) throw new RuntimeError(`container init ${initPid} exited during set-up`);
    saved.started = !!runMode;
    delete saved.creatorPid;
    delete saved.creatorStartTime;
    writeState(ctx.root, saved);
    if (opts.pidFile) writePidFile(opts.pidFile, initPid);
    if (!waitForExit) init.detach();
    const consoleMaster = consoleServer ? await consoleServer.master() : undefined;
    return { saved, init: waitForExit ? init : undefined, consoleMaster };
  } catch (e) {
    // Undo in reverse order. The mounts live in the container's mount namespace and vanish with
    // its last process.
    if (init) init.kill();
    if (initPid) {
      try {
        process.kill(initPid, 'SIGKILL');
      } catch {}
    }
    if (cgroup) {
      try {
        if (initPid) cgroup.killAll(9);
        await cgroup.destroy();
      } catch (err) {
        ctx.log.warn(`cleanup: ${(err as Error).message}`);
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
    // runtime.md: when a prestart, createRuntime or createContainer hook fails, the lifecycle
    // continues with the poststop hooks.
    if (hooksRan) {
      afterUnlock = () => runHooksWarnOnly('poststop', config.hooks?.poststop, JSON.stringify({ ...ociState({ id, initPid: 0, initStartTime: 0, bundle, rootfs: path.resolve(bundle, config.root!.path), created: '', owner: '', config, cgroup: null, started: false }, 'stopped') }), (m) => ctx.log.warn(m), bundle);
    }
    throw e;
  } finally {
    consoleServer?.close();
    lock?.release();
    // Hooks never run under the container's lock: a hung one must not block delete -f.
    if (afterUnlock) await afterUnlock();
  }
}

export interface ConsoleServer {
  /** The pty master the init sent (it arrives before "ready"). */
  master(): Promise<number>;
  close(): void;
}

/**
 * A unix socket for the init's pty master. Connections are accepted paused, so that libuv never
 * reads from them: the message carries the fd (SCM_RIGHTS) and only recvmsg may consume it.
 */
export async function listenForConsole(socketPath: string): Promise<ConsoleServer> {
  const net = await import('node:net');
  const server = net.createServer({ pauseOnConnect: true });
  let conn: import('node:net').Socket | null = null;
  server.on('connection', (c) => {
    if (conn) c.destroy();
    else conn = c;
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  return {
    async master() {
      for (let i = 0; i < 500; i++) {
        const fd = (conn as unknown as { _handle?: { fd?: number } } | null)?._handle?.fd;
        if (fd !== undefined && fd >= 0) {
          try {
            return native().recvFd(fd).fd;
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
          }
        }
        await sleep(10);
      }
      throw new RuntimeError('the container init did not send its terminal');
    },
    close() {
      (conn as import('node:net').Socket | null)?.destroy();
      server.close();
    },
  };
}

/** start: releases the init waiting on its exec fifo, then runs the poststart hooks. */
export async function startContainer(ctx: RuntimeContext, id: string): Promise<void> {
  const saved = loadContainer(ctx.root, id);
  const lock = await lockDir(containerDir(ctx.root, id));
  try {
    const status = deriveStatus(ctx.root, saved);
    if (status === 'running' || status === 'paused') throw errState('cannot start an already running container');
    if (status === 'stopped') throw errState('cannot start a container that has stopped');
    if (status !== 'created') throw errState(`cannot start a container in the ${status} state`);
    const fifo = path.join(containerDir(ctx.root, id), EXEC_FIFO);
    let fd: number;
    try {
      // Non-blocking: if no init holds the fifo any more, ENXIO instead of waiting forever.
      fd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    } catch (e) {
      throw new RuntimeError(`cannot start container: exec fifo: ${(e as Error).message}`);
    }
    // The reply fifo is opened before the byte is written, so no reply can be missed.
    const replyPath = path.join(containerDir(ctx.root, id), START_REPLY_FIFO);
    let reply = -1;
    try {
      reply = fs.openSync(replyPath, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    } catch {
      // A container created by an older tsrun: no reply channel.
    }
    try {
      fs.writeSync(fd, '0');
    } finally {
      fs.closeSync(fd);
    }
    let failure = '';
    if (reply >= 0) {
      try {
        failure = await readUntilEof(reply, saved);
      } finally {
        fs.closeSync(reply);
      }
    }
    fs.rmSync(fifo, { force: true });
    fs.rmSync(replyPath, { force: true });
    if (failure) {
      // The init stops the container itself; poststop runs at delete, as after any stop.
      throw new RuntimeError(failure.trim().split('\n').pop()!);
    }
    saved.started = true;
    writeState(ctx.root, saved);
  } finally {
    lock.release();
  }
  // After the lock: a slow poststart hook must not hold up kill or delete of the container.
  await runHooksWarnOnly('poststart', saved.config.hooks?.poststart, JSON.stringify(ociState(saved, 'running')), (m) => ctx.log.warn(m));
}

/**
 * Reads the start reply fifo until every writer is gone: the init holds it until its execve
 * (CLOEXEC) succeeds or it writes why it failed and exits.
 */
async function readUntilEof(fd: number, saved: SavedState): Promise<string> {
  const buf = Buffer.alloc(4096);
  let text = '';
  for (let delay = 1; ; delay = Math.min(delay * 2, 20)) {
    let n: number;
    try {
      n = fs.readSync(fd, buf, 0, buf.length, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      // Writers remain but nothing to read yet; a vanished init cannot answer any more.
      if (!isSameProcessAlive(saved.initPid, saved.initStartTime)) return text;
      await sleep(delay);
      continue;
    }
    if (n === 0) return text;
    text += buf.toString('utf8', 0, n);
  }
}

/** Signals the init only if it is still the process we started (pidfd closes the reuse race). */
export function signalInit(saved: SavedState, signal: number): void {
  const n = native();
  let pidfd: number;
  try {
    pidfd = n.pidfdOpen(saved.initPid);
  } catch {
    throw errNotRunning();
  }
  try {
    // The pidfd pins the process: if the start time matches now, the signal reaches that process.
    if (!isSameProcessAlive(saved.initPid, saved.initStartTime)) throw errNotRunning();
    n.pidfdSendSignal(pidfd, signal);
  } finally {
    fs.closeSync(pidfd);
  }
}

/**
 * The host pids of the container's processes: its cgroup's; without one (rootless without
 * permission for a cgroup) every process in the init's own pid namespace, or just the init when it
 * shares ours (or its namespace cannot be read: a created init is not dumpable).
 */
export function savedContainerPids(saved: SavedState): number[] {
  if (saved.cgroup) return loadCgroupManager(saved.cgroup).pids();
  if (!saved.initPid || !isSameProcessAlive(saved.initPid, saved.initStartTime)) return [];
  const ownPidNs = (saved.config.linux?.namespaces ?? []).some((n) => n.type === 'pid' && !n.path);
  let ns = '';
  try {
    if (ownPidNs) ns = fs.readlinkSync(`/proc/${saved.initPid}/ns/pid`);
  } catch {}
  if (!ns) return [saved.initPid];
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (fs.readlinkSync(`/proc/${name}/ns/pid`) === ns) out.push(Number(name));
    } catch {}
  }
  return out.sort((a, b) => a - b);
}

export async function killContainer(ctx: RuntimeContext, id: string, signal: number, all: boolean): Promise<void> {
  const saved = loadContainer(ctx.root, id);
  const status = deriveStatus(ctx.root, saved);
  if (all && saved.cgroup) {
    // runc: kill --all of a stopped container succeeds (there may be nothing left to signal).
    loadCgroupManager(saved.cgroup).killAll(signal);
    return;
  }
  if (all && status !== 'stopped') {
    // No cgroup (rootless): every process of its pid namespace, the init last.
    const pids = savedContainerPids(saved).filter((p) => p !== saved.initPid);
    for (const pid of pids) {
      try {
        process.kill(pid, signal);
      } catch {}
    }
    signalInit(saved, signal);
    return;
  }
  if (all) return;
  if (status === 'stopped') throw errNotRunning();
  signalInit(saved, signal);
}

/** Removes what remains of a container whose processes are gone; returns its poststop hooks, run by the caller once the lock is released. */
async function destroy(ctx: RuntimeContext, saved: SavedState): Promise<() => Promise<void>> {
  if (saved.cgroup) {
    // The init is gone; whatever is still in its cgroup is the container's (a shared pid
    // namespace, a half-created container whose creator was killed): it goes too, as in runc.
    const cg = loadCgroupManager(saved.cgroup);
    try {
      if (cg.isFrozen()) await cg.thaw();
    } catch {}
    await cg.destroy({ killLeftovers: true });
  }
  fs.rmSync(containerDir(ctx.root, saved.id), { recursive: true, force: true });
  return () => runHooksWarnOnly('poststop', saved.config.hooks?.poststop, JSON.stringify(ociState(saved, 'stopped')), (m) => ctx.log.warn(m));
}

/** Kills and removes what the intent record names (every process of the cgroup, the cgroup). */
async function destroyFromIntent(ctx: RuntimeContext, id: string): Promise<void> {
  const intent = readIntent(ctx.root, id);
  if (intent?.cgroup) {
    try {
      const cg = loadCgroupManager(intent.cgroup);
      if (cg.isFrozen()) await cg.thaw();
      cg.killAll(9);
      await cg.destroy({ killLeftovers: true });
    } catch (e) {
      ctx.log.warn(`delete: cgroup of ${id}: ${(e as Error).message}`);
    }
  }
  fs.rmSync(containerDir(ctx.root, id), { recursive: true, force: true });
}

async function killEverything(saved: SavedState): Promise<void> {
  if (saved.cgroup) {
    const cg = loadCgroupManager(saved.cgroup);
    // SIGKILL is only delivered to frozen tasks once they thaw.
    if (cg.isFrozen()) await cg.thaw();
    cg.killAll(9);
  }
  if (isSameProcessAlive(saved.initPid, saved.initStartTime)) {
    try {
      signalInit(saved, 9);
    } catch {}
  }
  await waitGone(saved.initPid, saved.initStartTime, 10_000);
}

export async function deleteContainer(ctx: RuntimeContext, id: string, force: boolean): Promise<void> {
  validateId(id);
  const dir = containerDir(ctx.root, id);
  if (!fs.existsSync(dir)) {
    // runc: delete --force of a container that does not exist succeeds silently (clients run it
    // after every failed create).
    if (force) return;
    throw errNotExist();
  }
  const lock = await lockDir(dir);
  let poststop: (() => Promise<void>) | null = null;
  try {
    let saved: SavedState | null;
    try {
      saved = readState(ctx.root, id);
    } catch (e) {
      if (!(e instanceof CorruptStateError) || !force) throw e;
      saved = null;
    }
    if (!saved) {
      // No readable state: a create that died before writing it, or a corrupt state.json. Only
      // force removes it, and everything its intent record names goes with it.
      if (!force) throw errNotExist();
      await destroyFromIntent(ctx, id);
      return;
    }
    const status = deriveStatus(ctx.root, saved);
    // The spec is explicit (runtime.md, delete): a container that is not stopped MUST NOT be
    // deleted. runc 1.1 deletes created containers anyway; tsrun follows the spec and asks for -f.
    if (status !== 'stopped' && !force) throw errState(`cannot delete container ${id} that is not stopped: ${status}`);
    if (status !== 'stopped') await killEverything(saved);
    poststop = await destroy(ctx, saved);
  } finally {
    lock.release();
  }
  await poststop?.();
}
