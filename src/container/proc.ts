/**
 * Host process facts from /proc. A pid alone is not an identity: after the init exits its pid can
 * be reused, so every saved pid goes with the start time (field 22 of /proc/<pid>/stat, in clock
 * ticks since boot) it had, and is only trusted, let alone signalled, while that still matches.
 */
import * as fs from 'node:fs';

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

/** Waits (polling: the process is not our child) until it is gone; false on timeout. */
export async function waitGone(pid: number, startTime: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
    if (!isSameProcessAlive(pid, startTime)) return true;
    if (Date.now() > deadline) return false;
    await sleep(delay);
  }
}
