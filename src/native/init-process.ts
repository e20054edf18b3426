/**
 * Spawning `tsrun-init` (addon/init/) and speaking its sync protocol (addon/init/PROTOCOL.md):
 * one JSON object per line over a unix stream socket in both directions.
 *
 * The lifecycle code drives it: spawnInit → sendPlan → expect `pid` → place that pid in the
 * container's cgroup → sendPlaced → (`hooks` → sendContinue) → `ready` | `error`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Socket } from 'node:net';
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

export function spawnInit(opts: SpawnInitOptions): InitProcess {
  const bin = initBinaryPath();
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch {
    throw new Error(`tsrun-init not found at ${bin} (run: make -C addon/init, or set TSRUN_INIT)`);
  }
  const syncFd = 3 + opts.extraFds.length;
  const base = opts.stdio === 'inherit' ? (['inherit', 'inherit', 'inherit'] as const) : opts.stdio;
  const child: ChildProcess = spawn(bin, [String(syncFd)], {
    stdio: [...base, ...opts.extraFds, 'pipe'],
    env: {},
    // Own session and process group: a Ctrl-C or signal to the CLI's group must not reach it.
    detached: true,
  });
  if (!child.pid) {
    // Failures to spawn are also emitted asynchronously; nothing else will listen for them.
    child.on('error', () => {});
    throw new Error(`spawn ${bin} failed`);
  }
  const pid = child.pid;
  const sock = child.stdio[syncFd] as Socket;

  const queue: InitEvent[] = [];
  const waiters: ((e: InitEvent) => void)[] = [];
  let buffered = '';
  let ended = false;
  const push = (e: InitEvent) => {
    const w = waiters.shift();
    if (w) w(e);
    else queue.push(e);
  };
  const finish = () => {
    if (ended) return;
    ended = true;
    if (buffered.trim()) push({ type: 'error', message: `tsrun-init: truncated message: ${buffered}` });
    buffered = '';
    push({ type: 'eof' });
  };
  sock.setEncoding('utf8');
  sock.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (!line.trim()) continue;
      try {
        push(JSON.parse(line) as InitMessage);
      } catch {
        push({ type: 'error', message: `tsrun-init: unparsable message: ${line}` });
      }
    }
  });
  sock.on('end', finish);
  sock.on('close', finish);
  // EPIPE/ECONNRESET when the init died: the eof (and its exit status) tell the story.
  sock.on('error', finish);

  const stage0Exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  child.on('error', () => {});

  const write = (obj: unknown) => {
    if (!sock.destroyed && sock.writable) sock.write(`${JSON.stringify(obj)}\n`);
  };

  return {
    stage0Pid: pid,
    sendPlan: (plan) => write(plan),
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
      sock.destroy();
      child.unref();
    },
  };
}
