/**
 * Loading and validating a bundle's config.json (and `exec --process` files): read, parse, check
 * the structure against our JSON Schemas (ajv standalone validators generated at build time, see
 * scripts/build-schemas.mjs), then the rules across fields that a schema cannot express. Every
 * problem found is reported, each line naming the JSON pointer it is about, so that one run shows
 * everything to fix. Nothing here creates anything: a bad bundle leaves nothing behind.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isBindMount, isIdMapped, parseMountOptions } from './mount-options';
import { U64_MAX } from './u64';
import type { IdMapping, Namespace, NamespaceType, Process, Spec } from './types';
import type { ErrorKind } from '../container/errors';

/** A bad config or process file. `message` is the user-facing text (one line per problem). */
export class SpecError extends Error {
  readonly kind: ErrorKind = 'InvalidArgument';
  readonly problems: string[];
  constructor(problems: string | string[]) {
    const list = Array.isArray(problems) ? problems : [problems];
    super(list.join('\n'));
    this.problems = list;
  }
}

interface AjvError {
  instancePath: string;
  schemaPath: string;
  keyword: string;
  params: Record<string, any>;
  message?: string;
  propertyName?: string;
}
type ValidateFn = ((data: unknown) => boolean) & { errors?: AjvError[] | null };
interface Validators {
  validateConfig: ValidateFn;
  validateProcess: ValidateFn;
  validateState: ValidateFn;
  validateFeatures: ValidateFn;
}

let validatorsCache: Validators | undefined;
/**
 * The generated validators, required on first use only (kept out of the CLI's start-up path for
 * commands that never validate). The path is literal so esbuild bundles the file.
 */
export function validators(): Validators {
  if (!validatorsCache) {
    try {
      validatorsCache = require('../../dist/schemas/validators.js') as Validators;
    } catch (e) {
      throw new Error(`schema validators missing (run: node scripts/build-schemas.mjs): ${(e as Error).message}`);
    }
  }
  return validatorsCache;
}

const STRERROR: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'file name too long',
  EINVAL: 'invalid argument',
  EEXIST: 'file exists',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EXDEV: 'invalid cross-device link',
  EBUSY: 'device or resource busy',
};

/** Go's (and so runc's) wording for an errno: "no such file or directory". */
export function strerror(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  return (code && STRERROR[code]) || (e as Error)?.message || String(e);
}


/**
 * JSON.parse that remembers the exact text of integers a double cannot hold (rlimits of 2^64-1
 * are common): Node 22 hands the reviver the source text of each number.
 */
function parseJson(text: string, label: string): { value: unknown; bigs: WeakMap<object, Map<string, string>> } {
  const bigs = new WeakMap<object, Map<string, string>>();
  let value: unknown;
  try {
    value = JSON.parse(text, function (this: object, key: string, v: unknown, ctx?: { source?: string }) {
      if (typeof v === 'number' && !Number.isSafeInteger(v) && ctx?.source && /^-?\d+$/.test(ctx.source)) {
        let m = bigs.get(this);
        if (!m) bigs.set(this, (m = new Map()));
        m.set(key, ctx.source);
      }
      return v;
    });
  } catch (e) {
    // The engine's parser recurses: nesting deeper than its stack is a RangeError, not a crash.
    if (e instanceof RangeError) throw new SpecError(`${label}: invalid JSON: nested too deeply`);
    throw new SpecError(`${label}: invalid JSON: ${(e as Error).message}`);
  }
  return { value, bigs };
}

/** The largest config.json or process file read (a 300 000-annotation config is ~34 MB). */
export const MAX_SPEC_FILE_BYTES = 64 * 1024 * 1024;

/**
 * Reads a bundle file only if it is a regular file (through symlinks, as runc) of at most
 * MAX_SPEC_FILE_BYTES: a FIFO, a device (a link to /dev/zero), a directory or a socket is refused
 * at once instead of blocking or reading for ever. O_NONBLOCK: opening a FIFO must not wait for a
 * writer.
 */
export function readSpecFile(file: string): string {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY);
  } catch (e) {
    throw new SpecError(`open ${file}: ${strerror(e)}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) {
      const what = st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : st.isSocket() ? 'a socket' : 'not a regular file';
      throw new SpecError(`${file}: not a regular file (${what})`);
    }
    if (st.size > MAX_SPEC_FILE_BYTES) throw new SpecError(`${file}: ${st.size} bytes is larger than the limit of ${MAX_SPEC_FILE_BYTES} bytes`);
    // Until EOF, never more than the limit (a file that grows while we read is still bounded).
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.min(Math.max(st.size, 65536), MAX_SPEC_FILE_BYTES + 1 - total));
      const n = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
      total += n;
      if (total > MAX_SPEC_FILE_BYTES) throw new SpecError(`${file}: larger than the limit of ${MAX_SPEC_FILE_BYTES} bytes`);
    }
    return Buffer.concat(chunks, total).toString('utf8');
  } catch (e) {
    if (e instanceof SpecError) throw e;
    throw new SpecError(`read ${file}: ${strerror(e)}`);
  } finally {
    fs.closeSync(fd);
  }
}

/** One line per ajv error: "<pointer> <rule>", with the allowed values where that helps. */
function formatSchemaErrors(errors: AjvError[] | null | undefined): string[] {
  const out: string[] = [];
  for (const e of errors ?? []) {
    // Wrappers that only repeat the error of their sub-schema.
    if (e.keyword === 'if' || e.keyword === 'propertyNames') continue;
    const where = e.instancePath || '/';
    let rule = e.message ?? e.keyword;
    if (e.schemaPath.endsWith('/ociVersion/pattern')) rule = 'must be a 1.0.x, 1.1.x or 1.2.x version';
    if (e.keyword === 'enum') rule += ` (${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')})`;
    const line = e.propertyName !== undefined ? `${where} property name ${JSON.stringify(e.propertyName)} ${rule}` : `${where} ${rule}`;
    if (!out.includes(line)) out.push(line);
  }
  return out;
}

/** JSON pointer escaping (RFC 6901) of one reference token. */
function tok(s: string | number): string {
  return String(s).replace(/~/g, '~0').replace(/\//g, '~1');
}

/** /proc/<pid>/ns/<name> names of the runtime-spec namespace types. */
export const NS_PROC_NAME: Readonly<Record<NamespaceType, string>> = {
  pid: 'pid',
  network: 'net',
  mount: 'mnt',
  ipc: 'ipc',
  uts: 'uts',
  user: 'user',
  cgroup: 'cgroup',
  time: 'time',
};

/**
 * Checks that `nsPath` is a namespace of `type`. What Node can do without the addon:
 *  - open it and fstat the fd: every namespace file lives on nsfs, whose st_dev is the one of
 *    /proc/self/ns/*, so a regular file, a directory or a missing path is caught here;
 *  - when the path is a /proc/<pid>/ns/<x> magic link, readlink gives the kernel's own
 *    "<type>:[<inode>]", which is the real type whatever the file is called.
 * Limit: a bind-mounted namespace file (/run/netns/x) is not a symlink, so its type cannot be
 * read without ioctl(NS_GET_NSTYPE); for those only "is a namespace" is checked here, and a wrong
 * type is refused later by setns(2) in the init (EINVAL), which passes the expected type.
 */
export function namespacePathProblem(type: NamespaceType, nsPath: string): string | null {
  if (!path.isAbsolute(nsPath)) return `${JSON.stringify(nsPath)} is not an absolute path`;
  let fd: number;
  try {
    fd = fs.openSync(nsPath, fs.constants.O_RDONLY);
  } catch (e) {
    return `open ${nsPath}: ${strerror(e)}`;
  }
  try {
    const st = fs.fstatSync(fd);
    const nsfs = fs.statSync('/proc/self/ns/net');
    if (st.dev !== nsfs.dev) return `${nsPath} is not a namespace file (not on nsfs)`;
  } finally {
    fs.closeSync(fd);
  }
  let link: string | null = null;
  try {
    link = fs.readlinkSync(nsPath);
  } catch {
    // Not a symlink: a bind-mounted namespace file, see the limit above.
  }
  const m = link ? /^([a-z_]+):\[\d+\]$/.exec(link) : null;
  if (m) {
    // time_for_children / pid_for_children are the same types as time / pid.
    const actual = m[1].replace(/_for_children$/, '');
    if (actual !== NS_PROC_NAME[type]) return `${nsPath} is a ${actual} namespace, not ${NS_PROC_NAME[type]}`;
  }
  return null;
}

/** Is `nsPath` the network namespace this process (the host's, for runc) is in? */
function isOwnNetns(nsPath: string): boolean {
  try {
    const a = fs.statSync(nsPath);
    const b = fs.statSync('/proc/self/ns/net');
    return a.dev === b.dev && a.ino === b.ino;
  } catch {
    return false;
  }
}

/** runc's list of sysctls that belong to the IPC namespace (besides fs.mqueue.*). */
const IPC_SYSCTLS = new Set([
  'kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax',
  'kernel.shmmni', 'kernel.shm_rmid_forced',
]);

export const RLIMITS: Readonly<Record<string, number>> = {
  RLIMIT_CPU: 0, RLIMIT_FSIZE: 1, RLIMIT_DATA: 2, RLIMIT_STACK: 3, RLIMIT_CORE: 4, RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6, RLIMIT_NOFILE: 7, RLIMIT_MEMLOCK: 8, RLIMIT_AS: 9, RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11, RLIMIT_MSGQUEUE: 12, RLIMIT_NICE: 13, RLIMIT_RTPRIO: 14, RLIMIT_RTTIME: 15,
};

const notAbs = (v: string) => `${JSON.stringify(v)} is not an absolute path`;

/**
 * Rules of a process object alone (config.json's or exec --process's): cwd absolute, rlimits known,
 * unique and soft <= hard, and exact u64 rlimit values (strings above 2^53). Mutates `proc` for
 * the rlimit values only.
 */
function checkProcess(proc: Process, at: string, bigs: WeakMap<object, Map<string, string>>, problems: string[]): void {
  if (typeof proc.cwd === 'string' && !path.isAbsolute(proc.cwd)) problems.push(`${at}/cwd: ${notAbs(proc.cwd)}`);
  const seen = new Set<string>();
  for (const [i, rl] of (proc.rlimits ?? []).entries()) {
    const where = `${at}/rlimits/${i}`;
    if (RLIMITS[rl.type] === undefined) problems.push(`${where}/type: unknown rlimit ${JSON.stringify(rl.type)}`);
    else if (seen.has(rl.type)) problems.push(`${where}/type: duplicate rlimit ${rl.type}`);
    seen.add(rl.type);
    const exact = bigs.get(rl);
    let ok = true;
    for (const k of ['soft', 'hard'] as const) {
      const src = exact?.get(k);
      if (src === undefined) continue;
      if (BigInt(src) > U64_MAX) {
        problems.push(`${where}/${k} must be <= 18446744073709551615`);
        ok = false;
      } else {
        rl[k] = src;
      }
    }
    if (ok && typeof rl.soft !== 'object' && typeof rl.hard !== 'object') {
      try {
        if (BigInt(rl.soft) > BigInt(rl.hard)) problems.push(`${where}: soft limit ${rl.soft} is above hard limit ${rl.hard}`);
      } catch {
        // Not integers: the schema has already reported it.
      }
    }
  }
}

/** Is a resctrl filesystem (Intel RDT) mounted in our mount namespace? */
function resctrlMounted(): boolean {
  try {
    return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' - ')[1]?.startsWith('resctrl '));
  } catch {
    return false;
  }
}

/**
 * runc's rule (libcontainer/configs/validate: rootfs): the rootfs path, once made absolute, must
 * be its own real path — root.path must not be, or go through, a symlink. As with runc, a
 * relative root.path is taken from the bundle directory's real path (runc chdirs into the bundle
 * and asks getcwd), so symlinks on the way to the bundle are fine; an absolute root.path must be
 * free of symlinks all the way. (runc also refuses a bundle reached through a symlinked $PWD
 * when run without -b, an accident of Go's os.Getwd that tsrun does not copy.)
 */
function rootfsSymlinkProblem(bundle: string, rootPath: string): string | null {
  let base = bundle;
  try {
    base = fs.realpathSync(bundle);
  } catch {}
  const rootfs = path.resolve(base, rootPath);
  let real: string;
  try {
    real = fs.realpathSync(rootfs);
  } catch (e) {
    return `invalid rootfs: realpath ${rootfs}: ${strerror(e)}`;
  }
  return real === rootfs ? null : `invalid rootfs: not an absolute path, or a symlink (${rootfs} resolves to ${real})`;
}

function mappingEnds(maps: readonly IdMapping[], at: string, add: (s: string) => void): void {
  for (const [i, m] of maps.entries()) {
    for (const k of ['containerID', 'hostID'] as const) {
      const end = m[k] + m.size - 1;
      if (end > 4294967294) add(`${at}/${i}: ${k} ${m[k]} + size ${m.size} ends at ${end}, above 4294967294`);
    }
  }
}

/**
 * The rules across fields of a schema-valid config. Returns the problems (empty: valid).
 * `bundle` resolves root.path; the rootfs must exist and be a directory.
 */
export function checkSpec(spec: Spec, bundle: string, label = 'config.json', bigs = new WeakMap<object, Map<string, string>>()): string[] {
  const p: string[] = [];
  const add = (s: string) => p.push(`${label}: ${s}`);
  const linux = spec.linux ?? {};

  if (!spec.root) add('/root: required (the container\'s root filesystem)');
  if (!spec.process) add('/process: required to create a container');
  if (spec.process) {
    const sub: string[] = [];
    checkProcess(spec.process, '/process', bigs, sub);
    sub.forEach(add);
  }

  for (const [i, m] of (spec.mounts ?? []).entries()) {
    if (typeof m.destination === 'string' && !path.isAbsolute(m.destination)) add(`/mounts/${i}/destination: ${notAbs(m.destination)}`);
  }

  for (const [phase, hooks] of Object.entries(spec.hooks ?? {})) {
    for (const [i, h] of (hooks ?? []).entries()) {
      if (typeof h.path === 'string' && !path.isAbsolute(h.path)) add(`/hooks/${phase}/${i}/path: ${notAbs(h.path)}`);
    }
  }

  // Namespaces.
  const byType = new Map<NamespaceType, Namespace>();
  for (const [i, ns] of (linux.namespaces ?? []).entries()) {
    if (byType.has(ns.type)) {
      add(`/linux/namespaces/${i}/type: duplicate namespace ${JSON.stringify(ns.type)}`);
      continue;
    }
    byType.set(ns.type, ns);
    if (ns.path !== undefined) {
      const problem = namespacePathProblem(ns.type, ns.path);
      if (problem) add(`/linux/namespaces/${i}/path: ${problem}`);
    }
  }
  const has = (t: NamespaceType) => byType.has(t);
  const isNew = (t: NamespaceType) => byType.has(t) && !byType.get(t)!.path;

  const uidMaps = linux.uidMappings ?? [];
  const gidMaps = linux.gidMappings ?? [];
  if (!has('user')) {
    if (uidMaps.length) add('/linux/uidMappings: uid mappings need a user namespace (none in /linux/namespaces)');
    if (gidMaps.length) add('/linux/gidMappings: gid mappings need a user namespace (none in /linux/namespaces)');
  } else if (isNew('user')) {
    if (!uidMaps.length) add('/linux/uidMappings: a new user namespace needs uid mappings');
    if (!gidMaps.length) add('/linux/gidMappings: a new user namespace needs gid mappings');
  }

  // The schema bounds each number; a range must also end below 4294967295 ((u32)-1, "unchanged"
  // to setresuid, is never mapped), where the kernel and tsrun-init accept it.
  mappingEnds(uidMaps, '/linux/uidMappings', add);
  mappingEnds(gidMaps, '/linux/gidMappings', add);

  // Id-mapped mounts, with runc 1.2's rules (libcontainer/configs/validate checkIDMapMounts).
  for (const [i, m] of (spec.mounts ?? []).entries()) {
    const opts = parseMountOptions(m.options);
    if (!isIdMapped(m, opts)) continue;
    if (!isBindMount(m, opts.flags)) {
      add(`/mounts/${i}: id-mapped mounts are only supported for bind-mounts`);
      continue;
    }
    const own = m.uidMappings !== undefined || m.gidMappings !== undefined;
    // Without mappings of its own the mount takes the container's user namespace's.
    if (own ? !m.uidMappings?.length || !m.gidMappings?.length : !has('user')) {
      add(`/mounts/${i}: id-mapped mounts must have both uid and gid mappings specified${own ? '' : ' (or a user namespace in /linux/namespaces)'}`);
    }
    for (const key of ['uidMappings', 'gidMappings'] as const) mappingEnds(m[key] ?? [], `/mounts/${i}/${key}`, add);
  }

  if (linux.timeOffsets && Object.keys(linux.timeOffsets).length > 0) {
    if (!has('time')) add('/linux/timeOffsets: time offsets need a time namespace (none in /linux/namespaces)');
    else if (!isNew('time')) add('/linux/timeOffsets: time offsets cannot be set on a joined time namespace');
  }

  if (spec.hostname && !has('uts')) add('/hostname: setting the hostname needs a uts namespace (none in /linux/namespaces)');
  if (spec.domainname && !has('uts')) add('/domainname: setting the domainname needs a uts namespace (none in /linux/namespaces)');

  // sysctl: only keys that belong to a namespace the container has of its own, as runc checks.
  for (const key of Object.keys(linux.sysctl ?? {})) {
    const where = `/linux/sysctl/${tok(key)}`;
    // runc also accepts the /proc/sys path form "net/ipv4/ip_forward".
    const k = key.includes('/') ? key.replace(/\//g, '.') : key;
    if (IPC_SYSCTLS.has(k) || k.startsWith('fs.mqueue.')) {
      if (!has('ipc')) add(`${where}: sysctl ${JSON.stringify(key)} is not allowed in the host's ipc namespace`);
      continue;
    }
    if (k.startsWith('net.')) {
      if (!has('network')) add(`${where}: sysctl ${JSON.stringify(key)} is not allowed in the host's network namespace`);
      else if (byType.get('network')!.path && isOwnNetns(byType.get('network')!.path!)) add(`${where}: sysctl ${JSON.stringify(key)} is not allowed in the host's network namespace (joined by path)`);
      continue;
    }
    if (k === 'kernel.domainname' || k === 'kernel.hostname') {
      if (!has('uts')) add(`${where}: sysctl ${JSON.stringify(key)} is not allowed in the host's uts namespace`);
      else if (k === 'kernel.hostname') add(`${where}: sysctl ${JSON.stringify(key)} conflicts with the "hostname" field; set that instead`);
      continue;
    }
    add(`${where}: sysctl ${JSON.stringify(key)} is not in a separate kernel namespace`);
  }

  if (typeof linux.cgroupsPath === 'string') {
    const cg = linux.cgroupsPath;
    if (cg.includes('\0')) add('/linux/cgroupsPath: contains a NUL byte');
    else if (cg.split('/').includes('..')) add(`/linux/cgroupsPath: ${JSON.stringify(cg)} must not contain ".." (it would leave the cgroup hierarchy)`);
  }

  for (const [i, d] of (linux.devices ?? []).entries()) {
    if (typeof d.path === 'string' && !path.isAbsolute(d.path)) add(`/linux/devices/${i}/path: ${notAbs(d.path)}`);
  }

  const sc = linux.seccomp;
  if (sc) {
    const notify = sc.defaultAction === 'SCMP_ACT_NOTIFY' || (sc.syscalls ?? []).some((s) => s.action === 'SCMP_ACT_NOTIFY');
    if (sc.defaultAction === 'SCMP_ACT_NOTIFY') add('/linux/seccomp/defaultAction: SCMP_ACT_NOTIFY cannot be the default action');
    if (notify && !sc.listenerPath) add('/linux/seccomp/listenerPath: required when SCMP_ACT_NOTIFY is used');
    if (sc.listenerPath && !path.isAbsolute(sc.listenerPath)) add(`/linux/seccomp/listenerPath: ${notAbs(sc.listenerPath)}`);
  }

  // Intel RDT: tsrun cannot apply it (no resctrl support), and the spec says a runtime without a
  // mounted resctrl MUST fail when intelRdt is set. runc 1.1 ignores a bare `{}` or closID; tsrun
  // refuses any intelRdt, with runc's wording for the parts runc refuses too.
  const rdt = linux.intelRdt as { closID?: unknown; l3CacheSchema?: unknown; memBwSchema?: unknown } | undefined;
  if (rdt && typeof rdt === 'object') {
    const clos = rdt.closID;
    if (typeof clos === 'string' && (clos === '.' || clos === '..' || clos.includes('/'))) add(`/linux/intelRdt/closID: invalid intelRdt.ClosID ${JSON.stringify(clos)}`);
    if (resctrlMounted()) {
      add('/linux/intelRdt: Intel RDT (resctrl) is not supported by tsrun; remove intelRdt from the config');
    } else {
      add('/linux/intelRdt: intelRdt is specified in config, but Intel RDT is not supported or enabled (no resctrl filesystem is mounted)');
      if (rdt.l3CacheSchema) add('/linux/intelRdt/l3CacheSchema: intelRdt.l3CacheSchema is specified in config, but Intel RDT/CAT is not enabled');
      if (rdt.memBwSchema) add('/linux/intelRdt/memBwSchema: intelRdt.memBwSchema is specified in config, but Intel RDT/MBA is not enabled');
    }
  }

  // Last, and without the label: runc's exact wording, which tools match.
  if (spec.root && typeof spec.root.path === 'string') {
    const rootfs = path.resolve(bundle, spec.root.path);
    let isDir = false;
    try {
      isDir = fs.statSync(rootfs).isDirectory();
      if (!isDir) p.push(`rootfs (${rootfs}) is not a directory`);
    } catch (e) {
      p.push((e as NodeJS.ErrnoException).code === 'ENOENT' ? `rootfs (${rootfs}) does not exist` : `rootfs (${rootfs}): ${strerror(e)}`);
    }
    if (isDir) {
      const problem = rootfsSymlinkProblem(bundle, spec.root.path);
      if (problem) p.push(problem);
    }
  }
  return p;
}

/**
 * Parses and validates a config text as found in `bundle` (schema, then rules across fields).
 * Exported for tests and for callers holding the text already.
 */
export function parseBundleConfig(text: string, bundle: string, label = 'config.json'): Spec {
  const { value, bigs } = parseJson(text, label);
  const v = validators().validateConfig;
  if (!v(value)) throw new SpecError(formatSchemaErrors(v.errors).map((l) => `${label}: ${l}`));
  const problems = checkSpec(value as Spec, bundle, label, bigs);
  if (problems.length) throw new SpecError(problems);
  return value as Spec;
}

/** Reads and validates `<bundle>/config.json`. Throws SpecError. */
export function loadBundleConfig(bundleDir: string): Spec {
  const bundle = path.resolve(bundleDir);
  const file = path.join(bundle, 'config.json');
  return parseBundleConfig(readSpecFile(file), bundle);
}

/** Reads and validates a process JSON file (exec --process). Throws SpecError. */
export function loadProcessFile(file: string): Process {
  const label = path.basename(file);
  const { value, bigs } = parseJson(readSpecFile(file), label);
  const v = validators().validateProcess;
  if (!v(value)) throw new SpecError(formatSchemaErrors(v.errors).map((l) => `${label}: ${l}`));
  const problems: string[] = [];
  checkProcess(value as Process, '', bigs, problems);
  if (problems.length) throw new SpecError(problems.map((l) => `${label}: ${l}`));
  return value as Process;
}

/**
 * Schema check of a LinuxResources object (`update`), with the same schema as config.json's
 * linux.resources. Returns one line per problem, each naming its JSON pointer inside the object.
 */
export function resourcesProblems(resources: unknown): string[] {
  if (!resources || typeof resources !== 'object' || Array.isArray(resources)) return ['/ must be an object'];
  const v = validators().validateConfig;
  if (v({ ociVersion: '1.2.0', linux: { resources } })) return [];
  const inside = (v.errors ?? []).filter((e) => e.instancePath.startsWith('/linux/resources'));
  return formatSchemaErrors(inside.map((e) => ({ ...e, instancePath: e.instancePath.slice('/linux/resources'.length) })));
}

/** Schema check of an OCI state object (e.g. a saved state read back). Returns the problems. */
export function stateProblems(state: unknown): string[] {
  const v = validators().validateState;
  return v(state) ? [] : formatSchemaErrors(v.errors);
}
