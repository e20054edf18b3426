/**
 * The state of each container lives in <root>/<id>/state.json, written atomically (temp file +
 * rename) so that a concurrent reader sees the old or the new state, never half of one.
 * <root> is 0700 (it holds every container's config); <root>/<id> is 0711.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CgroupState } from '../cgroups';
import type { Spec } from '../spec/types';
import { containerDir } from './ids';

export const OCI_VERSION = '1.2.0';

export interface SavedState {
  id: string;
  /** Host pid of the container init; 0 before it exists. */
  initPid: number;
  /** /proc/<initPid>/stat start time, to recognise the same process later. */
  initStartTime: number;
  bundle: string;
  rootfs: string;
  /** RFC 3339 with nanoseconds, like runc. */
  created: string;
  owner: string;
  /** The config as it was at create time: later changes to the bundle do not matter. */
  config: Spec;
  cgroup: CgroupState | null;
  /** Set once `start` has released the init. */
  started: boolean;
}

export interface OciState {
  ociVersion: string;
  id: string;
  pid: number;
  status: 'creating' | 'created' | 'running' | 'paused' | 'stopped';
  bundle: string;
  rootfs: string;
  created: string;
  annotations?: Record<string, string>;
  owner: string;
}

export const STATE_FILE = 'state.json';
export const EXEC_FIFO = 'exec.fifo';
export const START_REPLY_FIFO = 'start.fifo';

export function ensureRoot(root: string): void {
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  // An existing root made by someone else with looser permissions is tightened, as runc does.
  const st = fs.statSync(root);
  if ((st.mode & 0o077) !== 0) fs.chmodSync(root, 0o700);
}

export function readState(root: string, id: string): SavedState | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(containerDir(root, id), STATE_FILE), 'utf8')) as SavedState;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

export function writeState(root: string, state: SavedState): void {
  const dir = containerDir(root, state.id);
  const tmp = path.join(dir, `.${STATE_FILE}.${process.pid}`);
  fs.writeFileSync(tmp, JSON.stringify(state), { mode: 0o600 });
  fs.renameSync(tmp, path.join(dir, STATE_FILE));
}

export function listIds(root: string): string[] {
  try {
    return fs
      .readdirSync(root, { withFileTypes: true })
      .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
      .map((d) => d.name)
      .sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/** RFC 3339 with nanosecond precision (Go's time.RFC3339Nano, which runc prints). */
export function rfc3339Nano(d = new Date(), extraNanos = 0): string {
  const iso = d.toISOString(); // 2026-11-22T12:00:00.123Z
  const ms = iso.slice(20, 23);
  const frac = (ms + String(extraNanos).padStart(6, '0')).replace(/0+$/, '');
  return iso.slice(0, 19) + (frac ? '.' + frac : '') + 'Z';
}
