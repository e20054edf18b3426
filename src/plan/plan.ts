/**
 * A validated config (src/bundle/load.ts) → the InitPlan tsrun-init executes (src/native/init-plan.ts).
 * Everything is resolved here into numbers and absolute host paths, as runc's specconv and
 * rootfs_linux do it, so the C++ side never interprets a name: mount options → MS_* flags, data,
 * remount flags, propagation and mount_setattr attributes; rootfsPropagation → MS_*; rlimit,
 * capability and personality names → numbers; default devices and /dev symlinks; hooks with
 * their defaults. The only file system access is stat(2) of bind sources and of /proc/kcore.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type {
  CreatePlan,
  ExecPlan,
  PlanCapabilities,
  PlanDevice,
  PlanHook,
  PlanIdmap,
  PlanMountStep,
  PlanNamespace,
  PlanProcess,
  PlanRlimit,
  PlanSeccomp,
} from '../native/init-plan';
import { capabilityNumbers } from '../bundle/capabilities';
import { capabilitySets, execProcessSpec, processValueOrDefault, valueOrDefault, type PrivilegeField } from './defaults';
import { RLIMITS, SpecError, strerror } from '../bundle/load';
import { U64_MAX } from '../bundle/u64';
import { MS_BIND, MS_REC, MS_RDONLY, MS_REMOUNT, MS_SLAVE, PROPAGATION, isBindMount, isIdMapped, parseMountOptions } from '../bundle/mount-options';
import type { Device, Hook, IdMapping, Mount, Namespace, NamespaceType, Process, Rlimit, Spec } from '../bundle/types';

export interface CreatePlanOptions {
  id: string;
  bundle: string;
  config: Spec;
  execFifo: string;
  consoleSocket: string;
  noPivot: boolean;
  preserveFds: number;
  waitForExit: boolean;
  /** OCI state JSON split around the pid. */
  statePrefix: string;
  stateSuffix: string;
  /** Compiled elsewhere (src/seccomp). */
  seccomp: PlanSeccomp | null;
  /** From the cgroup manager, for mounts of type "cgroup". */
  cgroupMountSteps: (destination: string, flags: number, newCgroupNamespace: boolean) => PlanMountStep[];
  /**
   * tsrun runs with euid != 0 (runc's RootlessEUID). sysfs can then only be mounted in a network
   * namespace of the container's own: without one, a sysfs mount becomes a recursive bind of the
   * host's /sys with the mount's flags (what `spec --rootless` writes).
   */
  rootless?: boolean;
  warn: (msg: string) => void;
  /**
   * What each bind source is (statBindSources), looked up off the event loop beforehand: a
   * source on a hung mount must not stall every other container of the process. Without it
   * (tests, tools) the sources are stat'ed synchronously.
   */
  bindSources?: BindSources;
}

/** Absolute bind source → is a directory, or the strerror of its stat. */
export type BindSources = Map<string, { isDir: boolean } | { error: string }>;

/** The bind mounts' sources, resolved against the bundle, and what each is (on the thread pool). */
export async function statBindSources(config: Spec, bundle: string): Promise<BindSources> {
  const sources = new Set<string>();
  for (const m of config.mounts ?? []) {
    if (m.source && isBindMount(m, parseMountOptions(m.options).flags)) sources.add(path.resolve(bundle, m.source));
  }
  const out: BindSources = new Map();
  await Promise.all(
    [...sources].map(async (source) => {
      try {
        out.set(source, { isDir: (await fs.promises.stat(source)).isDirectory() });
      } catch (e) {
        out.set(source, { error: strerror(e) });
      }
    }),
  );
  return out;
}

function bindSource(o: CreatePlanOptions, source: string): { isDir: boolean } | { error: string } {
  const known = o.bindSources?.get(source);
  if (known) return known;
  try {
    return { isDir: fs.statSync(source).isDirectory() };
  } catch (e) {
    return { error: strerror(e) };
  }
}

export interface ExecPlanOptions {
  id: string;
  initPid: number;
  initStartTime: number;
  process: Process;
  /** The container's config. */
  config: Spec;
  consoleSocket: string;
  preserveFds: number;
  waitForExit: boolean;
  seccomp: PlanSeccomp | null;
  warn: (msg: string) => void;
}


/** runc's default for "/" before the rootfs is set up: no mount event leaks back to the host. */
export const DEFAULT_ROOT_PROPAGATION = MS_SLAVE | MS_REC;

export const PERSONALITY: Readonly<Record<string, number>> = { LINUX: 0x0000, LINUX32: 0x0008 };

/** The device nodes every container gets (runc's AllowedDevices with a path), in runc's order. */
export const DEFAULT_DEVICES: readonly Omit<PlanDevice, 'bind'>[] = [
  { path: '/dev/null', type: 'c', major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/random', type: 'c', major: 1, minor: 8, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/full', type: 'c', major: 1, minor: 7, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/tty', type: 'c', major: 5, minor: 0, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/zero', type: 'c', major: 1, minor: 5, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/urandom', type: 'c', major: 1, minor: 9, fileMode: 0o666, uid: 0, gid: 0 },
];

/** A container path, cleaned: "/a//b/../c/" → "/a/c". */
function cleanPath(p: string): string {
  return path.posix.resolve('/', p);
}

function rlimitValue(v: number | string): number | string {
  if (typeof v === 'string') return v;
  if (Number.isSafeInteger(v)) return v;
  // A double above 2^53 that did not come through the loader: the nearest u64, as a string.
  const b = BigInt(Math.trunc(v));
  return (b > U64_MAX ? U64_MAX : b).toString();
}

export function planRlimits(rlimits: readonly Rlimit[] | undefined): PlanRlimit[] {
  return (rlimits ?? []).map((r, i) => {
    const resource = RLIMITS[r.type];
    if (resource === undefined) throw new SpecError(`config.json: /process/rlimits/${i}/type: unknown rlimit ${JSON.stringify(r.type)}`);
    return { resource, soft: rlimitValue(r.soft), hard: rlimitValue(r.hard) };
  });
}

/**
 * Capability names → numbers. Always every set: an absent object or an absent set is empty
 * (src/plan/defaults.ts; runc gives no capability it was not asked for).
 */
export function planCapabilities(caps: Process['capabilities'], warn: (m: string) => void): PlanCapabilities {
  const sets = capabilitySets({ cwd: '/', capabilities: caps });
  const unknown = new Set<string>();
  const out: PlanCapabilities = {
    bounding: capabilityNumbers(sets.bounding, unknown),
    effective: capabilityNumbers(sets.effective, unknown),
    permitted: capabilityNumbers(sets.permitted, unknown),
    inheritable: capabilityNumbers(sets.inheritable, unknown),
    ambient: capabilityNumbers(sets.ambient, unknown),
  };
  // One warning for all sets, in runc's words.
  if (unknown.size) warn(`ignoring unknown or unavailable capabilities: [${[...unknown].sort().join(' ')}]`);
  return out;
}

export function planProcess(
  proc: Process,
  o: { seccomp: PlanSeccomp | null; preserveFds: number; warn: (m: string) => void },
): PlanProcess {
  if (!proc.args || proc.args.length === 0) throw new SpecError('args must not be empty');
  const def = <T>(field: PrivilegeField & `/process/${string}`) => processValueOrDefault<T>(proc, field);
  return {
    args: [...proc.args],
    env: [...(proc.env ?? [])],
    cwd: proc.cwd,
    // Every privilege-related field absent from the process gets what src/plan/defaults.ts says.
    uid: def<number>('/process/user/uid'),
    gid: def<number>('/process/user/gid'),
    additionalGids: def<number[]>('/process/user/additionalGids'),
    // umask(2) keeps the permission bits only; the rest of a uint32 means nothing to it.
    umask: def<number>('/process/user/umask') & 0o777,
    terminal: !!proc.terminal,
    consoleWidth: proc.consoleSize?.width ?? 0,
    consoleHeight: proc.consoleSize?.height ?? 0,
    rlimits: planRlimits(def<Rlimit[]>('/process/rlimits')),
    oomScoreAdj: def<number | null>('/process/oomScoreAdj'),
    noNewPrivileges: def<boolean>('/process/noNewPrivileges') === true,
    capabilities: planCapabilities(def<Process['capabilities']>('/process/capabilities'), o.warn),
    seccomp: o.seccomp,
    apparmorProfile: def<string>('/process/apparmorProfile'),
    selinuxLabel: def<string>('/process/selinuxLabel'),
    preserveFds: o.preserveFds,
  };
}

/** Stable order with the user namespace first: the others are then owned by it. */
function userFirst<T extends { type: NamespaceType }>(list: readonly T[]): T[] {
  return [...list.filter((n) => n.type === 'user'), ...list.filter((n) => n.type !== 'user')];
}

function planHooks(hooks: readonly Hook[] | undefined): PlanHook[] {
  return (hooks ?? []).map((h) => ({
    path: h.path,
    // args[0] is argv[0], as for execve; runc uses the path when args is absent.
    args: h.args && h.args.length > 0 ? [...h.args] : [h.path],
    env: [...(h.env ?? [])],
    timeout: h.timeout ?? 0,
  }));
}

/** Are we ourselves inside a user namespace (then mknod is impossible, as in a new one)? */
function runningInUserNs(): boolean {
  try {
    const map = fs.readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/);
    return !(map.length === 3 && map[0] === '0' && map[1] === '0' && map[2] === '4294967295');
  } catch {
    return false;
  }
}

/**
 * The mount's own mappings; without them, as runc: the container's new user namespace's mappings
 * (the same maps, so the same ids), or for a joined user namespace that namespace itself (empty
 * lists; checkSpec has refused every other case).
 */
function planIdmap(config: Spec, m: Mount, recursive: boolean): PlanIdmap {
  const copy = (maps: IdMapping[]) => maps.map((x) => ({ containerID: x.containerID, hostID: x.hostID, size: x.size }));
  if (m.uidMappings || m.gidMappings) return { recursive, uidMappings: copy(m.uidMappings ?? []), gidMappings: copy(m.gidMappings ?? []) };
  const userns = config.linux?.namespaces?.find((n) => n.type === 'user');
  if (userns?.path) return { recursive, uidMappings: [], gidMappings: [] };
  return { recursive, uidMappings: copy(config.linux?.uidMappings ?? []), gidMappings: copy(config.linux?.gidMappings ?? []) };
}

/** runc's mountCgroupV2 fallback: the host's cgroup2 hierarchy (fs2.UnifiedMountpoint) bound. */
function cgroup2AsBind(step: PlanMountStep): PlanMountStep {
  if (step.kind !== 'mount' || step.fstype !== 'cgroup2') return step;
  return { ...step, source: '/sys/fs/cgroup', fstype: '', flags: (MS_BIND | MS_REC) >>> 0, remountFlags: (step.flags & ~(MS_BIND | MS_REC | MS_REMOUNT)) >>> 0, data: '' };
}

function planMounts(o: CreatePlanOptions, newCgroupNs: boolean, sysfsAsBind: boolean): { steps: PlanMountStep[]; setupDev: boolean; devRemountFlags: number } {
  const steps: PlanMountStep[] = [];
  let setupDev = true;
  let devRemountFlags = 0;
  for (const [i, given] of (o.config.mounts ?? []).entries()) {
    const where = `config.json: /mounts/${i}`;
    let m = given;
    const destination = cleanPath(m.destination);
    let opts = parseMountOptions(m.options);
    if (sysfsAsBind && m.type === 'sysfs' && !isBindMount(m, opts.flags)) {
      // The kernel refuses sysfs to a user namespace that does not own the network namespace.
      m = { ...m, type: 'none', source: '/sys' };
      opts = parseMountOptions(['rbind', ...(m.options ?? [])]);
    }
    const bind = isBindMount(m, opts.flags);
    if (m.type === 'cgroup' && !bind) {
      const cgSteps = o.cgroupMountSteps(destination, opts.flags, newCgroupNs);
      // A user namespace without a cgroup namespace of its own may not mount cgroup2 (the
      // kernel wants CAP_SYS_ADMIN over the host's cgroup namespace): runc binds the host's
      // hierarchy instead, as here.
      const userNs = (o.config.linux?.namespaces ?? []).some((n) => n.type === 'user') || runningInUserNs();
      steps.push(...(userNs && !newCgroupNs ? cgSteps.map(cgroup2AsBind) : cgSteps));
      continue;
    }
    if (bind) {
      if (destination === '/dev') setupDev = false; // runc: a bind-mounted /dev is the caller's, never populated
      if (!m.source) throw new SpecError(`${where}: bind mount on ${destination} has no source`);
      const source = path.resolve(o.bundle, m.source);
      const info = bindSource(o, source);
      if ('error' in info) throw new SpecError(`${where}: bind mount ${source} on ${destination}: stat ${source}: ${info.error}`);
      const sourceIsDir = info.isDir;
      steps.push({
        kind: 'mount',
        source,
        destination,
        fstype: '',
        flags: (MS_BIND | (opts.flags & MS_REC)) >>> 0,
        data: opts.data,
        // What a bind cannot apply by itself (ro, nosuid...) needs the second, remount call.
        remountFlags: (opts.flags & ~(MS_BIND | MS_REC | MS_REMOUNT)) >>> 0,
        propagation: opts.propagation,
        recursiveAttrSet: opts.recursiveAttrSet,
        recursiveAttrClear: opts.recursiveAttrClear,
        sourceIsDir,
        ...(isIdMapped(m, opts) ? { idmap: planIdmap(o.config, m, opts.idmapRecursive ?? false) } : {}),
      });
      continue;
    }
    if (!m.type) throw new SpecError(`${where}/type: required for a mount that is not a bind mount`);
    let flags = opts.flags;
    if (destination === '/dev' && flags & MS_RDONLY) {
      // runc mounts /dev read-write, creates the devices, and remounts it read-only at the end.
      flags &= ~MS_RDONLY;
      devRemountFlags = (flags | MS_RDONLY) >>> 0;
    }
    steps.push({
      kind: 'mount',
      source: m.source ?? m.type,
      destination,
      fstype: m.type,
      flags: flags >>> 0,
      // runc labels tmpfs mounts with linux.mountLabel through the SELinux context= option, and
      // so fails where the kernel has no SELinux; tsrun does the same rather than ignore a label.
      data: m.type === 'tmpfs' && o.config.linux?.mountLabel ? [opts.data, `context="${o.config.linux.mountLabel}"`].filter(Boolean).join(',') : opts.data,
      remountFlags: 0,
      propagation: opts.propagation,
      recursiveAttrSet: opts.recursiveAttrSet,
      recursiveAttrClear: opts.recursiveAttrClear,
      sourceIsDir: true,
      // runc honours tmpcopyup on tmpfs only (elsewhere it is ignored).
      ...(opts.copyUp && m.type === 'tmpfs' ? { copyUp: true } : {}),
    });
  }
  return { steps, setupDev, devRemountFlags };
}

/** Default devices, then linux.devices (same path: the config's wins), as runc's createDevices. */
export function planDevices(config: Spec, bind: boolean, warn: (m: string) => void): PlanDevice[] {
  const configured = new Map<string, PlanDevice>();
  for (const d of valueOrDefault<Device[]>(config, '/linux/devices')) {
    const p = cleanPath(d.path);
    // runc replaces /dev/ptmx with a symlink to the container's devpts instance in any case, and
    // says nothing about a redundant entry (a warning would land in the container's output).
    if (p === '/dev/ptmx') continue;
    configured.set(p, {
      path: p,
      // 'u' (unbuffered) is a character device for mknod, as in runc.
      type: d.type === 'u' ? 'c' : d.type,
      major: d.major ?? 0,
      minor: d.minor ?? 0,
      fileMode: (d.fileMode ?? 0o666) & 0o7777,
      uid: d.uid ?? 0,
      gid: d.gid ?? 0,
      bind,
    });
  }
  const defaults = DEFAULT_DEVICES.filter((d) => !configured.has(d.path)).map((d) => ({ ...d, bind }));
  return [...defaults, ...configured.values()];
}

export function devSymlinks(): { target: string; linkPath: string }[] {
  const links = [
    // First: a /dev/ptmx that exists would otherwise shadow the container's devpts instance.
    { target: 'pts/ptmx', linkPath: '/dev/ptmx' },
    { target: '/proc/self/fd', linkPath: '/dev/fd' },
    { target: '/proc/self/fd/0', linkPath: '/dev/stdin' },
    { target: '/proc/self/fd/1', linkPath: '/dev/stdout' },
    { target: '/proc/self/fd/2', linkPath: '/dev/stderr' },
  ];
  // Kernels without CONFIG_PROC_KCORE have no /proc/kcore: no dangling link then (runc's rule).
  if (fs.existsSync('/proc/kcore')) links.push({ target: '/proc/kcore', linkPath: '/dev/core' });
  return links;
}

export function buildCreatePlan(o: CreatePlanOptions): CreatePlan {
  const config = o.config;
  if (!config.root) throw new SpecError('config.json: /root: required (the container\'s root filesystem)');
  if (!config.process) throw new SpecError('config.json: /process: required to create a container');
  const linux = config.linux ?? {};
  const namespaces = valueOrDefault<Namespace[]>(config, '/linux/namespaces');
  const has = (t: NamespaceType) => namespaces.some((n) => n.type === t);
  const isNew = (t: NamespaceType) => namespaces.some((n) => n.type === t && !n.path);

  // No mount namespace: the container shares the runtime's (runtime-spec), so nothing may be
  // mounted or created there. runc would make the mounts in the host's namespace and leave them
  // behind; tsrun refuses, naming what needs the namespace, and otherwise only chroots.
  if (!has('mount')) {
    const needs = (what: string) => new SpecError(`config.json: ${what} needs a mount namespace of the container's own (linux.namespaces has no "mount": the container shares the runtime's)`);
    if (valueOrDefault<string[]>(config, '/linux/maskedPaths').length || valueOrDefault<string[]>(config, '/linux/readonlyPaths').length) {
      throw new SpecError('config.json: unable to restrict sys entries without a private MNT namespace');
    }
    if (config.mounts?.length) throw needs('/mounts');
    if (config.root.readonly) throw needs('/root/readonly');
    if (Object.keys(linux.sysctl ?? {}).length) throw needs('/linux/sysctl');
    if (linux.devices?.length) throw needs('/linux/devices');
    if (o.noPivot) throw needs('--no-pivot');
  }
  const { steps, setupDev: wantDev, devRemountFlags } = planMounts(o, isNew('cgroup'), !!o.rootless && !isNew('network'));
  const setupDev = wantDev && has('mount');
  // Devices are bind-mounted from the host whenever mknod would fail: in any user namespace.
  const bindDevices = has('user') || runningInUserNs();

  let rootPropagation = DEFAULT_ROOT_PROPAGATION;
  const rp = linux.rootfsPropagation ?? '';
  if (rp !== '') {
    // runc's rootfsPropagation mapping is the propagation words' own.
    const v = PROPAGATION[rp];
    if (v === undefined) throw new SpecError(`config.json: /linux/rootfsPropagation: ${JSON.stringify(rp)} is not supported`);
    rootPropagation = v;
  }

  let personality = -1;
  if (linux.personality) {
    const v = PERSONALITY[linux.personality.domain];
    if (v === undefined) throw new SpecError(`config.json: /linux/personality/domain: ${JSON.stringify(linux.personality.domain)} is not supported`);
    personality = v;
    if (linux.personality.flags?.length) o.warn(`linux.personality.flags ${JSON.stringify(linux.personality.flags)} are not supported; ignored`);
  }

  const timeOffsets: CreatePlan['timeOffsets'] = {};
  for (const clock of ['monotonic', 'boottime'] as const) {
    const t = linux.timeOffsets?.[clock];
    if (t) timeOffsets[clock] = { secs: t.secs ?? 0, nanosecs: t.nanosecs ?? 0 };
  }

  const hooks = config.hooks ?? {};
  return {
    mode: 'create',
    id: o.id,
    process: planProcess(config.process, { seccomp: o.seccomp, preserveFds: o.preserveFds, warn: o.warn }),
    consoleSocket: o.consoleSocket,
    waitForExit: o.waitForExit,
    namespaces: userFirst(namespaces).map((n): PlanNamespace => (n.path ? { type: n.type, path: n.path } : { type: n.type })),
    uidMappings: valueOrDefault<IdMapping[]>(config, '/linux/uidMappings').map((m) => ({ containerID: m.containerID, hostID: m.hostID, size: m.size })),
    gidMappings: valueOrDefault<IdMapping[]>(config, '/linux/gidMappings').map((m) => ({ containerID: m.containerID, hostID: m.hostID, size: m.size })),
    timeOffsets,
    // runc only calls sethostname/setdomainname for a non-empty value.
    hostname: config.hostname ? config.hostname : null,
    domainname: config.domainname ? config.domainname : null,
    rootfs: path.resolve(o.bundle, config.root.path),
    rootfsReadonly: !!config.root.readonly,
    rootPropagation: rootPropagation >>> 0,
    rootPropagationExplicit: rp !== '',
    mountSteps: steps,
    devices: setupDev ? planDevices(config, bindDevices, o.warn) : [],
    devSymlinks: setupDev ? devSymlinks() : [],
    setupDev,
    devRemountFlags,
    noPivot: o.noPivot,
    sysctl: Object.entries(linux.sysctl ?? {}).map(([key, value]) => ({ key, value })),
    maskedPaths: valueOrDefault<string[]>(config, '/linux/maskedPaths'),
    readonlyPaths: valueOrDefault<string[]>(config, '/linux/readonlyPaths'),
    syncRuntimeHooks: (hooks.prestart?.length ?? 0) + (hooks.createRuntime?.length ?? 0) > 0,
    createContainerHooks: planHooks(hooks.createContainer),
    startContainerHooks: planHooks(hooks.startContainer),
    statePrefix: o.statePrefix,
    stateSuffix: o.stateSuffix,
    execFifo: o.execFifo,
    personality,
  };
}

export function buildExecPlan(o: ExecPlanOptions): ExecPlan {
  if (typeof o.process.cwd !== 'string' || !path.isAbsolute(o.process.cwd)) {
    throw new SpecError(`process: cwd ${JSON.stringify(o.process.cwd)} is not an absolute path`);
  }
  return {
    mode: 'exec',
    id: o.id,
    // What the exec process leaves out comes from the container's (idempotent: the caller,
    // src/container/exec.ts, has normally done it already; any other caller gets it here).
    process: planProcess(execProcessSpec(o.process, o.config.process), { seccomp: o.seccomp, preserveFds: o.preserveFds, warn: o.warn }),
    consoleSocket: o.consoleSocket,
    waitForExit: o.waitForExit,
    initPid: o.initPid,
    initStartTime: o.initStartTime,
    // Every namespace the container has, whether it created or joined it: the init is in all.
    joinNamespaces: userFirst(valueOrDefault<Namespace[]>(o.config, '/linux/namespaces')).map((n) => n.type),
  };
}
