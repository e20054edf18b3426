/**
 * Host process facts from /proc. A pid alone is not an identity: after the init exits its pid can
 * be reused, so every saved pid goes with the start time (field 22 of /proc/<pid>/stat, in clock
 * ticks since boot) it had, and is only trusted, let alone signalled, while that still matches.
 */
import * as fs from 'node:fs';
import { native } from '../native/addon';

export interface ProcStat {
  state: string;
  ppid: number;
  startTime: number;
}

export function readProcStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may itself contain spaces or ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0], ppid: Number(rest[1]), startTime: Number(rest[19]) };
}

/** The process exists, is the one we started (same start time), and is not a zombie. */
export function isSameProcessAlive(pid: number, startTime: number): boolean {
  if (pid <= 0) return false;
  const st = readProcStat(pid);
  return st !== null && st.startTime === startTime && st.state !== 'Z' && st.state !== 'X';
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Waits until the process is gone (exited: a zombie counts as gone); false on timeout. It is not
 * our child: its pidfd becomes readable when it exits, and pins it, so a start time that matches
 * after the open means the pidfd is that very process's.
 */
export async function waitGone(pid: number, startTime: number, timeoutMs: number): Promise<boolean> {
  if (pid <= 0) return true;
  let pidfd: number;
  try {
    pidfd = native().pidfdOpen(pid);
  } catch {
    return true; // ESRCH: no such process any more
  }
  try {
    if (!isSameProcessAlive(pid, startTime)) return true;
    const ms = Math.min(Math.max(0, Math.ceil(timeoutMs)), 2 ** 31 - 1); // an int32 for libuv's timer
    return await new Promise<boolean>((resolve) => native().waitReadable(pidfd, ms, resolve));
  } finally {
    fs.closeSync(pidfd);
  }
}
