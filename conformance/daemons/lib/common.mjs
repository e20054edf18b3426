// Helpers shared by the containerd and docker cases.

import fs from 'node:fs';
import { run, readText, sleep } from './proc.mjs';

// POSIX shell quoting, for the command line script(1) hands to /bin/sh.
export const shq = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

// Runs argv under a fresh pseudo-terminal: `script -qec CMD /dev/null` makes a pty, runs CMD
// with it as its controlling terminal and stdio, and (-e) exits with CMD's status.
export function underPty(argv, env, timeoutMs = 30000) {
  return run(['script', '-qec', argv.map(shq).join(' '), '/dev/null'], { env, timeoutMs });
}

// The container writes an ever-increasing counter to this file; we read it from the host
// through /proc/<pid>/root to see whether the container is frozen or running.
export const COUNTER_CMD = ['sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i > /tmp/counter; usleep 10000; done'];

export function counter(pid) {
  const s = readText(`/proc/${pid}/root/tmp/counter`);
  return s === null ? null : Number(s.trim());
}

// True when the counter does not move over `ms` (frozen), false when it does.
export async function counterFrozen(pid, ms = 400) {
  const a = counter(pid);
  await sleep(ms);
  const b = counter(pid);
  return { frozen: a !== null && a === b, a, b };
}

// The freezer state of a v1 cgroup path (relative to the hierarchy), or null.
export function freezerState(cgPath) {
  const s = readText(`/sys/fs/cgroup/freezer${cgPath}/freezer.state`);
  return s === null ? null : s.trim();
}

// The runtime's `state` JSON, or an error string.
export async function runtimeState(env, root, id) {
  const r = await env.rt(root, ['state', id], { timeoutMs: 15000 });
  if (r.code !== 0) return { error: (r.stderr || r.stdout).trim() || `exit ${r.code}` };
  try { return JSON.parse(r.stdout); } catch { return { error: `state output is not JSON: ${r.stdout.slice(0, 200)}` }; }
}

export function exists(p) {
  return fs.existsSync(p);
}
