/**
 * Spawning `tsrun-init` (addon/init/) and speaking its sync protocol (addon/init/PROTOCOL.md):
 * one JSON object per line over a unix stream socket in both directions.
 *
 * The lifecycle code drives it: spawnInit → sendPlan → expect `pid` → place that pid in the
 * container's cgroup → sendPlaced → (`hooks` → sendContinue) → `ready` | `error`.
 */
import { channel } from 'node:diagnostics_channel';
import * as fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import * as path from 'node:path';
import { native } from './addon';
import type { InitMessage, InitPlan } from './init-plan';

export interface SpawnInitOptions {
  /** fds 0, 1, 2 of the container process, or the caller's own. */
  stdio: [number, number, number] | 'inherit';
  /** Preserved fds, in order: they become fds 3 .. 3+n-1 of the init (and of the container). */
  extraFds: number[];
}

export type InitEvent = InitMessage | { type: 'eof' };

export interface InitProcess {
  /** Host pid of stage 0 (the spawned process). */
  readonly stage0Pid: number;
  sendPlan(plan: InitPlan): void;
  sendContinue(): void;
  /** After `pid`: the container process is in its cgroup; stage 0 may release it. */
  sendPlaced(): void;
  /** The next message from the init; `eof` once the socket is closed (and forever after). */
  next(): Promise<InitEvent>;
  readonly stage0Exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL to stage 0's process group (stage 0 and whatever has not left it yet). */
  kill(): void;
  /** Stop listening: the socket is closed and neither keeps the event loop alive. */
  detach(): void;
}

function findRepoRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`tsrun-init: no package.json above ${start}`);
  }
}

export function initBinaryPath(): string {
  return process.env.TSRUN_INIT || path.join(findRepoRoot(__dirname), 'addon', 'init', 'tsrun-init');
}

/**
 * What TSRUN_TRACE's probes (src/cli/trace-probes.ts) time: `{ phase: 'spawn' }` before the
 * spawn, `{ phase: 'spawned', socket, exited }` after it. Nothing is built unless subscribed.
 */
export const INIT_SPAWN_CHANNEL = 'tsrun:init-spawn';
const spawnChannel = channel(INIT_SPAWN_CHANNEL);

function signalName(sig: number): NodeJS.Signals {
  for (const [name, num] of Object.entries(osConstants.signals)) if (num === sig) return name as NodeJS.Signals;
  return `SIG${sig}` as NodeJS.Signals;
}

export async function spawnInit(opts: SpawnInitOptions): Promise<InitProcess> {
  const bin = initBinaryPath();
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch {
    throw new Error(`tsrun-init not found at ${bin} (run: make -C addon/init, or set TSRUN_INIT)`);
  }
  const syncFd = 3 + opts.extraFds.length;
  const n = native();
  const [ours, theirs] = n.socketpair();
  let pid: number;
  if (spawnChannel.hasSubscribers) spawnChannel.publish({ phase: 'spawn' });
  try {
    // Not child_process.spawn: libuv forks this whole process, for a time that grows with its
    // memory, with the event loop blocked (addon/native/spawn.cc). In its own session and process
    // group: a Ctrl-C or signal to the CLI's group must not reach it. On the thread pool: the
    // calling thread waits until the child has exec'd.
    pid = await n.spawnProcess(bin, [String(syncFd)], [...(opts.stdio === 'inherit' ? [0, 1, 2] : opts.stdio), ...opts.extraFds, theirs]);
  } catch (e) {
    fs.closeSync(ours);
    throw new Error(`spawn ${bin} failed: ${(e as Error).message}`);
  } finally {
    fs.closeSync(theirs);
  }
  // Our child, not reaped before its pidfd says it exited: the pid cannot be anybody else's.
  const pidfd = n.pidfdOpen(pid);

  const queue: InitEvent[] = [];
  const waiters: ((e: InitEvent) => void)[] = [];
  let buffered = '';
  let ended = false;
  let sockFd = ours;
  const push = (e: InitEvent) => {
    const w = waiters.shift();
    if (w) w(e);
    else queue.push(e);
  };
  const closeSock = () => {
    if (sockFd < 0) return;
    fs.closeSync(sockFd);
    sockFd = -1;
  };
  const finish = () => {
    if (ended) return;
    ended = true;
    closeSock();
    if (buffered.trim()) push({ type: 'error', message: `tsrun-init: truncated message: ${buffered}` });
    buffered = '';
    push({ type: 'eof' });
  };
  // The socket is read only when the reactor says it is readable (addon/native/wait.cc), so a
  // read never blocks; no node:net (it costs its load at every create, and not every engine can
  // wrap an fd in a net.Socket).
  const chunk = Buffer.alloc(65536);
  const readSome = () => {
    if (sockFd < 0) return;
    let got: number;
    try {
      got = fs.readSync(sockFd, chunk, 0, chunk.length, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return waitForData();
      // ECONNRESET when the init died: the eof (and its exit status) tell the story.
      return finish();
    }
    if (got === 0) return finish();
    buffered += chunk.toString('utf8', 0, got);
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (!line.trim()) continue;
      let msg: InitMessage;
      try {
        msg = JSON.parse(line) as InitMessage;
      } catch {
        push({ type: 'error', message: `tsrun-init: unparsable message: ${line}` });
        continue;
      }
      if (spawnChannel.hasSubscribers) spawnChannel.publish({ phase: 'recv', type: msg.type });
      push(msg);
    }
    waitForData();
  };
  let dataWait = 0;
  const waitForData = () => {
    if (sockFd >= 0) dataWait = n.waitReadable(sockFd, -1, readSome);
  };
  waitForData();

  let exitWait = 0;
  let detached = false;
  const stage0Exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    const wait = () => {
      exitWait = n.waitReadable(pidfd, -1, () => {
        const st = n.pidfdReap(pidfd);
        if (!st) return wait(); // readable only once it exited: never, but not reaped is not exited
        fs.closeSync(pidfd);
        resolve({ code: st.code, signal: st.signal === null ? null : signalName(st.signal) });
      });
      if (detached) n.unrefWait(exitWait);
    };
    wait();
  });

  if (spawnChannel.hasSubscribers) spawnChannel.publish({ phase: 'spawned', exited: stage0Exit });

  // Blocking writes: the init reads its whole plan at once and sends only a few short lines
  // itself, so a write waits at most for the init to drain a plan larger than the socket buffer.
  const write = (obj: { type?: string }) => {
    if (sockFd < 0 || ended) return;
    if (spawnChannel.hasSubscribers) spawnChannel.publish({ phase: 'send', type: obj.type ?? 'plan' });
    const data = Buffer.from(`${JSON.stringify(obj)}\n`);
    try {
      for (let off = 0; off < data.length; ) off += fs.writeSync(sockFd, data, off);
    } catch {
      // EPIPE: the init is gone; its eof and exit status tell the story.
    }
  };

  return {
    stage0Pid: pid,
    sendPlan: (plan) => write(plan as { type?: string }),
    sendContinue: () => write({ type: 'continue' }),
    sendPlaced: () => write({ type: 'placed' }),
    next: () => {
      const e = queue.shift();
      if (e) return Promise.resolve(e);
      if (ended && queue.length === 0) return Promise.resolve({ type: 'eof' });
      return new Promise((resolve) => waiters.push(resolve));
    },
    stage0Exit,
    kill: () => {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
    },
    detach: () => {
      ended = true;
      n.cancelWait(dataWait);
      closeSock();
      // Still reaped when it exits, without keeping the event loop alive for it.
      detached = true;
      n.unrefWait(exitWait);
    },
  };
}
