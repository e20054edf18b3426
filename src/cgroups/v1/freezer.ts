/**
 * v1 freezer: pause and resume through freezer.state. Nothing in linux.resources is written
 * here; the manager uses it for pause/resume, kill --all, and atomic device rule changes.
 */
import * as path from 'node:path';
import { CgroupError, readCgroupFile, sleep, writeCgroupFile, writeCgroupFileAsync } from '../util';

const stateFile = (dir: string) => path.join(dir, 'freezer.state');

export function freezerState(dir: string): string {
  return readCgroupFile(stateFile(dir)).trim();
}

/**
 * Writes `want` until freezer.state shows it: a cgroup can stay FREEZING while a task is in an
 * uninterruptible sleep, so the request is repeated, for ~10 s. Returns whether it got there.
 */
async function reach(dir: string, want: 'FROZEN' | 'THAWED'): Promise<boolean> {
  for (let i = 0; i < 1000; i++) {
    if (i % 50 === 0) writeCgroupFile(stateFile(dir), want);
    if (freezerState(dir) === want) return true;
    await sleep(10);
  }
  return false;
}

/** Gives up by thawing rather than leave the cgroup half frozen. */
export async function freeze(dir: string): Promise<void> {
  if (await reach(dir, 'FROZEN')) return;
  writeCgroupFile(stateFile(dir), 'THAWED');
  throw new CgroupError(`${stateFile(dir)}: unable to freeze: still FREEZING after 10 s`);
}

export async function thaw(dir: string): Promise<void> {
  if (!(await reach(dir, 'THAWED'))) throw new CgroupError(`${stateFile(dir)}: unable to thaw`);
}

/**
 * Freezes for the length of a device rules change (5 s at most, polled without holding up the
 * event loop). Returns the thaw; null when the cgroup is already frozen (paused: it stays so).
 * Its writes go through writeCgroupFileAsync, so an update's rollback journal sees them.
 */
export async function freezeForChange(dir: string): Promise<(() => Promise<void>) | null> {
  const file = stateFile(dir);
  if (freezerState(dir) === 'FROZEN') return null;
  for (let i = 0; i < 500; i++) {
    if (i % 50 === 0) await writeCgroupFileAsync(file, 'FROZEN');
    if (freezerState(dir) === 'FROZEN') return () => writeCgroupFileAsync(file, 'THAWED');
    await sleep(10);
  }
  await writeCgroupFileAsync(file, 'THAWED');
  throw new CgroupError(`${file}: could not freeze the container (still FREEZING after 5 s) to change its device rules atomically; they were not changed`);
}
