/**
 * The typed, lazily loaded N-API addon (build/Release/tsrun_native.node, built from addon/native/
 * by `node-gyp rebuild`). Nothing is loaded at import time: commands that never need a syscall
 * Node lacks (list, state, spec...) never pay for dlopen or libseccomp.
 *
 * Location: $TSRUN_NATIVE when set, else <repo root>/build/Release/tsrun_native.node, the repo root
 * being the first directory above this file (or the esbuild bundle in dist/) with a package.json.
 *
 * Functions are synchronous unless they return a promise (work on libuv's thread pool) or take a
 * callback; errors have the message "<op>: <strerror>" and `code`, the errno name ("EAGAIN",
 * "ESRCH"...), like Node's own fs errors.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** One device cgroup rule (src/cgroups/devices.ts DeviceRule): -1 major/minor = any. */
export interface NativeDeviceRule {
  allow: boolean;
  type: 'a' | 'b' | 'c';
  major: number;
  minor: number;
  /** Subset of "rwm". */
  access: string;
}

export interface NativeSeccompArg {
  index: number;
  /** 64-bit values: bigint keeps them exact (JSON numbers above 2^53 are not). */
  value: bigint | number;
  valueTwo?: bigint | number;
  op: string;
}

/** The runtime-spec seccomp shape the native compiler reads (already validated by compile.ts). */
export interface NativeSeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  syscalls?: { names: string[]; action: string; errnoRet?: number; args?: NativeSeccompArg[] }[];
}

export interface NativeAddon {
  /** flock(2): LOCK_EX or LOCK_SH, with LOCK_NB when nonblocking (then code EAGAIN, = EWOULDBLOCK, if held). */
  flock(fd: number, exclusive: boolean, nonblocking: boolean): void;
  funlock(fd: number): void;
  /** mkfifo(3): the process umask applies to `mode`. */
  mkfifo(path: string, mode: number): void;
  /** AF_UNIX SOCK_STREAM pair, both ends close-on-exec. */
  socketpair(): [number, number];
  /** One sendmsg with `data` and exactly one fd (SCM_RIGHTS). Empty data is sent as one NUL byte. */
  sendFd(sockFd: number, fd: number, data: string): void;
  /**
   * One recvmsg (up to 64 KiB of data) that must carry exactly one fd (received close-on-exec);
   * otherwise every received fd is closed and an Error with code ENOMSG/EMSGSIZE is thrown.
   * Trailing NUL bytes of the data are dropped.
   */
  recvFd(sockFd: number): { fd: number; data: string };
  /** pidfd_open(2); the fd is close-on-exec. */
  pidfdOpen(pid: number): number;
  pidfdSendSignal(pidfd: number, sig: number): void;
  /**
   * Calls `cb(true)` once `fd` is readable or hung up (a pidfd: its process exited), `cb(false)`
   * after `timeoutMs` (negative: never). The addon's one epoll reactor thread watches a dup of
   * `fd` (addon/native/wait.cc) and `cb` runs on the JavaScript thread; nothing is read. Throws
   * for an fd epoll refuses (a regular file).
   */
  waitReadable(fd: number, timeoutMs: number, cb: (readable: boolean) => void): number;
  /** The wait of that id (waitReadable's result) no longer keeps the event loop alive. */
  unrefWait(id: number): void;
  /** The wait of that id ends without its callback, and no longer holds the fd's file open. */
  cancelWait(id: number): void;
  /**
   * posix_spawn(3) (no fork of this process: see addon/native/spawn.cc) of `file` with `fds[i]`
   * as fd i, blocking stdio, default signals, its own session and an empty environment; its pid,
   * once the child has exec'd (on the thread pool). The fds must stay open until then.
   */
  spawnProcess(file: string, args: string[], fds: number[]): Promise<number>;
  /**
   * Writes each [path, value] in order on the thread pool, in one piece of work (see
   * addon/native/files.cc): open(O_WRONLY|O_TRUNC), one write(2), close. Rejects at the first
   * failure with its errno error, `index` naming the pair; the files after it are not written.
   */
  writeFiles(files: [string, string][]): Promise<void>;
  /** waitid(P_PIDFD, WEXITED|WNOHANG) of a child: its status once exited (reaped), else null. */
  pidfdReap(pidfd: number): { code: number | null; signal: number | null } | null;
  /**
   * A blocking flock(2) (LOCK_EX or LOCK_SH) on a thread of its own, on a dup of `fd` (the lock is
   * `fd`'s open file's): `cb(null)` once held, `cb(Error)` otherwise, code ETIMEDOUT after
   * `timeoutMs` (negative: never). After a timeout, close `fd`: a lock the thread still gets then
   * goes with its dup at once.
   */
  flockWait(fd: number, exclusive: boolean, timeoutMs: number, cb: (err: NodeJS.ErrnoException | null) => void): void;
  /**
   * getsockopt(SO_PEERCRED) of a connected AF_UNIX socket: the peer's pid, uid and gid as they were
   * when it connected. A Node socket's fd is `(socket as any)._handle.fd`.
   */
  peerCredentials(fd: number): { pid: number; uid: number; gid: number };
  /**
   * The calling thread's scheduler times in ms: `cpu` it ran (CLOCK_THREAD_CPUTIME_ID), `waited`
   * runnable but without a CPU (/proc/thread-self/schedstat): how long a callback really kept
   * the event loop (diagnostics, tests).
   */
  threadSchedTimes(): { cpu: number; waited: number };
  /**
   * A container's cgroup statistics as runc's `events --stats` data, JSON (src/cgroups/stats.ts).
   * layout 'v1'/'hybrid' reads paths[<controller>], 'v2' paths[''], 'none' nothing. A file that
   * exists but cannot be read: Error "<file>: read: <strerror>", syscall "<file>: read", code.
   */
  cgroupStats(layout: 'v1' | 'hybrid' | 'v2' | 'none', paths: Record<string, string>): string;
  /** pipe2(O_CLOEXEC): [read end, write end] — a real pipe (libuv's stdio pipes are socketpairs). */
  pipe(): [number, number];
  /** fcntl(F_DUPFD_CLOEXEC): another fd of the same open file. */
  dup(fd: number): number;
  /** ioctl(TIOCSWINSZ) on a terminal (a pty master: the container's terminal size). */
  setWinsize(fd: number, cols: number, rows: number): void;
  /** mount(2); fstype/data "" = NULL. flags: MS_* (src/bundle/mount-options.ts). */
  mount(source: string, target: string, fstype: string, flags: number, data: string): void;
  /** umount2(2); flags 2 = MNT_DETACH. */
  umount(target: string, flags: number): void;
  /**
   * Attaches a BPF_PROG_TYPE_CGROUP_DEVICE program implementing `rules` (runc's semantics) to the
   * cgroup v2 directory, with BPF_F_ALLOW_MULTI, replacing the program this runtime attached before.
   */
  loadDeviceFilter(cgroupDirPath: string, rules: NativeDeviceRule[]): void;
  /** How many device programs are attached to the cgroup directory (tests, diagnostics). */
  deviceFilterCount(cgroupDirPath: string): number;
  /**
   * libseccomp → classic BPF (struct sock_filter[]), with runc's -ENOSYS stub prepended. `arch`:
   * "" for the machine's own architecture, or an SCMP_ARCH_* name to build for another one.
   * `onUnknown` is called with each syscall name libseccomp does not know (the rule is skipped).
   */
  seccompCompile(profile: NativeSeccompProfile, arch: string, onUnknown?: (name: string) => void): Buffer;
  /**
   * The same, built on libuv's thread pool (the profile is read at once: a bad one throws here);
   * `unknown` lists the skipped syscall names.
   */
  seccompCompileAsync(profile: NativeSeccompProfile, arch: string): Promise<{ bpf: Buffer; unknown: string[] }>;
  /** The syscall number of `name` for `arch` ("" = native), -1 when unknown to libseccomp. */
  seccompSyscallNumber(name: string, arch?: string): number;
  /** SCMP_ARCH_* name of this machine ("SCMP_ARCH_X86_64"). */
  seccompNativeArch(): string;
}

/** A unit property for D-Bus: [name, D-Bus signature, value marshalled by that signature]. */
export type SystemdProperty = [string, string, unknown];
/** false: the system bus; a string: the user bus at that D-Bus address. */
export type SystemdBusTarget = false | string;

/**
 * build/Release/tsrun_systemd.node (addon/native/systemd.cc, linked with libsystemd): an addon of
 * its own, loaded only by the systemd cgroup driver, so that no other command pays for loading
 * libsystemd and its libraries. $TSRUN_SYSTEMD_NATIVE overrides the path.
 */
export interface SystemdAddon {
  /*
   * systemd's manager over D-Bus (sd-bus; addon/native/systemd.cc): `bus` false is the system
   * bus, a string the user's bus at that address (src/cgroups/systemd.ts finds it). Errors from systemd carry the D-Bus error name as `code`
   * ("org.freedesktop.systemd1.NoSuchUnit"); connection failures the errno name.
   */
  /** StartTransientUnit + wait for its job: the job's result ("done", "failed"...), "" on timeout. */
  systemdStartTransientUnit(bus: SystemdBusTarget, name: string, mode: string, properties: SystemdProperty[], timeoutMs: number): string;
  /** StopUnit + wait for its job: the result, "" on timeout. */
  systemdStopUnit(bus: SystemdBusTarget, name: string, mode: string, timeoutMs: number): string;
  systemdResetFailedUnit(bus: SystemdBusTarget, name: string): void;
  systemdSetUnitProperties(bus: SystemdBusTarget, name: string, runtime: boolean, properties: SystemdProperty[]): void;
  /** The unit's states, or null when systemd has no such unit loaded. */
  systemdUnitState(bus: SystemdBusTarget, name: string): { activeState: string; subState: string; loadState: string } | null;
  /** A string property of the manager (Version, ControlGroup). */
  systemdManagerProperty(bus: SystemdBusTarget, name: string): string;
}

/** One of our addons, by path; `what` names it in the error ("native addon", "systemd addon"). */
function loadAddon<T>(file: string, what: string): T {
  const mod = { exports: {} as T };
  try {
    // process.dlopen instead of require: the esbuild bundle must not try to resolve the path.
    process.dlopen(mod, file);
  } catch (e) {
    throw new Error(`cannot load the tsrun ${what} ${file} (build it with \`npx node-gyp rebuild\`): ${(e as Error).message}`);
  }
  return mod.exports;
}

let loadedSystemd: SystemdAddon | null = null;

export function systemdAddonPath(): string {
  return process.env.TSRUN_SYSTEMD_NATIVE || path.join(repoRoot(), 'build', 'Release', 'tsrun_systemd.node');
}

/** The systemd addon, loaded on first use. */
export function systemdNative(): SystemdAddon {
  if (loadedSystemd) return loadedSystemd;
  loadedSystemd = loadAddon<SystemdAddon>(systemdAddonPath(), 'systemd addon');
  return loadedSystemd;
}

let loaded: NativeAddon | null = null;

function repoRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`tsrun native addon: no package.json above ${__dirname}`);
  }
}

/** The addon path that native() loads. */
export function nativeAddonPath(): string {
  return process.env.TSRUN_NATIVE || path.join(repoRoot(), 'build', 'Release', 'tsrun_native.node');
}

/** The addon, loaded on first use. */
export function native(): NativeAddon {
  if (loaded) return loaded;
  loaded = loadAddon<NativeAddon>(nativeAddonPath(), 'native addon');
  return loaded;
}


/**
 * For src/cgroups/v2/devices.ts, which looks this export up by name (without loading the addon at import)
 * to find the eBPF device filter loader.
 */
export function loadDeviceFilter(cgroupDirPath: string, rules: NativeDeviceRule[]): void {
  native().loadDeviceFilter(cgroupDirPath, rules);
}
