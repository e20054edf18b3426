/**
 * create: everything is set up and the init waits (on its exec fifo) before the user process;
 * `run` (and a daemon's create) go through here too. The container goes from (none) to created
 * (transitions.ts): a container of that id must not exist yet.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isRunningSystemd, newCgroupManager, SYSTEMD_NOT_RUNNING, type CgroupManager } from '../cgroups';
import { runHooks, runHooksWarnOnly } from '../hooks/run';
import { native } from '../native/addon';
import type { InitPlan, PlanSeccomp } from '../native/init-plan';
import { spawnInit, type InitProcess } from '../native/init-process';
import { loadBundleConfig } from '../bundle/load';
import { MS_BIND, MS_REC, MS_REMOUNT } from '../bundle/mount-options';
import { buildCreatePlan, statBindSources } from '../plan/plan';
import type { Spec } from '../bundle/types';
import { listenForConsole, type ConsoleServer } from './console';
import type { RuntimeContext } from './context';
import { InitError, RuntimeError, errExists, errInvalid } from './errors';
import { makeDir, writePidFile } from './files';
import { containerDir, validateId } from './ids';
import { lockContainer, type ContainerLock } from './lock';
import { checkRootlessConfig, isRootlessEuid, rootlessCgroups, writeIdMaps } from './rootless';
import { checkSelinuxLabel } from './selinux';
import { isSameProcessAlive, readProcStat } from './proc';
import { ociState } from './state';
import { EXEC_FIFO, START_REPLY_FIFO, ensureRoot, rfc3339Nano, writeIntent, writeState, type OciState, type SavedState } from './state-store';

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

export interface Created {
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
    lock = await lockContainer(ctx.root, id);
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
    await writeIntent(ctx.root, { id, cgroup: cgroup.state });
    await writeState(ctx.root, saved);
    await cgroup.create();
    // Rootless without permission (and without limits): no cgroup at all (the manager warned).
    const noCgroup = () => Object.keys(cgroup!.state.paths).length === 0;
    // A skipped cgroup still knows what a cgroup mount shows the container (our own cgroup).
    const cgroupForMounts = cgroup;
    if (noCgroup()) {
      saved.cgroup = null;
      cgroup = null;
      await writeState(ctx.root, saved);
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
    // The container's placement, once its pid is known, then finds the migration lock warm.
    void cgroup?.primeMigration();
    try {
      init = await spawnInit({ stdio, extraFds });
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
          await cgroup.apply(initPid);
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
    await writeState(ctx.root, saved);
    if (opts.pidFile) await writePidFile(opts.pidFile, initPid);
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
