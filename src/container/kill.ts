/** kill: a signal to the init (or, with --all, to every process of the container). */
import * as fs from 'node:fs';
import { native } from '../native/addon';
import type { RuntimeContext } from './context';
import { SIGRTMAX } from '../bundle/signals';
import { managerOf } from './container-cgroup';
import { errInvalid, errNotRunning } from './errors';
import { savedContainerPids } from './pids';
import { isSameProcessAlive } from './proc';
import { deriveStatus, loadContainer } from './state';
import type { SavedState } from './state-store';
import { checkTransition } from './transitions';

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

export async function killContainer(ctx: RuntimeContext, id: string, signal: number, all: boolean): Promise<void> {
  // A caller of the library passes a number (the CLI parses names: src/bundle/signals.ts); one
  // that is no signal is the caller's error, said as runc's kill says it, not the kernel's EINVAL.
  if (!Number.isInteger(signal) || signal < 0 || signal > SIGRTMAX) throw errInvalid(`invalid signal: ${signal}`);
  const saved = loadContainer(ctx.root, id);
  const status = deriveStatus(ctx.root, saved);
  checkTransition(all ? 'killAll' : 'kill', status, id);
  if (!all) {
    signalInit(saved, signal);
    return;
  }
  if (saved.cgroup) {
    // Also for a stopped container: what is left in its cgroup (a shared pid namespace).
    managerOf(ctx, saved.cgroup).killAll(signal);
    return;
  }
  // No cgroup (rootless): nothing left to signal once stopped.
  if (status === 'stopped') return;
  // Every process of its pid namespace, the init last.
  const pids = savedContainerPids(saved).filter((p) => p !== saved.initPid);
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {}
  }
  signalInit(saved, signal);
}
