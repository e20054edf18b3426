/**
 * Rootless containers (runc's behaviour is the reference):
 *
 * - "rootless EUID" (runc's RootlessEUID): tsrun runs with euid != 0. The container needs a user
 *   namespace and mappings; the uid/gid maps are written from here (setgroups "deny" and the
 *   single own-id map directly, anything else through newuidmap/newgidmap of the host, which check
 *   /etc/subuid and /etc/subgid); no additional groups.
 * - "rootless cgroups" (runc's --rootless, auto by default): cgroup permission errors are not fatal
 *   when no cgroupsPath was given and no limit needs the cgroup (src/cgroups, `rootless` option).
 *
 * Everything here runs in tsrun's own process, which never changes namespace: newuidmap, /proc
 * and /etc/sub[ug]id are the host's.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { PlanIdMapping } from '../native/init-plan';
import { isIdMapped, parseMountOptions } from '../bundle/mount-options';
import type { Spec } from '../bundle/types';
import { RuntimeError } from './errors';

export function isRootlessEuid(): boolean {
  return process.geteuid!() !== 0;
}

/** runc's userns.RunningInUserNS: /proc/self/uid_map is not the identity map of all ids. */
export function runningInUserNamespace(): boolean {
  try {
    const f = fs.readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/);
    return !(f.length === 3 && f[0] === '0' && f[1] === '0' && f[2] === '4294967295');
  } catch {
    return false;
  }
}

/** `--rootless true|false|auto` (runc's parseBoolOrAuto); null = auto. */
export function parseRootlessFlag(v: string | undefined): boolean | null {
  if (v === undefined || v === '' || v.toLowerCase() === 'auto') return null;
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(v)) return false;
  throw new RuntimeError(`--rootless: invalid value ${JSON.stringify(v)} (true, false or auto)`);
}

/**
 * runc's shouldUseRootlessCgroupManager for the cgroupfs driver: the flag when given, else
 * euid != 0, or euid 0 inside a user namespace.
 */
export function rootlessCgroups(flag: boolean | null): boolean {
  if (flag !== null) return flag;
  if (isRootlessEuid()) return true;
  return runningInUserNamespace();
}

/**
 * runc's default --root: $XDG_RUNTIME_DIR/<name> when shouldHonorXDGRuntimeDir (euid != 0, or
 * euid 0 in a user namespace with $USER not "root"), else /run/<name>.
 */
export function defaultStateRoot(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_RUNTIME_DIR ?? '';
  const honor = xdg !== '' && (isRootlessEuid() || (runningInUserNamespace() && env.USER !== 'root'));
  return honor ? path.join(path.resolve(xdg), 'tsrun') : '/run/tsrun';
}

function mapped(id: number, maps: readonly { containerID: number; size: number }[] | undefined): boolean {
  return (maps ?? []).some((m) => id >= m.containerID && id < m.containerID + m.size);
}

/**
 * runc's checks of a rootless (euid != 0) container, before anything exists: a user namespace,
 * both mappings, uid=/gid= mount options of mapped ids, a mapped process user, no additional
 * groups (runc's words for each).
 */
export function checkRootlessConfig(config: Spec): void {
  const linux = config.linux ?? {};
  if (!(linux.namespaces ?? []).some((n) => n.type === 'user')) throw new RuntimeError('rootless container requires user namespaces');
  if (!linux.uidMappings?.length) throw new RuntimeError('rootless containers requires at least one UID mapping');
  if (!linux.gidMappings?.length) throw new RuntimeError('rootless containers requires at least one GID mapping');
  for (const m of config.mounts ?? []) {
    // runc 1.2 (checkIDMapMounts): an id-mapped mount needs the host's root.
    if (isIdMapped(m, parseMountOptions(m.options))) throw new RuntimeError('id-mapped mounts are not supported for rootless containers');
    for (const opt of m.options ?? []) {
      const u = /^uid=(\d+)/.exec(opt);
      if (u && !mapped(Number(u[1]), linux.uidMappings)) throw new RuntimeError('cannot specify uid= mount options for unmapped uid in rootless containers');
      const g = /^gid=(\d+)/.exec(opt);
      if (g && !mapped(Number(g[1]), linux.gidMappings)) throw new RuntimeError('cannot specify gid= mount options for unmapped gid in rootless containers');
    }
  }
  if (config.process) checkRootlessUser(config.process.user, config);
}

/** The process's user in a rootless container (create and exec). */
export function checkRootlessUser(user: { uid?: number; gid?: number; additionalGids?: number[] } | undefined, config: Spec): void {
  const linux = config.linux ?? {};
  const joined = (linux.namespaces ?? []).some((n) => n.type === 'user' && n.path);
  // A joined user namespace has its own maps, which the config need not describe.
  if (!joined && !mapped(user?.uid ?? 0, linux.uidMappings)) throw new RuntimeError('cannot set uid to unmapped user in user namespace');
  if (!joined && !mapped(user?.gid ?? 0, linux.gidMappings)) throw new RuntimeError('cannot set gid to unmapped user in user namespace');
  if (user?.additionalGids?.length) throw new RuntimeError('cannot set any additional groups in a rootless container');
}

const mapLines = (maps: readonly PlanIdMapping[]) => maps.map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');

/** An executable on $PATH (runc's exec.LookPath for newuidmap/newgidmap), absolute; '' when none. */
export function lookPath(name: string, envPath = process.env.PATH ?? ''): string {
  for (const dir of envPath.split(':')) {
    if (!path.isAbsolute(dir)) continue; // never relative to wherever tsrun was started
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {}
  }
  return '';
}

/**
 * Writes the maps of the new user namespace of `pid` (a child stage 0 has not released yet, and
 * has not reaped: the pid cannot be reused meanwhile), as runc's nsexec does: setgroups "deny"
 * when the gid map is exactly the caller's own gid, then each map directly, and on EPERM through
 * newuidmap/newgidmap. Their refusal fails with runc's message and the tool's own words.
 */
export function writeIdMaps(pid: number, uidMappings: readonly PlanIdMapping[], gidMappings: readonly PlanIdMapping[]): void {
  const egid = process.getegid!();
  const ownGidOnly = gidMappings.length === 1 && gidMappings[0].containerID === 0 && gidMappings[0].hostID === egid && gidMappings[0].size === 1;
  const procFile = (f: string) => `/proc/${pid}/${f}`;
  if (ownGidOnly) {
    try {
      fs.writeFileSync(procFile('setgroups'), 'deny');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new RuntimeError(`failed to write 'deny' to /proc/${pid}/setgroups: ${(e as Error).message}`);
    }
  }
  for (const [kind, maps, tool] of [
    ['uid', uidMappings, 'newuidmap'],
    ['gid', gidMappings, 'newgidmap'],
  ] as const) {
    if (!maps.length) continue;
    const file = procFile(`${kind}_map`);
    try {
      // One write(2): the kernel takes the whole map at once.
      fs.writeFileSync(file, mapLines(maps));
      continue;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw new RuntimeError(`failed to update ${file}: ${(e as Error).message}`);
    }
    const exe = lookPath(tool);
    if (!exe) throw new RuntimeError(`failed to use new${kind} map on ${pid}: ${tool} not found in $PATH (Debian: apt-get install uidmap)`);
    const args = [String(pid), ...maps.flatMap((m) => [String(m.containerID), String(m.hostID), String(m.size)])];
    const r = spawnSync(exe, args, { env: {}, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 10_000 });
    if (r.error || r.status !== 0) {
      const why = (r.stderr || r.stdout || '').trim().split('\n').filter(Boolean).pop() ?? (r.error ? r.error.message : `exit status ${r.status}`);
      throw new RuntimeError(`failed to use new${kind} map on ${pid}: ${why}`);
    }
  }
}

/** runc list's owner: the name of the user owning <root>/<id> ("#<uid>" when it has none). */
export function ownerOf(root: string, id: string): string {
  let uid: number;
  try {
    uid = fs.statSync(path.join(root, id)).uid;
  } catch {
    return '';
  }
  try {
    for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length > 2 && Number(f[2]) === uid && f[2] !== '') return f[0];
    }
  } catch {}
  return `#${uid}`;
}
