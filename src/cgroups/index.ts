/**
 * Cgroup management: one Manager interface over cgroup v1, hybrid (v1 controllers + unified) and
 * v2 hosts, with runc's paths, resource semantics and stats shape.
 *
 * Only node built-ins and our own small modules are imported: this is on the CLI start-up path
 * (state, ps, kill, delete all load a manager).
 */
import { DEFAULT_ALLOWED_DEVICES } from './devices';
import { detectLayout, findV2Mount, parseCgroupMounts, parseProcCgroup, readMountinfo, readSelfCgroup, type CgroupLayout } from './layout';
import type { CgroupManager, CgroupState, ManagerOptions } from './manager';
import type { LinuxResources } from './types';
import { cleanPath } from './util';
import { v1Paths, V1Manager } from './v1';
import { setDeviceFilterLoader, v2Path, V2Manager } from './v2';

export type { CgroupLayout } from './layout';
export type { CgroupManager, CgroupState, DestroyOptions } from './manager';
export type { CgroupStats, LinuxResources } from './types';
export type { DeviceRule } from './devices';
export type { DeviceFilterLoader } from './v2';
export { detectLayout, setDeviceFilterLoader, DEFAULT_ALLOWED_DEVICES };

export interface NewCgroupManagerOptions {
  /** Container id: the default cgroup is "<id>" relative to our own cgroup (runc's fs driver). */
  id: string;
  /** linux.cgroupsPath: absolute = from each hierarchy root; relative = from our own cgroup. */
  cgroupsPath?: string;
  resources?: LinuxResources;
  systemd?: boolean;
  rootless?: boolean;
  warn?: (msg: string) => void;
  /** Tests: force a layout / cgroup2 root / /proc/self/cgroup content (fake cgroupfs trees). */
  layout?: CgroupLayout;
  fsRoot?: string;
  selfCgroup?: string;
}

export function newCgroupManager(opts: NewCgroupManagerOptions): CgroupManager {
  if (opts.systemd) throw new Error('systemd cgroup driver is not supported yet');
  const given = opts.cgroupsPath ?? '';
  const inner = given === '' ? cleanPath(opts.id) : cleanPath(given);
  if (inner === '' || inner === '/') {
    throw new Error(`linux.cgroupsPath: ${JSON.stringify(given || opts.id)} is not a valid cgroup path (it must name a cgroup below the root)`);
  }
  const layout = opts.layout ?? detectLayout();
  const self = parseProcCgroup(opts.selfCgroup ?? readSelfCgroup());
  const mopts: ManagerOptions & { fsRoot?: string } = {
    resources: opts.resources,
    rootless: opts.rootless,
    cgroupsPathGiven: given !== '',
    warn: opts.warn,
    fsRoot: opts.fsRoot,
  };
  if (layout === 'v2') {
    let root = opts.fsRoot;
    if (!root) {
      const m = findV2Mount(parseCgroupMounts(readMountinfo()));
      if (!m) throw new Error('cgroup v2: no cgroup2 mount in /proc/self/mountinfo');
      root = m.mountpoint;
      mopts.fsRoot = root;
    }
    return new V2Manager({ layout, paths: { '': v2Path(root, self[''] ?? '/', inner) } }, mopts);
  }
  const paths = v1Paths(parseCgroupMounts(readMountinfo()), self, inner, layout);
  if (Object.keys(paths).length === 0) throw new Error('cgroup v1: no cgroup hierarchy is mounted');
  return new V1Manager({ layout, paths }, mopts);
}

/** A manager for an existing container, from the state saved at create time. */
export function loadCgroupManager(state: CgroupState, opts: { warn?: (msg: string) => void; fsRoot?: string } = {}): CgroupManager {
  if (!state || typeof state !== 'object' || !state.paths) throw new Error('invalid cgroup state: no paths');
  if (state.layout === 'v2') {
    let fsRoot = opts.fsRoot;
    if (!fsRoot) fsRoot = findV2Mount(parseCgroupMounts(readMountinfo()))?.mountpoint;
    return new V2Manager(state, { warn: opts.warn, fsRoot });
  }
  if (state.layout === 'v1' || state.layout === 'hybrid') return new V1Manager(state, { warn: opts.warn });
  throw new Error(`invalid cgroup state: unknown layout ${JSON.stringify((state as CgroupState).layout)}`);
}

