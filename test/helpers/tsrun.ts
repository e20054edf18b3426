/**
 * Running bin/tsrun against throw-away bundles, each test with its own --root, and proving that
 * nothing is left behind: no state dir, no cgroup, no host mount, no process.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import { exampleSpec } from '../../src/cli/commands/spec';
import { copyRootfs } from './rootfs';

export const REPO = path.resolve(__dirname, '../..');
export const TSRUN = process.env.RUNTIME ?? process.env.TSRUN_BIN ?? path.join(REPO, 'bin/tsrun');

/**
 * A copy of bin/tsrun's front door in `dir` with no engine CLI beside it: only the calls the front
 * door answers itself succeed; the others fail with exit 127 ("exec …/.tsrun-cli"). What tells
 * which path served a call.
 */
export function lonelyFront(dir: string): string {
  const bin = path.join(dir, 'lonely/bin');
  fs.mkdirSync(bin, { recursive: true });
  fs.copyFileSync(path.join(REPO, 'bin/tsrun'), path.join(bin, 'tsrun'));
  fs.chmodSync(path.join(bin, 'tsrun'), 0o755);
  fs.mkdirSync(path.join(dir, 'lonely/dist/cli'), { recursive: true });
  fs.copyFileSync(path.join(REPO, 'dist/cli/version.txt'), path.join(dir, 'lonely/dist/cli/version.txt'));
  return path.join(bin, 'tsrun');
}

/**
 * addon/init/tsrun-init made as its sources now are (make does nothing when it is up to date), for
 * the tests that drive the init directly; NODE: this Node 22 regenerates the plan code if stale.
 */
export function makeInit(): void {
  const r = spawnSync('make', ['-s', '-C', path.join(REPO, 'addon/init'), `NODE=${process.execPath}`], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('make -C addon/init failed');
}

export interface Result {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export type Config = Record<string, any>;

/**
 * `tsrun spec`'s example (runc's) with what tests need: no terminal, `args`, a marker in the
 * environment (to find the container's processes), a writable root, no cgroup mount and no
 * cgroup namespace (tests that want them add them).
 */
export function baseConfig(args: string[], marker: string, rootlessIds?: { uid: number; gid: number }): Config {
  const c = exampleSpec(!!rootlessIds, rootlessIds) as Config;
  c.process.terminal = false;
  c.process.args = args;
  c.process.env = [...c.process.env.filter((e: string) => !e.startsWith('TERM=')), `TSRUN_TEST_MARKER=${marker}`];
  c.root.readonly = false;
  c.hostname = 'tsrun-test';
  c.mounts = c.mounts.filter((m: { type: string }) => m.type !== 'cgroup');
  c.linux.namespaces = c.linux.namespaces.filter((n: { type: string }) => n.type !== 'cgroup');
  delete c.linux.resources;
  return c;
}

/**
 * A --console-socket receiver for `python3 -c` (python3 has socket.recv_fds): listens on argv[1],
 * runs argv[2:], takes the pty master from the first connection (20 s to come) and prints
 * `fds <n> name <message>`, waits for the command, then prints what was written on the pty
 * (without \r) and exits with the command's status.
 */
export const CONSOLE_RECEIVER = `
import socket, os, sys, subprocess
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(sys.argv[1]); srv.listen(1); srv.settimeout(20)
p = subprocess.Popen(sys.argv[2:])
try:
    conn, _ = srv.accept()
except socket.timeout:
    sys.exit(p.wait() or 1)
msg, fds, flags, addr = socket.recv_fds(conn, 1024, 4)
print("fds", len(fds), "name", msg.decode(errors="replace"), flush=True)
rc = p.wait()
out = b""
while True:
    try:
        chunk = os.read(fds[0], 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
sys.stdout.write(out.decode(errors="replace").replace("\\r", ""))
sys.exit(rc)
`;

let counter = 0;

/** The unprivileged user rootless sandboxes run tsrun as (scripts/rootless-user.sh). */
export interface RootlessUser {
  name: string;
  uid: number;
  gid: number;
}

let rootlessUserCache: RootlessUser | null = null;

/** Creates the test user once per process (idempotent script) and returns it. */
export function rootlessUser(): RootlessUser {
  if (rootlessUserCache) return rootlessUserCache;
  const r = spawnSync(path.join(REPO, 'scripts/rootless-user.sh'), [], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`scripts/rootless-user.sh: ${r.stderr || r.error?.message}`);
  const [name, uid, gid] = r.stdout.trim().split(/\s+/);
  rootlessUserCache = { name, uid: Number(uid), gid: Number(gid) };
  return rootlessUserCache;
}

/** uvu's assert.throws for a promise: `fn` must reject with a message matching `re`. */
export async function assertRejects(fn: () => Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (!re.test((e as Error).message)) throw new Error(`rejected with ${JSON.stringify((e as Error).message)}, not ${re}`);
    return;
  }
  throw new Error(`did not reject (expected ${re})`);
}

/** The first of the 65536 subordinate ids scripts/rootless-user.sh grants the test user. */
export const ROOTLESS_SUBID = Number(process.env.TSRUN_ROOTLESS_SUBID ?? 1410000000);

/** TSRUN_TEST_ROOTLESS=1: every Sandbox is rootless (e.g. to repeat test/security as the user). */
export const ROOTLESS_BY_ENV = process.env.TSRUN_TEST_ROOTLESS === '1';

export class Sandbox {
  readonly dir: string;
  /** State root: <dir>/state, or rootless $XDG_RUNTIME_DIR/tsrun (tsrun's default, no --root). */
  readonly root: string;
  /** Set for a rootless sandbox: tsrun runs as this user, with XDG_RUNTIME_DIR = <dir>/run. */
  readonly user: RootlessUser | null;
  readonly xdg: string;
  readonly bundle: string;
  readonly id: string;
  readonly marker: string;
  config: Config;

  constructor(args: string[] = ['sh', '-c', 'echo hello'], name = 'c', opts: { rootless?: boolean } = {}) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-test-'));
    this.user = opts.rootless ?? ROOTLESS_BY_ENV ? rootlessUser() : null;
    this.xdg = path.join(this.dir, 'run');
    this.root = this.user ? path.join(this.xdg, 'tsrun') : path.join(this.dir, 'state');
    this.bundle = path.join(this.dir, 'bundle');
    this.id = `${name}-${process.pid}-${++counter}`;
    this.marker = `m${process.pid}x${counter}x${Date.now()}`;
    fs.mkdirSync(this.bundle);
    copyRootfs(path.join(this.bundle, 'rootfs'));
    this.config = baseConfig(args, this.marker, this.user ?? undefined);
    if (this.user) {
      // The user's own directory (mkdtemp made it 0700): bundle, rootfs, and XDG_RUNTIME_DIR.
      fs.mkdirSync(this.xdg, { mode: 0o700 });
      this.chownToUser(this.dir);
    }
    this.writeConfig();
  }

  /**
   * Rootless: container uid/gid 0 is the user, 1..65536 the user's subordinate ids (through
   * newuidmap/newgidmap), so that a config may use uid 1000 as it does as root. No-op as root.
   */
  mapSubordinateIds(): void {
    if (!this.user) return;
    this.config.linux.uidMappings = [{ containerID: 0, hostID: this.user.uid, size: 1 }, { containerID: 1, hostID: ROOTLESS_SUBID, size: 65536 }];
    this.config.linux.gidMappings = [{ containerID: 0, hostID: this.user.gid, size: 1 }, { containerID: 1, hostID: ROOTLESS_SUBID, size: 65536 }];
    this.writeConfig();
  }

  /** Rootless: gives a path (recursively) to the sandbox's user. */
  chownToUser(p: string): void {
    if (this.user) execFileSync('chown', ['-hR', `${this.user.uid}:${this.user.gid}`, p]);
  }

  writeConfig(config: Config = this.config): void {
    this.config = config;
    const file = path.join(this.bundle, 'config.json');
    fs.writeFileSync(file, JSON.stringify(config, null, 2));
    if (this.user) fs.chownSync(file, this.user.uid, this.user.gid);
  }

  /** argv and spawn options that run tsrun (with this sandbox's root) as its user. */
  spawnArgs(args: string[]): { argv: string[]; opts: { uid?: number; gid?: number; env: NodeJS.ProcessEnv } } {
    if (!this.user) return { argv: ['--root', this.root, ...args], opts: { env: process.env } };
    // No --root: rootless tsrun keeps its state in $XDG_RUNTIME_DIR/tsrun, as runc does.
    const env = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: this.dir, USER: this.user.name, XDG_RUNTIME_DIR: this.xdg };
    return { argv: args, opts: { uid: this.user.uid, gid: this.user.gid, env } };
  }

  /**
   * Runs tsrun with this sandbox's --root. Its stdout/stderr are files, not pipes: a created or
   * detached container inherits them (as with runc), so a pipe would not see EOF until it exits.
   */
  tsrun(args: string[], opts: { timeout?: number; env?: NodeJS.ProcessEnv } = {}): Result {
    const out = path.join(this.dir, `.out-${process.pid}`);
    const err = path.join(this.dir, `.err-${process.pid}`);
    const outFd = fs.openSync(out, 'w+');
    const errFd = fs.openSync(err, 'w+');
    try {
      const sp = this.spawnArgs(args);
      const r = spawnSync(TSRUN, sp.argv, {
        stdio: ['ignore', outFd, errFd],
        timeout: opts.timeout ?? 30_000,
        uid: sp.opts.uid,
        gid: sp.opts.gid,
        env: opts.env ? { ...opts.env, ...(this.user ? sp.opts.env : {}) } : sp.opts.env,
        cwd: this.dir,
      });
      if (r.error) throw r.error;
      return { status: r.status, signal: r.signal, stdout: fs.readFileSync(out, 'utf8'), stderr: fs.readFileSync(err, 'utf8') };
    } finally {
      fs.closeSync(outFd);
      fs.closeSync(errFd);
      fs.rmSync(out, { force: true });
      fs.rmSync(err, { force: true });
    }
  }

  /** Like tsrun() but asynchronous, for commands that block (run, racing calls). */
  tsrunAsync(args: string[], opts: { timeout?: number } = {}): Promise<Result> {
    const tag = `${process.pid}-${Math.random().toString(36).slice(2)}`;
    const out = path.join(this.dir, `.out-${tag}`);
    const err = path.join(this.dir, `.err-${tag}`);
    const outFd = fs.openSync(out, 'w+');
    const errFd = fs.openSync(err, 'w+');
    return new Promise<Result>((resolve, reject) => {
      const sp = this.spawnArgs(args);
      const child = spawn(TSRUN, sp.argv, { cwd: this.dir, stdio: ['ignore', outFd, errFd], uid: sp.opts.uid, gid: sp.opts.gid, env: sp.opts.env });
      const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeout ?? 30_000);
      child.on('error', reject);
      child.on('exit', (status, signal) => {
        clearTimeout(timer);
        resolve({ status, signal, stdout: fs.readFileSync(out, 'utf8'), stderr: fs.readFileSync(err, 'utf8') });
      });
    }).finally(() => {
      fs.closeSync(outFd);
      fs.closeSync(errFd);
      fs.rmSync(out, { force: true });
      fs.rmSync(err, { force: true });
    });
  }

  state(id = this.id): any {
    const r = this.tsrun(['state', id]);
    if (r.status !== 0) throw new Error(`state ${id}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  /** Everything of this sandbox's containers still on the host, as readable lines. */
  leftovers(): string[] {
    const found: string[] = [];
    if (fs.existsSync(this.root)) {
      for (const name of fs.readdirSync(this.root)) found.push(`state dir ${path.join(this.root, name)}`);
    }
    for (const dir of cgroupDirsNamed(this.id)) found.push(`cgroup ${dir}`);
    for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      if (line.includes(this.dir)) found.push(`mount ${line.split(' ')[4]}`);
    }
    for (const pid of processesWithMarker(this.marker)) found.push(`process ${pid}`);
    return found;
  }

  /** Force-deletes every container of the sandbox, kills stragglers, removes the files. */
  cleanup(): void {
    if (fs.existsSync(this.root)) {
      for (const name of fs.readdirSync(this.root)) {
        if (!name.startsWith('.')) {
          const sp = this.spawnArgs(['delete', '-f', name]);
          spawnSync(TSRUN, sp.argv, { timeout: 20_000, uid: sp.opts.uid, gid: sp.opts.gid, env: sp.opts.env });
        }
      }
    }
    for (const pid of processesWithMarker(this.marker)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    // Whatever is still in the sandbox's cgroups (an init that never exec'd carries no marker).
    for (const dir of cgroupDirsNamed(this.id)) {
      try {
        for (const pid of fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
      } catch {}
    }
    for (const dir of cgroupDirsNamed(this.id).sort((a, b) => b.length - a.length)) {
      try {
        fs.rmdirSync(dir);
      } catch {}
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** cgroup directories (any hierarchy, up to 3 levels deep) whose name contains `name`. */
export function cgroupDirsNamed(name: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const p = path.join(dir, e.name);
      if (e.name.includes(name)) out.push(p);
      if (depth < 3) walk(p, depth + 1);
    }
  };
  walk('/sys/fs/cgroup', 0);
  return out;
}

/** Host pids whose environment carries the marker (the container processes of one sandbox). */
export function processesWithMarker(marker: string): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (fs.readFileSync(`/proc/${name}/environ`, 'latin1').includes(marker)) out.push(Number(name));
    } catch {}
  }
  return out;
}

/** Processes running from a tsrun-init image (a container init that has not exec'd yet). */
export function initProcesses(): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (fs.readlinkSync(`/proc/${name}/exe`).includes('tsrun-init')) out.push(Number(name));
    } catch {}
  }
  return out;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitFor(cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** TEST_GREP=<substring>: run only the tests whose name contains it (debugging one case). */
export function selected(name: string): boolean {
  const grep = process.env.TEST_GREP;
  return !grep || name.includes(grep);
}

export type SandboxBody = (s: Sandbox) => Promise<void> | void;

/**
 * Registers a test (in `suite`, uvu's default one unless given) that gets a fresh Sandbox (its
 * container runs `args`; ids start with `prefix`) and always cleans it up, pass or fail. A name
 * TEST_GREP does not select is not registered, unless `everyName`: for files whose tests must run
 * whatever TEST_GREP says (the cgroup v2 VM sets it for crash.test.ts alone).
 */
export function sandboxTest(name: string, args: string[] | undefined, body: SandboxBody, opts: { prefix?: string; suite?: typeof test; everyName?: boolean } = {}): void {
  if (!opts.everyName && !selected(name)) return;
  (opts.suite ?? test)(name, async () => {
    const s = new Sandbox(args, opts.prefix);
    try {
      await body(s);
    } finally {
      s.cleanup();
    }
  });
}
