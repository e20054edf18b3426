/**
 * containerd's Task service (`containerd.task.v2.Task`, also served as 2.x's `containerd.task.v3.Task`)
 * on top of the container library, in-process: no runtime binary is executed per call.
 *
 * Exit statuses come from stage 0 of tsrun-init, which stays the parent of every container
 * init and exec'd process it starts and reports its exit over the sync socket (src/container
 * exec.ts, Container.create): the shim never waits for arbitrary children, so libuv's own
 * child processes (hooks, logging binaries) keep their statuses. Every exit is published exactly
 * once, an init's after those of its execs.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Container } from '../container/container';
import type { RuntimeContext } from '../container/context';
import { RuntimeError, errorKind, type ErrorKind } from '../container/errors';
import { listenForConsole, type ConsoleServer } from '../container/console';
import type { Process } from '../bundle/types';
import { SHIM_STATE_FILE } from './control';
import type { EventPublisher } from './events';
import { openProcessIo, type ProcessIo, type StdioPaths } from './io';
import { Status, T, encode, encodeAny, timestamp } from './messages';
import { mountRootfs, unmountAll, type TaskMount } from './rootfs';
import { Code, TtrpcError } from './ttrpc';
import { cgroupMetrics } from './metrics';

type Handler = (payload: Uint8Array) => Promise<Uint8Array>;

interface ProcessEntry {
  execId: string;
  pid: number;
  stdio: StdioPaths;
  io: ProcessIo | null;
  state: 'created' | 'running' | 'stopped';
  exitStatus: number;
  exitedAt: Date | null;
  /** Resolves once the exit is recorded (and published). */
  done: Promise<void>;
  markDone: () => void;
  spec?: Process;
}

interface Task {
  id: string;
  bundle: string;
  container: Container;
  init: ProcessEntry;
  execs: Map<string, ProcessEntry>;
  rootfsMounted: boolean;
  stopOom: () => void;
  /** Set while Start runs: the init's exit is published after its start. */
  starting: Promise<void> | null;
}


export interface ShimState {
  /** The runtime state root (containerd's runc Options.root, or ours), already per namespace. */
  root: string;
}

const CODE_OF: Record<ErrorKind, number> = {
  NotFound: Code.NotFound,
  AlreadyExists: Code.AlreadyExists,
  FailedPrecondition: Code.FailedPrecondition,
  InvalidArgument: Code.InvalidArgument,
  Unavailable: Code.Unavailable,
  Internal: Code.Internal,
  Unknown: Code.Unknown,
};

function toGrpc(e: unknown): TtrpcError {
  if (e instanceof TtrpcError) return e;
  return new TtrpcError(CODE_OF[errorKind(e)], (e as Error)?.message ?? String(e));
}

function newEntry(execId: string, stdio: StdioPaths, spec?: Process): ProcessEntry {
  let markDone!: () => void;
  const done = new Promise<void>((r) => (markDone = r));
  return { execId, pid: 0, stdio, io: null, state: 'created', exitStatus: 0, exitedAt: null, done, markDone, spec };
}

const notFound = (what: string) => new TtrpcError(Code.NotFound, what);

export interface TaskServiceOptions {
  namespace: string;
  /** Default runtime state root (before the namespace is appended). */
  defaultRoot: string;
  publisher: EventPublisher;
  log: RuntimeContext['log'];
  /** Called when Shutdown finds nothing left to serve. */
  onShutdown: () => void;
}

export class TaskService {
  private tasks = new Map<string, Task>();

  constructor(private readonly opts: TaskServiceOptions) {}

  get size(): number {
    return this.tasks.size;
  }

  private ctxFor(root: string): RuntimeContext {
    return { root, log: this.opts.log, systemdCgroup: false };
  }

  private task(id: string): Task {
    const t = this.tasks.get(id);
    if (!t) throw notFound(`task ${id}: not found`);
    return t;
  }

  private entry(t: Task, execId: string): ProcessEntry {
    if (!execId) return t.init;
    const e = t.execs.get(execId);
    if (!e) throw notFound(`process ${execId}: not found`);
    return e;
  }

  /** Method table for the ttrpc server. */
  methods(): Record<string, Handler> {
    const log = this.opts.log;
    const wrap =
      <Req>(decode: (b: Uint8Array) => Req, fn: (r: Req) => Promise<Uint8Array>): Handler =>
      async (payload) => {
        const req = decode(payload);
        const what = `${(req as { constructor: { name: string } }).constructor.name} ${(req as { id?: string }).id ?? ''} ${(req as { execId?: string }).execId ?? ''}`;
        log.debug(`> ${what}`);
        try {
          const out = await fn(req);
          log.debug(`< ${what}`);
          return out;
        } catch (e) {
          const err = toGrpc(e);
          log.debug(`< ${what}: ${err.message}`);
          throw err;
        }
      };
    const empty = () => encode(T.Empty, {});
    return {
      State: wrap((b) => T.StateRequest.decode(b), async (r) => encode(T.StateResponse, this.state(r.id, r.execId))),
      Create: wrap((b) => T.CreateTaskRequest.decode(b), async (r) => encode(T.CreateTaskResponse, { pid: await this.create(r) })),
      Start: wrap((b) => T.StartRequest.decode(b), async (r) => encode(T.StartResponse, { pid: await this.start(r.id, r.execId) })),
      Delete: wrap((b) => T.DeleteRequest.decode(b), async (r) => encode(T.DeleteResponse, await this.delete(r.id, r.execId))),
      Pids: wrap((b) => T.PidsRequest.decode(b), async (r) => encode(T.PidsResponse, { processes: this.pids(r.id) })),
      Pause: wrap((b) => T.PauseRequest.decode(b), async (r) => {
        await this.task(r.id).container.pause();
        this.opts.publisher.publish('/tasks/paused', { containerId: r.id });
        return empty();
      }),
      Resume: wrap((b) => T.ResumeRequest.decode(b), async (r) => {
        await this.task(r.id).container.resume();
        this.opts.publisher.publish('/tasks/resumed', { containerId: r.id });
        return empty();
      }),
      Checkpoint: wrap((b) => T.CheckpointTaskRequest.decode(b), async () => {
        throw new TtrpcError(Code.Unimplemented, 'checkpoint is not supported by tsrun');
      }),
      Kill: wrap((b) => T.KillRequest.decode(b), async (r) => {
        await this.kill(r.id, r.execId, r.signal, r.all);
        return empty();
      }),
      Exec: wrap((b) => T.ExecProcessRequest.decode(b), async (r) => {
        this.exec(r);
        return empty();
      }),
      ResizePty: wrap((b) => T.ResizePtyRequest.decode(b), async (r) => {
        const e = this.entry(this.task(r.id), r.execId);
        e.io?.resize(r.width, r.height);
        return empty();
      }),
      CloseIO: wrap((b) => T.CloseIORequest.decode(b), async (r) => {
        const e = this.entry(this.task(r.id), r.execId);
        if (r.stdin) e.io?.closeStdin();
        return empty();
      }),
      Update: wrap((b) => T.UpdateTaskRequest.decode(b), async (r) => {
        const t = this.task(r.id);
        let resources: Record<string, unknown>;
        try {
          resources = JSON.parse(Buffer.from(r.resources?.value ?? []).toString('utf8') || '{}');
        } catch (e) {
          throw new TtrpcError(Code.InvalidArgument, `resources: ${(e as Error).message}`);
        }
        await t.container.update(resources);
        return empty();
      }),
      Wait: wrap((b) => T.WaitRequest.decode(b), async (r) => {
        const e = this.entry(this.task(r.id), r.execId);
        await e.done;
        return encode(T.WaitResponse, { exitStatus: e.exitStatus, exitedAt: timestamp(e.exitedAt ?? new Date()) });
      }),
      Stats: wrap((b) => T.StatsRequest.decode(b), async (r) => {
        const t = this.task(r.id);
        return encode(T.StatsResponse, { stats: cgroupMetrics(t.container) });
      }),
      Connect: wrap((b) => T.ConnectRequest.decode(b), async (r) => {
        const t = this.tasks.get(r.id);
        return encode(T.ConnectResponse, { shimPid: process.pid, taskPid: t?.init.pid ?? 0, version: '' });
      }),
      Shutdown: wrap((b) => T.ShutdownRequest.decode(b), async () => {
        // Only a shim that serves nothing goes away (containerd asks after every task delete).
        if (this.tasks.size === 0) setImmediate(() => this.opts.onShutdown());
        return empty();
      }),
    };
  }

  private state(id: string, execId: string) {
    const t = this.task(id);
    const e = this.entry(t, execId);
    let status: number = e.state === 'created' ? Status.CREATED : e.state === 'running' ? Status.RUNNING : Status.STOPPED;
    if (!execId && e.state !== 'stopped') {
      try {
        const s = t.container.status();
        status = s === 'paused' ? Status.PAUSED : s === 'created' ? Status.CREATED : s === 'stopped' ? Status.STOPPED : Status.RUNNING;
      } catch {}
    }
    return {
      id: execId || id,
      bundle: t.bundle,
      pid: e.pid,
      status,
      stdin: e.stdio.stdin,
      stdout: e.stdio.stdout,
      stderr: e.stdio.stderr,
      terminal: e.stdio.terminal,
      exitStatus: e.exitStatus,
      exitedAt: e.exitedAt ? timestamp(e.exitedAt) : undefined,
      execId,
    };
  }

  private async create(r: ReturnType<typeof T.CreateTaskRequest.decode>): Promise<number> {
    if (this.tasks.has(r.id)) throw new TtrpcError(Code.AlreadyExists, `task ${r.id}: already exists`);
    if (r.checkpoint) throw new TtrpcError(Code.Unimplemented, 'restore from a checkpoint is not supported by tsrun');
    const bundle = r.bundle;
    let root = this.opts.defaultRoot;
    let runcOptions: ReturnType<typeof T.RuncOptions.decode> | null = null;
    if (r.options?.value?.length) {
      runcOptions = T.RuncOptions.decode(r.options.value);
      if (runcOptions.root) root = runcOptions.root;
    }
    root = path.join(root, this.opts.namespace);
    const state: ShimState = { root };
    fs.writeFileSync(path.join(bundle, SHIM_STATE_FILE), JSON.stringify(state));
    const stdio: StdioPaths = { stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, terminal: r.terminal };
    const rootfs = path.join(bundle, 'rootfs');
    const mounts: TaskMount[] = (r.rootfs ?? []).map((m) => ({ type: m.type ?? '', source: m.source ?? '', target: (m as { target?: string | null }).target ?? undefined, options: m.options ?? [] }));
    mountRootfs(rootfs, mounts);
    let io: ProcessIo | null = null;
    let consoleDir = '';
    let consoleServer: ConsoleServer | null = null;
    try {
      io = await openProcessIo(stdio, { id: r.id, namespace: this.opts.namespace, log: (m) => this.opts.log.warn(m) });
      let consoleSocket: string | undefined;
      if (r.terminal) {
        // Short path (sun_path holds 108 bytes; bundle paths of 64-character ids do not fit).
        consoleDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-shim-'));
        consoleSocket = path.join(consoleDir, 'console.sock');
        consoleServer = await listenForConsole(consoleSocket);
      }
      // runc's shim options: SystemdCgroup picks the systemd driver (later calls read it from the saved state).
      const ctx = { ...this.ctxFor(root), systemdCgroup: !!runcOptions?.systemdCgroup };
      const container = await Container.create(ctx, r.id, bundle, {
        stdio: io.stdio,
        consoleSocket,
        passFds: { fds: [], env: [] },
        noPivot: runcOptions?.noPivotRoot ?? false,
        noNewKeyring: runcOptions?.noNewKeyring ?? false,
      });
      io.release();
      if (consoleServer) io.attachConsole(await consoleServer.master());
      const init = newEntry('', stdio);
      init.pid = container.pid;
      init.io = io;
      const t: Task = { id: r.id, bundle, container, init, execs: new Map(), rootfsMounted: mounts.length > 0, stopOom: () => {}, starting: null };
      this.tasks.set(r.id, t);
      try {
        t.stopOom = container.watchOom(() => this.opts.publisher.publish('/tasks/oom', { containerId: r.id }));
      } catch (e) {
        this.opts.log.warn(`oom watch of ${r.id}: ${(e as Error).message}`);
      }
      this.opts.publisher.publish('/tasks/create', {
        containerId: r.id,
        bundle,
        rootfs: r.rootfs,
        io: { stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, terminal: r.terminal },
        checkpoint: r.checkpoint,
        pid: container.pid,
      });
      void container.exited!.then((status) => this.initExited(t, status));
      return container.pid;
    } catch (e) {
      io?.close();
      if (mounts.length) unmountAll(rootfs);
      throw e;
    } finally {
      consoleServer?.close();
      if (consoleDir) fs.rmSync(consoleDir, { recursive: true, force: true });
    }
  }

  private async initExited(t: Task, status: number): Promise<void> {
    if (t.starting) await t.starting.catch(() => {});
    t.init.state = 'stopped';
    t.init.exitStatus = status;
    t.init.exitedAt = new Date();
    // Without a pid namespace of its own the container's other processes outlive its init:
    // killed, as the runc shim does, so that their exits come first.
    try {
      if (!t.container.hasOwnPidNamespace()) await t.container.kill(9, true);
    } catch {}
    // The OOM kill that ended it is reported before its exit.
    t.stopOom();
    const running = [...t.execs.values()].filter((e) => e.state === 'running').map((e) => e.done);
    await Promise.race([Promise.all(running), new Promise((r) => setTimeout(r, 5000))]);
    this.opts.publisher.publish('/tasks/exit', { containerId: t.id, id: t.id, pid: t.init.pid, exitStatus: status, exitedAt: timestamp(t.init.exitedAt) });
    t.init.markDone();
  }

  private async start(id: string, execId: string): Promise<number> {
    const t = this.task(id);
    const e = this.entry(t, execId);
    if (!execId) {
      const starting = t.container.start();
      t.starting = starting;
      try {
        await starting;
      } finally {
        t.starting = null;
      }
      if (e.state === 'created') e.state = 'running';
      this.opts.publisher.publish('/tasks/start', { containerId: id, pid: e.pid });
      return e.pid;
    }
    if (e.state !== 'created') throw new TtrpcError(Code.FailedPrecondition, `process ${execId}: already started`);
    let consoleDir = '';
    let consoleServer: ConsoleServer | null = null;
    const io = await openProcessIo(e.stdio, { id, namespace: this.opts.namespace, log: (m) => this.opts.log.warn(m) });
    // Before the process starts: containerd copies stdin from the moment the fifo is open and may
    // send CloseIO while Start is still running; that CloseIO must not be lost (the process would
    // never see EOF). Closed early, the pipe still hands over what was written, then EOF.
    e.io = io;
    try {
      let consoleSocket: string | undefined;
      if (e.stdio.terminal) {
        consoleDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-shim-'));
        consoleSocket = path.join(consoleDir, 'console.sock');
        consoleServer = await listenForConsole(consoleSocket);
      }
      const started = await t.container.exec(e.spec!, { stdio: io.stdio, consoleSocket, passFds: { fds: [], env: [] } });
      io.release();
      if (consoleServer) io.attachConsole(await consoleServer.master());
      e.pid = started.pid;
      e.state = 'running';
      this.opts.publisher.publish('/tasks/exec-started', { containerId: id, execId, pid: e.pid });
      void started.exited.then((status) => {
        e.state = 'stopped';
        e.exitStatus = status;
        e.exitedAt = new Date();
        this.opts.publisher.publish('/tasks/exit', { containerId: id, id: execId, pid: e.pid, exitStatus: status, exitedAt: timestamp(e.exitedAt) });
        e.markDone();
      });
      return e.pid;
    } catch (err) {
      io.close();
      // A process that never ran is done: Wait and Delete must not hang on it.
      e.state = 'stopped';
      e.exitStatus = 255;
      e.exitedAt = new Date();
      e.markDone();
      throw err;
    } finally {
      consoleServer?.close();
      if (consoleDir) fs.rmSync(consoleDir, { recursive: true, force: true });
    }
  }

  private exec(r: ReturnType<typeof T.ExecProcessRequest.decode>): void {
    const t = this.task(r.id);
    if (t.execs.has(r.execId) || !r.execId) throw new TtrpcError(Code.AlreadyExists, `id ${r.execId}: already exists`);
    if (t.init.state === 'stopped') throw new TtrpcError(Code.FailedPrecondition, `container ${r.id} is stopped`);
    let spec: Process;
    try {
      spec = JSON.parse(Buffer.from(r.spec?.value ?? []).toString('utf8'));
    } catch (e) {
      throw new TtrpcError(Code.InvalidArgument, `exec ${r.execId}: process spec: ${(e as Error).message}`);
    }
    t.execs.set(r.execId, newEntry(r.execId, { stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, terminal: r.terminal }, spec));
    this.opts.publisher.publish('/tasks/exec-added', { containerId: r.id, execId: r.execId });
  }

  private async kill(id: string, execId: string, signal: number, all: boolean): Promise<void> {
    const t = this.task(id);
    const e = this.entry(t, execId);
    if (!execId) {
      if (e.state === 'stopped' && !all) throw notFound('process already finished');
      try {
        await t.container.kill(signal, all);
      } catch (err) {
        if (err instanceof RuntimeError && err.message === 'container not running') throw notFound('process already finished');
        throw err;
      }
      return;
    }
    if (e.state !== 'running') throw notFound('process already finished');
    try {
      process.kill(e.pid, signal);
    } catch {
      throw notFound('process already finished');
    }
  }

  private async delete(id: string, execId: string) {
    const t = this.task(id);
    if (execId) {
      const e = this.entry(t, execId);
      if (e.state === 'running') throw new TtrpcError(Code.FailedPrecondition, `cannot delete a running process ${execId}`);
      t.execs.delete(execId);
      e.io?.close();
      return { pid: e.pid, exitStatus: e.exitStatus, exitedAt: timestamp(e.exitedAt ?? new Date()) };
    }
    const e = t.init;
    if (e.state === 'running') throw new TtrpcError(Code.FailedPrecondition, `cannot delete a running task ${id}`);
    // A created task (never started) goes with its waiting init, as runc's delete does.
    try {
      await t.container.delete(true);
    } catch (err) {
      if (errorKind(err) !== 'NotFound') throw err;
    }
    if (e.state === 'created') {
      await Promise.race([e.done, new Promise((r) => setTimeout(r, 2000))]);
      e.state = 'stopped';
      e.exitStatus = e.exitStatus || 137;
      e.exitedAt ??= new Date();
    }
    t.stopOom();
    e.io?.close();
    for (const x of t.execs.values()) x.io?.close();
    if (t.rootfsMounted) unmountAll(path.join(t.bundle, 'rootfs'));
    this.tasks.delete(id);
    const exitedAt = timestamp(e.exitedAt ?? new Date());
    this.opts.publisher.publish('/tasks/delete', { containerId: id, pid: e.pid, exitStatus: e.exitStatus, exitedAt, id });
    return { pid: e.pid, exitStatus: e.exitStatus, exitedAt };
  }

  private pids(id: string) {
    const t = this.task(id);
    const execOf = new Map<number, string>();
    for (const e of t.execs.values()) if (e.state === 'running') execOf.set(e.pid, e.execId);
    return t.container.pids().map((pid) => {
      const execId = execOf.get(pid);
      return execId ? { pid, info: encodeAny('containerd.runc.v1.ProcessDetails', T.ProcessDetails, { execId }) } : { pid };
    });
  }

  /** Shim shutting down: what it still holds (tasks only remain if containerd never deleted them). */
  closeAll(): void {
    for (const t of this.tasks.values()) {
      t.stopOom();
      t.init.io?.close();
    }
  }
}

