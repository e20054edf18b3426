/**
 * The contract between the TypeScript runtime and the native container init (`tsrun-init`).
 *
 * Node never forks a process that runs JavaScript inside a container. Instead it spawns the small,
 * single-threaded C++ program `tsrun-init` (built from addon/init/) and sends it one InitPlan as a
 * JSON line on the sync socket. Everything in the plan is already validated and resolved by
 * TypeScript (numbers, not names: mount flags, clone flags, capability numbers, signal numbers), so
 * the C++ side only executes it, in order. See addon/init/PROTOCOL.md for the message flow.
 */

/** A namespace to create (no path) or join (path). `type` is the runtime-spec name. */
export interface PlanNamespace {
  type: 'pid' | 'network' | 'mount' | 'ipc' | 'uts' | 'user' | 'cgroup' | 'time';
  /** Absolute path to join (e.g. /proc/123/ns/net). Absent: create a new namespace. */
  path?: string;
}

export interface PlanIdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

/**
 * One step of the root filesystem set-up, executed in order inside the new mount namespace,
 * before pivot_root. Destinations are absolute container paths; the init resolves them inside the
 * rootfs (openat2 RESOLVE_IN_ROOT), creating missing directories (0755) and, for a bind of a
 * non-directory, the final file, and never follows a symlink out of the rootfs.
 */
export type PlanMountStep =
  | {
      kind: 'mount';
      /** Fs source, or for binds the absolute host path (already resolved against the bundle). */
      source: string;
      destination: string;
      /** Filesystem type; '' for binds. */
      fstype: string;
      /** MS_* flags for mount(2), including MS_BIND|MS_REC for binds, never propagation flags. */
      flags: number;
      /** Filesystem data (e.g. "mode=755,size=65536k"). */
      data: string;
      /**
       * For binds only: when non-zero, a second mount(2) with MS_BIND|MS_REMOUNT|remountFlags
       * (MS_RDONLY, MS_NOSUID, ...), keeping the locked flags the source mount already has
       * (statfs f_flags: nosuid/nodev/noexec/noatime...), as the kernel demands in a user namespace.
       */
      remountFlags: number;
      /** Propagation changes applied after the mount, one mount(2) each (MS_SHARED|MS_REC ...). */
      propagation: number[];
      /** mount_setattr(AT_RECURSIVE) attributes set (e.g. MOUNT_ATTR_RDONLY for "rro"); 0 = none. */
      recursiveAttrSet: number;
      recursiveAttrClear: number;
      /** tmpfs only ("tmpcopyup"): the new tmpfs starts with a copy of the directory it covers. */
      copyUp?: boolean;
      /**
       * Bind source is a directory (true) or not (false); computed by TypeScript with stat(2) so the
       * init knows whether to create a directory or an empty file as the mount point.
       */
      sourceIsDir: boolean;
    }
  | {
      /** Create a symlink at `linkPath` (container path) pointing to `target`, unless it exists. */
      kind: 'symlink';
      target: string;
      linkPath: string;
    }
  | {
      /** Create a directory (and parents) at `path` with `mode`, unless it exists. */
      kind: 'mkdir';
      path: string;
      mode: number;
    };

/** A device node to create after the mounts (default devices and linux.devices). */
export interface PlanDevice {
  /** Absolute container path, e.g. /dev/null. */
  path: string;
  /** 'c' | 'b' | 'u' | 'p' */
  type: 'c' | 'b' | 'u' | 'p';
  major: number;
  minor: number;
  /** Permission bits (e.g. 0o666). */
  fileMode: number;
  uid: number;
  gid: number;
  /**
   * Bind-mount the host node at the same path instead of mknod (inside a user namespace mknod is
   * not allowed; runc does the same).
   */
  bind: boolean;
}

export interface PlanRlimit {
  /** RLIMIT_* number. */
  resource: number;
  soft: number | string; // numbers above 2^53 are sent as decimal strings ("18446744073709551615")
  hard: number | string;
}

/** Capability sets as lists of capability numbers (CAP_CHOWN = 0 ...). */
export interface PlanCapabilities {
  bounding: number[];
  effective: number[];
  permitted: number[];
  inheritable: number[];
  ambient: number[];
}

export interface PlanSeccomp {
  /** The compiled classic BPF program: base64 of `struct sock_filter[]` (8 bytes per insn). */
  bpfBase64: string;
  /** SECCOMP_FILTER_FLAG_* to pass to seccomp(2). */
  flags: number;
  /**
   * Non-empty when the filter contains SCMP_ACT_NOTIFY: the init connects to this unix socket
   * (linux.seccomp.listenerPath) before pivot_root, loads the filter with
   * SECCOMP_FILTER_FLAG_NEW_LISTENER and sends one message on the connection: the
   * ContainerProcessState JSON (listenerStatePrefix + host pid of the process + listenerStateSuffix)
   * with the listener fd attached (SCM_RIGHTS), then closes both.
   */
  listenerPath: string;
  listenerStatePrefix: string;
  listenerStateSuffix: string;
}

/** A hook the init itself runs (createContainer before pivot_root, startContainer after start). */
export interface PlanHook {
  path: string;
  args: string[];
  env: string[];
  /** Seconds; 0 = none. */
  timeout: number;
}

/** The process the init execs at the end (both for a container init and for `exec`). */
export interface PlanProcess {
  args: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  additionalGids: number[];
  /** -1: leave the umask alone (runc's default 0022 is applied by TypeScript when absent). */
  umask: number;
  terminal: boolean;
  /** Console size when terminal: 0/0 = leave as is. */
  consoleWidth: number;
  consoleHeight: number;
  rlimits: PlanRlimit[];
  /** null: do not write oom_score_adj. */
  oomScoreAdj: number | null;
  noNewPrivileges: boolean;
  /**
   * Always present: the exact sets the process gets. There is no "leave the caller's" (that would
   * be every capability of the runtime): an absent object or set in the config is empty here.
   */
  capabilities: PlanCapabilities;
  seccomp: PlanSeccomp | null;
  /** AppArmor profile to apply on exec ("" = none); written to /proc/self/attr/apparmor/exec. */
  apparmorProfile: string;
  /** SELinux process label ("" = none); written to /proc/self/attr/exec. */
  selinuxLabel: string;
  /** Number of fds after stdio to keep open (LISTEN_FDS + --preserve-fds): fds 3..3+n-1. */
  preserveFds: number;
}

export interface InitPlanCommon {
  /** Container id, for messages only. */
  id: string;
  process: PlanProcess;
  /**
   * Path of a unix socket (runc's --console-socket). When process.terminal is true the init
   * creates a pty inside the container and sends its master fd over this socket with SCM_RIGHTS
   * (one sendmsg, data = the pty name, exactly one fd), then makes the slave its stdio and
   * controlling terminal.
   */
  consoleSocket: string;
  /**
   * Keep stage 0 as the parent of the container process: it waits for it and reports
   * {"type":"exit","status":N} on the sync socket (used by `run` without -d and by `exec`
   * without -d, so that the exit status reaches the caller). When false, stage 0 exits as soon as
   * the container process is set up and the process is reparented (to a subreaper or pid 1).
   */
  waitForExit: boolean;
}

/** `create`/`run`: a new container init. */
export interface CreatePlan extends InitPlanCommon {
  mode: 'create';
  /** In order; user namespace first when joined by path. */
  namespaces: PlanNamespace[];
  uidMappings: PlanIdMapping[];
  gidMappings: PlanIdMapping[];
  /** linux.timeOffsets as CLOCK_MONOTONIC / CLOCK_BOOTTIME offsets (seconds, nanoseconds). */
  timeOffsets: { monotonic?: { secs: number; nanosecs: number }; boottime?: { secs: number; nanosecs: number } };
  hostname: string | null;
  domainname: string | null;
  /** Absolute host path of the root filesystem (already resolved against the bundle). */
  rootfs: string;
  rootfsReadonly: boolean;
  /** MS_* propagation for "/" before set-up: rootfsPropagation, or MS_SLAVE|MS_REC by default. */
  rootPropagation: number;
  /**
   * rootfsPropagation was set explicitly (runc then also applies it to the new root after
   * pivot_root).
   */
  rootPropagationExplicit: boolean;
  mountSteps: PlanMountStep[];
  devices: PlanDevice[];
  /** Symlinks made in /dev after the devices (/dev/fd, stdin, stdout, stderr, ptmx, core). */
  devSymlinks: { target: string; linkPath: string }[];
  /** Populate /dev (devices, symlinks): true unless /dev is a bind mount, as runc decides. */
  setupDev: boolean;
  /**
   * Non-zero for a read-only /dev mount: /dev is mounted read-write so that devices and symlinks
   * can be made, then remounted with these flags (MS_RDONLY and the mount's own) after the masks.
   */
  devRemountFlags: number;
  noPivot: boolean;
  /** linux.sysctl, written under /proc/sys after pivot_root: key "net.ipv4.ip_forward". */
  sysctl: { key: string; value: string }[];
  maskedPaths: string[];
  readonlyPaths: string[];
  /**
   * Stop after the mounts, before createContainer hooks and pivot_root, send {"type":"hooks"} and
   * wait for {"type":"continue"} while the parent runs prestart and createRuntime hooks.
   */
  syncRuntimeHooks: boolean;
  /** Run by the init in the container namespaces, before pivot_root (state JSON on stdin). */
  createContainerHooks: PlanHook[];
  /** Run by the init after `start`, before the user process (state JSON on stdin). */
  startContainerHooks: PlanHook[];
  /**
   * The OCI state JSON for the init's own hooks, split around the pid: the hook's stdin is
   * statePrefix + <host pid of the container init> + stateSuffix.
   */
  statePrefix: string;
  stateSuffix: string;
  /**
   * Absolute host path of the exec fifo (created by TypeScript with mkfifo 0600). Stage 0 opens
   * it O_RDWR before joining or creating any namespace; the container init inherits the fd and,
   * after reporting "ready", blocks reading one byte from it: `start` writes that byte. An empty
   * string: no waiting (run without create).
   */
  execFifo: string;
  /** Name of a new session keyring to join ("_ses.<id>"), or "" to keep the caller's (--no-new-keyring). */
  sessionKeyring?: string;
  /**
   * Absolute host path of a second fifo, opened O_RDWR by stage 0 with the exec fifo. After the
   * exec fifo released it, a failure (startContainer hook, execve) is written there as one line
   * before the init exits; a successful execve closes it. `start` reads it to EOF, so it fails
   * when the process could not start and returns once it runs. "" with no execFifo.
   */
  startReplyFifo?: string;
  /** linux.personality domain number, or -1 for none. */
  personality: number;
  /**
   * Rootless (runc's RootlessEUID: tsrun runs with euid != 0); absent = false. Needs a user
   * namespace. Stage 0 then writes no uid/gid map: the parent writes them (setgroups "deny" and the
   * single own-id map directly, anything else through newuidmap/newgidmap) after {"type":"pid"}
   * and before {"type":"placed"}; the container init opens its bind sources itself, before any
   * mount (stage 0 may not enter its mount namespace); setgroups(2) is never called.
   */
  rootless?: boolean;
}

/** `exec`: a new process inside a running container. */
export interface ExecPlan extends InitPlanCommon {
  mode: 'exec';
  /** Host pid of the container init whose namespaces are joined. */
  initPid: number;
  /**
   * Its start time (field 22 of /proc/<pid>/stat): stage 0 compares it once it holds a pidfd, so a
   * pid reused after the init died is never joined.
   */
  initStartTime: number;
  /** Namespace types to join, in order (user first when present). */
  joinNamespaces: PlanNamespace['type'][];
}

export type InitPlan = CreatePlan | ExecPlan;

/** Messages from the init to the parent, one JSON object a line on the sync socket. */
export type InitMessage =
  | { type: 'pid'; pid: number }
  | { type: 'hooks' }
  | { type: 'ready' }
  | { type: 'exit'; status: number }
  | { type: 'error'; message: string };
