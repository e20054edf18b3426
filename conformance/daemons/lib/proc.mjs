// Running commands and waiting for things. Built-ins only.

import { spawn } from 'node:child_process';
import fs from 'node:fs';

// Runs argv[0] with argv[1..]; never throws for a non-zero exit, only returns it.
// Resolves once the child has exited and its pipes are drained. A grandchild that inherited the
// pipes (a daemonising shim, a container process) must not hang us, so after the exit we wait at
// most `drainMs` for the pipes to close. On timeout the child's process group gets SIGKILL
// (we spawn it detached, so the group is ours alone) and `timedOut` is set.
export function run(argv, { timeoutMs = 30000, env, input, drainMs = 2000, cwd } = {}) {
  return new Promise((resolve) => {
    const started = Date.now();
    let child;
    try {
      child = spawn(argv[0], argv.slice(1), {
        env: env ?? process.env,
        cwd,
        stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        detached: true,
      });
    } catch (e) {
      resolve({ code: -1, signal: null, stdout: '', stderr: String(e), ms: 0, timedOut: false });
      return;
    }
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    if (input !== undefined) child.stdin.end(input);
    let timedOut = false;
    let done = false;
    let exit = null;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(drainTimer);
      resolve({ code: exit?.code ?? -1, signal: exit?.signal ?? null, stdout, stderr, ms: Date.now() - started, timedOut });
    };
    let drainTimer;
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
    }, timeoutMs);
    child.on('error', (e) => { stderr += String(e); exit = { code: -1, signal: null }; finish(); });
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      drainTimer = setTimeout(finish, drainMs);
    });
    child.on('close', (code, signal) => { exit = exit ?? { code, signal }; finish(); });
  });
}

// Starts a long-running daemon with its output in a log file; returns the ChildProcess.
// Detached: its own process group, so a Ctrl-C on our terminal reaches only us and our cleanup
// decides how the daemon stops.
export function startDaemon(argv, logFile, env) {
  const fd = fs.openSync(logFile, 'a');
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', fd, fd], detached: true, env: env ?? process.env });
  fs.closeSync(fd);
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  child.on('error', () => {});
  return child;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn() (sync or async) until it returns a truthy value or the time is up; returns the last value.
export async function waitFor(fn, { timeoutMs = 10000, intervalMs = 100 } = {}) {
  const end = Date.now() + timeoutMs;
  let v;
  for (;;) {
    try { v = await fn(); } catch { v = undefined; }
    if (v) return v;
    if (Date.now() > end) return v;
    await sleep(intervalMs);
  }
}

export function readText(p) {
  try { return fs.readFileSync(p, 'utf8'); } catch { return null; }
}

// Host-side facts about a pid, for proving that what a daemon reports is real.
export function pidAlive(pid) {
  const s = readText(`/proc/${pid}/stat`);
  if (s === null) return false;
  // A zombie is dead for our purposes.
  const state = s.slice(s.lastIndexOf(')') + 2).split(' ')[0];
  return state !== 'Z' && state !== 'X';
}

export function nsLink(pid, ns) {
  try { return fs.readlinkSync(`/proc/${pid}/ns/${ns}`); } catch { return null; }
}

export function cmdline(pid) {
  const s = readText(`/proc/${pid}/cmdline`);
  return s === null ? null : s.split('\0').filter(Boolean);
}

// One line, at most n characters: for the table's detail column.
export const short = (s, n = 300) => {
  const t = String(s ?? '').replace(/\s+/g, ' ').trim();
  return t.length > n ? `${t.slice(0, n)}…` : t;
};

// Host pids of the children of a host pid (from /proc/<pid>/task/*/children).
export function children(pid) {
  const out = [];
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      const s = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (s) out.push(...s.split(/\s+/).map(Number));
    }
  } catch { /* gone */ }
  return out;
}
