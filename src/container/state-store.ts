/**
 * The state of each container lives in <root>/<id>/state.json, written atomically (temp file +
 * rename, through files.ts) so that a concurrent reader sees the old or the new state, never half
 * of one. <root> is 0700 (it holds every container's config); <root>/<id> is 0711.
 * <root> is trusted only when nobody else can write it (see checkRoot): a state.json planted
 * there would make tsrun signal, and remove the cgroups of, whatever it names.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CgroupState } from '../cgroups';
import type { Spec } from '../bundle/types';
import { createFileAtomically, ensurePrivateDir } from './files';
import { RuntimeError } from './errors';
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
  /**
   * While initPid is 0: the tsrun process creating the container (pid and /proc start time). A
   * creator that is gone left a half-created container: its status is then "stopped".
   */
  creatorPid?: number;
  creatorStartTime?: number;
}

/**
 * Written once, before anything outside the state dir exists (intent before effect): what a
 * `delete -f` must remove even when state.json is missing, truncated or garbage.
 */
export interface Intent {
  id: string;
  cgroup: CgroupState | null;
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
export const INTENT_FILE = 'intent.json';
export const EXEC_FIFO = 'exec.fifo';
export const START_REPLY_FIFO = 'start.fifo';

/**
 * The state root for create: made 0700 when missing. An existing one must be a real directory
 * (its last component is not followed), owned by the user tsrun runs as (uid 0 as root) and not
 * writable by group or others, or it is refused; read/search bits for others are dropped (0700).
 */
export function ensureRoot(root: string): void {
  ensurePrivateDir(root, { what: 'state directory (--root)', create: true, tighten: true });
}

/** The same checks for commands that only read the root; a missing root holds no container. */
export function checkRoot(root: string): boolean {
  return ensurePrivateDir(root, { what: 'state directory (--root)', create: false, tighten: false });
}

/** A state.json that cannot be read back: `state` reports it, `delete -f` falls back on the intent. */
export class CorruptStateError extends RuntimeError {}

export function readState(root: string, id: string): SavedState | null {
  if (!checkRoot(root)) return null;
  const file = path.join(containerDir(root, id), STATE_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  let saved: SavedState;
  try {
    saved = JSON.parse(text) as SavedState;
  } catch (e) {
    throw new CorruptStateError(`${file}: corrupt container state (${text.length === 0 ? 'empty' : (e as Error).message}); delete -f removes the container`);
  }
  if (!saved || typeof saved !== 'object' || saved.id !== id || typeof saved.initPid !== 'number' || !saved.config) {
    throw new CorruptStateError(`${file}: corrupt container state (not tsrun's state of ${id}); delete -f removes the container`);
  }
  return saved;
}

export function writeIntent(root: string, intent: Intent): Promise<void> {
  return createFileAtomically(containerDir(root, intent.id), INTENT_FILE, JSON.stringify(intent), { mode: 0o600, sync: false });
}

export function readIntent(root: string, id: string): Intent | null {
  try {
    const v = JSON.parse(fs.readFileSync(path.join(containerDir(root, id), INTENT_FILE), 'utf8')) as Intent;
    return v && v.id === id ? v : null;
  } catch {
    return null;
  }
}

export function writeState(root: string, state: SavedState): Promise<void> {
  // The directory is private and the writer holds the container's lock; the temp name is unique
  // anyway, so that a temp file left by a killed tsrun never blocks the next write. No fsync (as
  // runc): the state means nothing after a reboot, and the rename alone is atomic for readers.
  const tmpName = `.${STATE_FILE}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  return createFileAtomically(containerDir(root, state.id), STATE_FILE, JSON.stringify(state), { mode: 0o600, tempName: tmpName, sync: false });
}

export function listIds(root: string): string[] {
  if (!checkRoot(root)) return [];
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
