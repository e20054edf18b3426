/**
 * Cgroup management: one Manager interface over cgroup v1, hybrid (v1 controllers + unified) and
 * v2 hosts, with runc's paths, resource semantics and stats shape.
 *
 * Only node built-ins and our own small modules are imported: this is on the CLI start-up path
 * (state, ps, kill, delete all load a manager).
 */
import * as path from 'node:path';
import { DEFAULT_ALLOWED_DEVICES } from './devices';
import { detectLayout, findV2Mount, layoutOf, parseCgroupMounts, parseProcCgroup, readMountinfo, readSelfCgroup, type CgroupLayout, type CgroupMount } from './layout';
import type { CgroupManager, CgroupState, ManagerOptions } from './manager';
import type { LinuxResources } from './types';
import { isRunningSystemd, NOT_RUNNING_SYSTEMD, extraFromAnnotations, SystemdManager, userManagerCgroup } from './systemd';
import { parseSystemdCgroupsPath } from './systemd-props';
import { CgroupError, cleanPath, warmMigrationLock } from './util';
import { hierarchyPath, v1Paths, V1Manager } from './v1/manager';
import { setDeviceFilterLoader, v2Path, V2Manager } from './v2/manager';

export type { CgroupLayout } from './layout';
export type { CgroupManager, CgroupState, DestroyOptions } from './manager';
export type { CgroupStats, LinuxResources } from './types';
export type { DeviceRule } from './devices';
export type { DeviceFilterLoader } from './v2/manager';
export { detectLayout, setDeviceFilterLoader, DEFAULT_ALLOWED_DEVICES, isRunningSystemd, NOT_RUNNING_SYSTEMD as SYSTEMD_NOT_RUNNING };

export interface NewCgroupManagerOptions {
  /** Container id: the default cgroup is "<id>" relative to our own cgroup (runc's fs driver). */
  id: string;
  /** linux.cgroupsPath: absolute = from each hierarchy root; relative = from our own cgroup. */
  cgroupsPath?: string;
  resources?: LinuxResources;
  systemd?: boolean;
  /** The config's annotations: org.systemd.property.* become unit properties (systemd driver). */
  annotations?: Record<string, string>;
  rootless?: boolean;
  warn?: (msg: string) => void;
  /** Tests: force a layout / cgroup2 root / /proc/self/cgroup content (fake cgroupfs trees). */
  layout?: CgroupLayout;
  fsRoot?: string;
  selfCgroup?: string;
}

/**
 * Our own cgroup in one hierarchy (cgroup2's first: any one takes the kernel's migration lock),
 * for primeMigration; none with a fake tree (tests).
 */
function ownCgroupDir(opts: NewCgroupManagerOptions, mounts: () => CgroupMount[], self: Record<string, string>): string | undefined {
  if (opts.fsRoot || opts.selfCgroup || opts.layout) return undefined;
  for (const m of [...mounts()].sort((a, b) => Number(b.fstype === 'cgroup2') - Number(a.fstype === 'cgroup2'))) {
    const own = m.fstype === 'cgroup2' ? self[''] : m.controllers.map((c) => self[c]).find((p) => p !== undefined);
    if (own !== undefined) return hierarchyPath(m, '', own);
  }
  return undefined;
}

/**
 * warmMigrationLock for a caller that places a process into an existing container's cgroup
 * (exec): our own cgroup looked up now (/proc/self/cgroup and mountinfo, a fraction of a ms).
 * Not to be awaited; resolves null, or why there was no warm-up.
 */
export function primeHostMigration(): Promise<string | null> {
  try {
    const dir = ownCgroupDir({ id: '' }, hostMounts(), parseProcCgroup(readSelfCgroup()));
    return dir ? warmMigrationLock(dir) : Promise.resolve('no cgroup hierarchy of our own');
  } catch (e) {
    return Promise.resolve((e as Error).message);
  }
}

/** Where the cgroup2 hierarchy is mounted: the given root (tests), else /proc/self/mountinfo's. */
function v2MountRoot(fsRoot: string | undefined, mounts: () => CgroupMount[]): string {
  if (fsRoot) return fsRoot;
  const m = findV2Mount(mounts());
  if (!m) throw new Error('cgroup v2: no cgroup2 mount in /proc/self/mountinfo');
  return m.mountpoint;
}

/**
 * /proc/self/mountinfo parsed once per manager, when first needed: the layout and every
 * hierarchy's path come from the same reading (each reading of a big mountinfo costs a
 * daemon's event loop a noticeable share of a millisecond).
 */
function hostMounts(): () => CgroupMount[] {
  let mounts: CgroupMount[] | undefined;
  return () => (mounts ??= parseCgroupMounts(readMountinfo()));
}

export function newCgroupManager(opts: NewCgroupManagerOptions): CgroupManager {
  if (opts.systemd) return newSystemdManager(opts);
  const given = opts.cgroupsPath ?? '';
  const inner = given === '' ? cleanPath(opts.id) : cleanPath(given);
  if (inner === '' || inner === '/') {
    throw new Error(`linux.cgroupsPath: ${JSON.stringify(given || opts.id)} is not a valid cgroup path (it must name a cgroup below the root)`);
  }
  const mounts = hostMounts();
  const layout = opts.layout ?? layoutOf(mounts());
  const self = parseProcCgroup(opts.selfCgroup ?? readSelfCgroup());
  const mopts: ManagerOptions & { fsRoot?: string } = {
    resources: opts.resources,
    rootless: opts.rootless,
    cgroupsPathGiven: given !== '',
    warn: opts.warn,
    fsRoot: opts.fsRoot,
    ownCgroup: ownCgroupDir(opts, mounts, self),
  };
  if (layout === 'v2') {
    const root = (mopts.fsRoot = v2MountRoot(opts.fsRoot, mounts));
    return new V2Manager({ layout, paths: { '': v2Path(root, self[''] ?? '/', inner) } }, mopts);
  }
  const paths = v1Paths(mounts(), self, inner, layout);
  if (Object.keys(paths).length === 0) throw new Error('cgroup v1: no cgroup hierarchy is mounted');
  return new V1Manager({ layout, paths }, mopts);
}

/**
 * The systemd driver: the unit named by cgroupsPath ("slice:prefix:name", or tsrun-<id>.scope in
 * system.slice), at the directory systemd gives it in every hierarchy.
 */
function newSystemdManager(opts: NewCgroupManagerOptions): CgroupManager {
  // (Tests that force a layout or a cgroup2 root run without systemd.)
  if (!opts.fsRoot && !opts.layout && !isRunningSystemd()) throw new CgroupError(NOT_RUNNING_SYSTEMD);
  const n = parseSystemdCgroupsPath(opts.cgroupsPath, opts.id, opts.rootless);
  const extra = extraFromAnnotations(opts.annotations);
  const mounts = hostMounts();
  const layout = opts.layout ?? layoutOf(mounts());
  if (layout !== 'v2' && opts.rootless) throw new CgroupError('cannot use rootless systemd cgroups manager on cgroup v1');
  let inner = n.cgroup;
  // Rootless: the user's manager (over the user bus), whose slices live below its own cgroup
  // (user@<uid>.service). Asked here, before anything exists: no user bus fails the create with
  // runc's words and leaves nothing.
  if (opts.rootless) inner = path.posix.join(userManagerCgroup(), inner);
  const state: CgroupState = { layout, paths: {}, systemd: { unit: n.unit, slice: n.slice, user: !!opts.rootless, ...(extra ? { extra } : {}) } };
  if (layout === 'v2') {
    const root = v2MountRoot(opts.fsRoot, mounts);
    state.paths = { '': v2Path(root, '/', inner) };
    const mopts = { resources: opts.resources, rootless: opts.rootless, warn: opts.warn, fsRoot: root };
    return new SystemdManager(state, new V2Manager(state, mopts), mopts);
  }
  const self = parseProcCgroup(opts.selfCgroup ?? readSelfCgroup());
  state.paths = v1Paths(mounts(), self, inner, layout);
  if (!state.paths.devices) throw new CgroupError('cgroup v1: the devices hierarchy is not mounted (the systemd driver needs it)');
  const mopts = { resources: opts.resources, warn: opts.warn };
  return new SystemdManager(state, new V1Manager(state, mopts), mopts);
}

/** A manager for an existing container, from the state saved at create time. */
export function loadCgroupManager(state: CgroupState, opts: { warn?: (msg: string) => void; fsRoot?: string } = {}): CgroupManager {
  if (!state || typeof state !== 'object' || !state.paths) throw new Error('invalid cgroup state: no paths');
  if (state.systemd) {
    // Only the unit name is needed to stop it: a host whose systemd is gone can still clean up files.
    const fsState: CgroupState = { layout: state.layout, paths: state.paths };
    const inner = loadCgroupManager(fsState, opts);
    return new SystemdManager(state, inner, { warn: opts.warn });
  }
  if (state.layout === 'v2') {
    let fsRoot = opts.fsRoot;
    if (!fsRoot) fsRoot = findV2Mount(parseCgroupMounts(readMountinfo()))?.mountpoint;
    return new V2Manager(state, { warn: opts.warn, fsRoot });
  }
  if (state.layout === 'v1' || state.layout === 'hybrid') return new V1Manager(state, { warn: opts.warn });
  throw new Error(`invalid cgroup state: unknown layout ${JSON.stringify((state as CgroupState).layout)}`);
}

