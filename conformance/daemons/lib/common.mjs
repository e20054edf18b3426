// Helpers shared by the containerd and docker cases.

import fs from 'node:fs';
import { run, readText, sleep } from './proc.mjs';

// POSIX shell quoting, for the command line script(1) hands to /bin/sh.
export const shq = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

// Runs argv under a fresh pseudo-terminal: `script -qec CMD /dev/null` makes a pty, runs CMD
// with it as its controlling terminal and stdio, and (-e) exits with CMD's status.
export function underPty(argv, env, timeoutMs = 30000, cwd = undefined) {
  return run(['script', '-qec', argv.map(shq).join(' '), '/dev/null'], { env, timeoutMs, cwd });
}

// The container writes an ever-increasing counter to this file; we read it from the host
// through /proc/<pid>/root to see whether the container is frozen or running.
// Written to a temp file and renamed: a reader never sees the truncated, empty file that
// `echo > file` leaves for an instant (read as 0, it made an unpaused counter look reset).
export const COUNTER_CMD = ['sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i > /tmp/counter.tmp; mv /tmp/counter.tmp /tmp/counter; usleep 10000; done'];

export function counter(pid) {
  for (let i = 0; i < 5; i++) {
    const s = readText(`/proc/${pid}/root/tmp/counter`);
    if (s === null) return null;
    if (s.trim() !== '') return Number(s.trim());
  }
  return null;
}

// True when the counter does not move over `ms` (frozen), false when it does.
export async function counterFrozen(pid, ms = 400) {
  const a = counter(pid);
  await sleep(ms);
  const b = counter(pid);
  return { frozen: a !== null && a === b, a, b };
}

// cgroup v2 only (unified at /sys/fs/cgroup) or v1/hybrid (this VM): the daemons use one or
// the other, so the host-side checks read whichever the host has.
export const UNIFIED = fs.existsSync('/sys/fs/cgroup/cgroup.controllers');

// Directories a container's cgroup path (relative to the hierarchy root) occupies on the host.
export function cgroupDirs(cgPath) {
  return UNIFIED ? [`/sys/fs/cgroup${cgPath}`] : ['memory', 'pids', 'freezer', 'cpu'].map((c) => `/sys/fs/cgroup/${c}${cgPath}`);
}

// 'FROZEN' / 'THAWED' (v1 freezer.state; v2 cgroup.freeze mapped to the same words), or null.
export function freezerState(cgPath) {
  if (UNIFIED) {
    const s = readText(`/sys/fs/cgroup${cgPath}/cgroup.freeze`);
    return s === null ? null : s.trim() === '1' ? 'FROZEN' : 'THAWED';
  }
  const s = readText(`/sys/fs/cgroup/freezer${cgPath}/freezer.state`);
  return s === null ? null : s.trim();
}

// The memory limit of a cgroup path as a string of bytes ('max' on v2 when unlimited).
export function memoryLimit(cgPath) {
  const s = UNIFIED ? readText(`/sys/fs/cgroup${cgPath}/memory.max`) : readText(`/sys/fs/cgroup/memory${cgPath}/memory.limit_in_bytes`);
  return s === null ? null : s.trim();
}

// Memory + swap limit: v1 memory.memsw.limit_in_bytes; v2 memory.swap.max is swap alone.
export function memswLimit(cgPath) {
  if (UNIFIED) {
    const m = readText(`/sys/fs/cgroup${cgPath}/memory.max`);
    const sw = readText(`/sys/fs/cgroup${cgPath}/memory.swap.max`);
    return m === null || sw === null ? null : String(Number(m) + Number(sw));
  }
  const s = readText(`/sys/fs/cgroup/memory${cgPath}/memory.memsw.limit_in_bytes`);
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

// `ctr task ls` → { id: { pid, status } }
export async function ctrTasks(e) {
  const r = await e.ctr(['task', 'ls'], { timeoutMs: 10000 });
  const out = {};
  for (const line of r.stdout.split('\n').slice(1)) {
    const [id, pid, status] = line.trim().split(/\s+/);
    if (id) out[id] = { pid: Number(pid), status };
  }
  return out;
}
