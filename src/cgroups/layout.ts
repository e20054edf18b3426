/**
 * Which cgroup hierarchies this host mounts, read from /proc/self/mountinfo (not guessed from
 * /sys/fs/cgroup's contents: a hybrid host has both a v1 tree and a cgroup2 mount, and must
 * never be refused, unlike crun does).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export type CgroupLayout = 'v1' | 'hybrid' | 'v2';

export interface CgroupMount {
  mountpoint: string;
  /** Root of the mount inside its hierarchy (field 4 of mountinfo), "/" normally. */
  root: string;
  fstype: 'cgroup' | 'cgroup2';
  /** v1: the controllers of this hierarchy ("cpu", "cpuacct", "name=systemd"); v2: []. */
  controllers: string[];
}

/** v1 controllers runc manages (its subsystem list); other hierarchies (misc, name=foo) are left alone. */
export const V1_CONTROLLERS = [
  'cpuset',
  'cpu',
  'cpuacct',
  'memory',
  'devices',
  'freezer',
  'net_cls',
  'net_prio',
  'perf_event',
  'hugetlb',
  'pids',
  'blkio',
  'rdma',
  'name=systemd',
];

const V1_KNOWN = new Set(V1_CONTROLLERS);

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
}

export function parseCgroupMounts(mountinfo: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of mountinfo.split('\n')) {
    if (!line) continue;
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const pre = line.slice(0, sep).split(' ');
    const post = line.slice(sep + 3).split(' ');
    const fstype = post[0];
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const superOpts = (post[2] ?? '').split(',');
    out.push({
      mountpoint: unescapeMount(pre[4]),
      root: unescapeMount(pre[3]),
      fstype,
      controllers: fstype === 'cgroup' ? superOpts.filter((o) => V1_KNOWN.has(o) || o.startsWith('name=')) : [],
    });
  }
  return out;
}

export function readMountinfo(): string {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8');
}

/**
 * v2: only a cgroup2 mount at the cgroup root; hybrid: v1 controller hierarchies plus a cgroup2
 * mount (usually /sys/fs/cgroup/unified); v1: v1 hierarchies only.
 */
export function layoutOf(mounts: CgroupMount[], cgroupRoot = '/sys/fs/cgroup'): CgroupLayout {
  const v1 = mounts.filter((m) => m.fstype === 'cgroup' && m.controllers.some((c) => !c.startsWith('name=')));
  const v2 = mounts.filter((m) => m.fstype === 'cgroup2');
  if (v1.length === 0) {
    if (v2.length === 0) throw new Error('no cgroup filesystem is mounted (/proc/self/mountinfo has no cgroup or cgroup2 entry)');
    return 'v2';
  }
  // A cgroup2 mount at the root itself next to v1 controllers would be odd; still hybrid.
  void cgroupRoot;
  return v2.length > 0 ? 'hybrid' : 'v1';
}

export function detectLayout(): CgroupLayout {
  return layoutOf(parseCgroupMounts(readMountinfo()));
}

/**
 * /proc/self/cgroup → controller → path. The v2 (or hybrid unified) entry "0::/x" is under
 * the key "". Co-mounted controllers ("cpu,cpuacct") get one key each.
 */
export function parseProcCgroup(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (!line) continue;
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const ctrls = line.slice(first + 1, second);
    const p = line.slice(second + 1);
    if (ctrls === '') out[''] = p;
    else for (const c of ctrls.split(',')) out[c] = p;
  }
  return out;
}

export function readSelfCgroup(): string {
  return fs.readFileSync('/proc/self/cgroup', 'utf8');
}

/** The v1 mount holding `controller`, if mounted. */
export function findV1Mount(mounts: CgroupMount[], controller: string): CgroupMount | undefined {
  return mounts.find((m) => m.fstype === 'cgroup' && m.controllers.includes(controller));
}

/** The cgroup2 mount (the root one on v2, the "unified" one on hybrid). */
export function findV2Mount(mounts: CgroupMount[]): CgroupMount | undefined {
  return mounts.find((m) => m.fstype === 'cgroup2');
}

/** Host path of `cgroupPath` (a path inside the hierarchy) under a mount whose root may not be "/". */
export function hostPathIn(mount: CgroupMount, cgroupPath: string): string {
  // Inside a container the mount root is the container's cgroup: strip it from the path.
  let rel = cgroupPath;
  if (mount.root !== '/' && (rel === mount.root || rel.startsWith(mount.root + '/'))) rel = rel.slice(mount.root.length) || '/';
  return path.posix.join(mount.mountpoint, rel);
}
