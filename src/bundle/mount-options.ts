/**
 * runc's mount option parsing (libcontainer/specconv parseMountOptions): each option is, in this
 * order of lookup, an MS_* flag to set or clear, a propagation change, a recursive mount attribute
 * (mount_setattr with AT_RECURSIVE, the "r" options), or else filesystem data passed to mount(2)
 * as is ("mode=755", "size=65536k", "newinstance"...). Unknown words are never errors: the
 * filesystem decides, exactly as with runc.
 */

// <linux/mount.h> values (identical on every Linux architecture).
export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_SYNCHRONOUS = 0x10;
export const MS_REMOUNT = 0x20;
export const MS_MANDLOCK = 0x40;
export const MS_DIRSYNC = 0x80;
export const MS_NOSYMFOLLOW = 0x100;
export const MS_NOATIME = 0x400;
export const MS_NODIRATIME = 0x800;
export const MS_BIND = 0x1000;
export const MS_MOVE = 0x2000;
export const MS_REC = 0x4000;
export const MS_SILENT = 0x8000;
export const MS_POSIXACL = 0x10000;
export const MS_UNBINDABLE = 0x20000;
export const MS_PRIVATE = 0x40000;
export const MS_SLAVE = 0x80000;
export const MS_SHARED = 0x100000;
export const MS_RELATIME = 0x200000;
export const MS_I_VERSION = 0x800000;
export const MS_STRICTATIME = 0x1000000;
export const MS_LAZYTIME = 0x2000000;

export const MOUNT_ATTR_RDONLY = 0x1;
export const MOUNT_ATTR_NOSUID = 0x2;
export const MOUNT_ATTR_NODEV = 0x4;
export const MOUNT_ATTR_NOEXEC = 0x8;
export const MOUNT_ATTR__ATIME = 0x70;
export const MOUNT_ATTR_RELATIME = 0x0;
export const MOUNT_ATTR_NOATIME = 0x10;
export const MOUNT_ATTR_STRICTATIME = 0x20;
export const MOUNT_ATTR_NODIRATIME = 0x80;
export const MOUNT_ATTR_NOSYMFOLLOW = 0x200000;

/** [clear, flag]: "rw" clears MS_RDONLY, "ro" sets it. runc's table, word for word. */
const FLAGS: Readonly<Record<string, readonly [boolean, number]>> = {
  async: [true, MS_SYNCHRONOUS],
  atime: [true, MS_NOATIME],
  bind: [false, MS_BIND],
  defaults: [false, 0],
  dev: [true, MS_NODEV],
  diratime: [true, MS_NODIRATIME],
  dirsync: [false, MS_DIRSYNC],
  exec: [true, MS_NOEXEC],
  iversion: [false, MS_I_VERSION],
  lazytime: [false, MS_LAZYTIME],
  loud: [true, MS_SILENT],
  mand: [false, MS_MANDLOCK],
  noatime: [false, MS_NOATIME],
  nodev: [false, MS_NODEV],
  nodiratime: [false, MS_NODIRATIME],
  noexec: [false, MS_NOEXEC],
  noiversion: [true, MS_I_VERSION],
  nolazytime: [true, MS_LAZYTIME],
  nomand: [true, MS_MANDLOCK],
  norelatime: [true, MS_RELATIME],
  nostrictatime: [true, MS_STRICTATIME],
  nosuid: [false, MS_NOSUID],
  nosymfollow: [false, MS_NOSYMFOLLOW],
  rbind: [false, MS_BIND | MS_REC],
  relatime: [false, MS_RELATIME],
  remount: [false, MS_REMOUNT],
  ro: [false, MS_RDONLY],
  rw: [true, MS_RDONLY],
  silent: [false, MS_SILENT],
  strictatime: [false, MS_STRICTATIME],
  suid: [true, MS_NOSUID],
  symfollow: [true, MS_NOSYMFOLLOW],
  sync: [false, MS_SYNCHRONOUS],
};

export const PROPAGATION: Readonly<Record<string, number>> = {
  private: MS_PRIVATE,
  rprivate: MS_PRIVATE | MS_REC,
  shared: MS_SHARED,
  rshared: MS_SHARED | MS_REC,
  slave: MS_SLAVE,
  rslave: MS_SLAVE | MS_REC,
  unbindable: MS_UNBINDABLE,
  runbindable: MS_UNBINDABLE | MS_REC,
};

/** [clear, attr] for mount_setattr(AT_RECURSIVE). */
const REC_ATTRS: Readonly<Record<string, readonly [boolean, number]>> = {
  rro: [false, MOUNT_ATTR_RDONLY],
  rrw: [true, MOUNT_ATTR_RDONLY],
  rnosuid: [false, MOUNT_ATTR_NOSUID],
  rsuid: [true, MOUNT_ATTR_NOSUID],
  rnodev: [false, MOUNT_ATTR_NODEV],
  rdev: [true, MOUNT_ATTR_NODEV],
  rnoexec: [false, MOUNT_ATTR_NOEXEC],
  rexec: [true, MOUNT_ATTR_NOEXEC],
  rnodiratime: [false, MOUNT_ATTR_NODIRATIME],
  rdiratime: [true, MOUNT_ATTR_NODIRATIME],
  rrelatime: [false, MOUNT_ATTR_RELATIME],
  rnorelatime: [true, MOUNT_ATTR_RELATIME],
  rnoatime: [false, MOUNT_ATTR_NOATIME],
  ratime: [true, MOUNT_ATTR_NOATIME],
  rstrictatime: [false, MOUNT_ATTR_STRICTATIME],
  rnostrictatime: [true, MOUNT_ATTR_STRICTATIME],
  rnosymfollow: [false, MOUNT_ATTR_NOSYMFOLLOW],
  rsymfollow: [true, MOUNT_ATTR_NOSYMFOLLOW],
};

/**
 * runc 1.2's id-mapped mount options (never passed to mount(2)): the bind gets an idmapping
 * (mount_setattr MOUNT_ATTR_IDMAP), "ridmap" on every mount of an rbind, "idmap" on its top.
 */
const IDMAP: Readonly<Record<string, boolean>> = { idmap: false, ridmap: true };
/** runc's "tmpcopyup": a tmpfs starts with a copy of what its mount point held. */
const COPY_UP = 'tmpcopyup';

export interface ParsedMountOptions {
  /** MS_* flags for mount(2) (MS_BIND / MS_REC included for bind / rbind). */
  flags: number;
  /** Propagation changes in the order given, one mount(2) each. */
  propagation: number[];
  recursiveAttrSet: number;
  recursiveAttrClear: number;
  /** Everything not recognised, comma-joined, for the filesystem. */
  data: string;
  /** "idmap" (false) or "ridmap" (true, recursive) was given; undefined: neither (the last wins). */
  idmapRecursive?: boolean;
  /** tmpcopyup was given (it only means something for tmpfs, where runc honours it). */
  copyUp: boolean;
}

export function parseMountOptions(options: readonly string[] | undefined): ParsedMountOptions {
  let flags = 0;
  const propagation: number[] = [];
  let set = 0;
  let clear = 0;
  const data: string[] = [];
  let idmapRecursive: boolean | undefined;
  let copyUp = false;
  for (const o of options ?? []) {
    const f = FLAGS[o];
    if (f) {
      flags = f[0] ? flags & ~f[1] : flags | f[1];
      continue;
    }
    const p = PROPAGATION[o];
    if (p !== undefined) {
      propagation.push(p);
      continue;
    }
    const r = REC_ATTRS[o];
    if (r) {
      if (r[0]) {
        clear |= r[1];
      } else {
        set |= r[1];
        // mount_setattr(2): an access-time mode in attr_set needs MOUNT_ATTR__ATIME in attr_clr.
        if ((r[1] & MOUNT_ATTR__ATIME) === r[1]) clear |= MOUNT_ATTR__ATIME;
      }
      continue;
    }
    if (o === COPY_UP) {
      copyUp = true;
      continue;
    }
    if (o in IDMAP) {
      idmapRecursive = IDMAP[o];
      continue;
    }
    data.push(o);
  }
  return { flags: flags >>> 0, propagation, recursiveAttrSet: set >>> 0, recursiveAttrClear: clear >>> 0, data: data.join(','), copyUp, ...(idmapRecursive === undefined ? {} : { idmapRecursive }) };
}

/**
 * A bind mount: the spec makes bind/rbind in options decide; type "bind" alone is taken as a bind
 * as well, since mount(2) has no "bind" file system type and the intent is unambiguous.
 */
export function isBindMount(m: { type?: string }, flags: number): boolean {
  return (flags & MS_BIND) !== 0 || m.type === 'bind';
}

/** runc 1.2: "idmap"/"ridmap", or mappings on the mount without either (then not recursive). */
export function isIdMapped(m: { uidMappings?: unknown; gidMappings?: unknown }, opts: { idmapRecursive?: boolean }): boolean {
  return opts.idmapRecursive !== undefined || m.uidMappings !== undefined || m.gidMappings !== undefined;
}

/** Every option word tsrun recognises (for `features`). */
export function knownMountOptions(): string[] {
  return [...Object.keys(FLAGS), ...Object.keys(PROPAGATION), ...Object.keys(REC_ATTRS), ...Object.keys(IDMAP), COPY_UP].sort();
}
