// The per-case context: bundles, runtime invocation, assertions and cleanup.
// Plain Node built-ins only, so the suite runs against any runtime without a build step.

import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { baseConfig } from './config.mjs';

export class Failure extends Error {}
export class Skip extends Error {}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Build the list of busybox applets once; every bundle gets its own rootfs made of a hard link
// (or copy) of busybox plus symlinks, because cases write marker files into their rootfs and
// must not see each other's.
export function probeBusybox(busybox = '/bin/busybox') {
  if (!fs.existsSync(busybox)) throw new Error(`${busybox} not found (install busybox-static)`);
  const r = spawnSync(busybox, ['--list'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${busybox} --list failed: ${r.stderr}`);
  const applets = r.stdout.split('\n').map((s) => s.trim()).filter((s) => s && s !== 'busybox' && !s.includes('/'));
  return { busybox, applets };
}

export function makeRootfs(dir, bb) {
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root', 'mnt', 'var', 'home']) {
    fs.mkdirSync(path.join(dir, d), { recursive: true });
  }
  fs.chmodSync(path.join(dir, 'tmp'), 0o1777);
  const target = path.join(dir, 'bin', 'busybox');
  try {
    fs.linkSync(bb.busybox, target);
  } catch {
    fs.copyFileSync(bb.busybox, target);
    fs.chmodSync(target, 0o755);
  }
  for (const a of bb.applets) fs.symlinkSync('busybox', path.join(dir, 'bin', a));
  fs.writeFileSync(path.join(dir, 'etc', 'passwd'),
    'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  fs.writeFileSync(path.join(dir, 'etc', 'group'), 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n');
}

function readMaybe(p) {
  try { return fs.readFileSync(p, 'utf8'); } catch { return ''; }
}

function lastLine(s) {
  const lines = s.trim().split('\n').filter(Boolean);
  return lines.length ? lines[lines.length - 1].slice(0, 200) : '';
}

export class Ctx {
  constructor({ runtime, dir, bb }) {
    this.runtime = runtime;
    this.dir = dir;
    this.bb = bb;
    this.root = path.join(dir, 'state');
    this.logs = path.join(dir, 'logs');
    fs.mkdirSync(this.root, { recursive: true });
    fs.mkdirSync(this.logs, { recursive: true });
    this.ids = new Set();
    this.seq = 0;
    this.nbundle = 0;
    this.nid = 0;
  }

  // A fresh bundle: rootfs + config.json. `args` sets process.args; `mutate(cfg, bundleDir)`
  // changes anything else (it may return a replacement object, or a string written verbatim).
  bundle({ args, mutate, name } = {}) {
    const b = path.join(this.dir, name ?? `bundle${this.nbundle++}`);
    fs.mkdirSync(b, { recursive: true });
    makeRootfs(path.join(b, 'rootfs'), this.bb);
    let cfg = baseConfig();
    if (args) cfg.process.args = args;
    if (mutate) {
      const r = mutate(cfg, b);
      if (r !== undefined) cfg = r;
    }
    fs.writeFileSync(path.join(b, 'config.json'), typeof cfg === 'string' ? cfg : JSON.stringify(cfg, null, 2));
    return b;
  }

  rootfs(bundle, ...p) {
    return path.join(bundle, 'rootfs', ...p);
  }

  // Run the runtime with our own --root. stdout/stderr go to files, never pipes: a created
  // container inherits them and would keep a pipe open long after the runtime exits.
  rt(args, { cwd, timeout = 30000 } = {}) {
    const k = this.seq++;
    const outPath = path.join(this.logs, `${k}.out`);
    const errPath = path.join(this.logs, `${k}.err`);
    const out = fs.openSync(outPath, 'w');
    const err = fs.openSync(errPath, 'w');
    let r;
    try {
      r = spawnSync(this.runtime, ['--root', this.root, ...args], {
        stdio: ['ignore', out, err], cwd: cwd ?? this.dir, timeout, killSignal: 'SIGKILL',
      });
    } finally {
      fs.closeSync(out);
      fs.closeSync(err);
    }
    const res = {
      cmd: args.join(' '),
      code: r.status,
      signal: r.signal,
      timedOut: r.error?.code === 'ETIMEDOUT',
      stdout: readMaybe(outPath),
      stderr: readMaybe(errPath),
      outPath,
      // The container's own output, for create/start: it keeps writing after we returned.
      readOut: () => readMaybe(outPath),
    };
    if (r.error && !res.timedOut) throw new Error(`cannot run ${this.runtime}: ${r.error.message}`);
    return res;
  }

  id(tag = 'ct') {
    const id = `${tag}-${this.nid++}-${process.pid}`;
    this.ids.add(id);
    return id;
  }

  // Same directory/file (device + inode): works across mount namespaces, unlike readlink.
  sameFile(a, b) {
    try {
      const x = fs.statSync(a);
      const y = fs.statSync(b);
      return x.dev === y.dev && x.ino === y.ino;
    } catch {
      return false;
    }
  }

  // ---- assertions ----
  expect(cond, msg) {
    if (!cond) throw new Failure(msg);
  }

  eq(actual, expected, what) {
    const a = JSON.stringify(actual);
    const e = JSON.stringify(expected);
    if (a !== e) throw new Failure(`${what}: expected ${e}, got ${a}`);
  }

  ok(res, what = res.cmd) {
    if (res.timedOut) throw new Failure(`${what}: timed out`);
    if (res.code !== 0) {
      throw new Failure(`${what}: exit ${res.code ?? res.signal}${lastLine(res.stderr) ? `: ${lastLine(res.stderr)}` : ''}`);
    }
    return res;
  }

  fails(res, what = res.cmd) {
    if (res.timedOut) throw new Failure(`${what}: timed out (expected an error)`);
    if (res.code === 0) throw new Failure(`${what}: succeeded, expected an error`);
    return res;
  }

  skip(reason) {
    throw new Skip(reason);
  }

  // ---- operations ----
  create(id, bundle, opts = {}) {
    this.ids.add(id);
    return this.ok(this.rt(['create', '--bundle', bundle, id], opts), `create ${id}`);
  }

  tryCreate(id, bundle, opts = {}) {
    this.ids.add(id);
    return this.rt(['create', '--bundle', bundle, id], opts);
  }

  start(id) {
    return this.ok(this.rt(['start', id]), `start ${id}`);
  }

  // `run` is not a spec operation but every runc-compatible runtime has it: foreground,
  // stdio passed through, exit status of the process becomes the runtime's.
  run(id, bundle, opts = {}) {
    this.ids.add(id);
    return this.rt(['run', '--bundle', bundle, id], opts);
  }

  // Run a one-shot container and return its stdout; fail if it does not exit 0.
  output(args, mutate) {
    const b = this.bundle({ args, mutate });
    const r = this.run(this.id('run'), b);
    this.ok(r, `run ${JSON.stringify(args)}`);
    return r.stdout;
  }

  state(id) {
    const r = this.ok(this.rt(['state', id]), `state ${id}`);
    try {
      return JSON.parse(r.stdout);
    } catch {
      throw new Failure(`state ${id}: output is not JSON: ${r.stdout.slice(0, 200)}`);
    }
  }

  list() {
    const r = this.ok(this.rt(['list', '-q']), 'list -q');
    return r.stdout.split('\n').map((s) => s.trim()).filter(Boolean);
  }

  // "no container was left behind": state of the id fails and list shows nothing.
  expectNoContainer(id, why) {
    const s = this.rt(['state', id]);
    this.expect(s.code !== 0, `${why}: state ${id} still succeeds (status ${(() => { try { return JSON.parse(s.stdout).status; } catch { return '?'; } })()})`);
    const l = this.list();
    this.expect(l.length === 0, `${why}: list still shows ${l.join(',')}`);
  }

  async waitFor(fn, what, timeout = 5000) {
    const end = Date.now() + timeout;
    for (;;) {
      const v = fn();
      if (v) return v;
      if (Date.now() > end) throw new Failure(`timed out after ${timeout}ms waiting for ${what}`);
      await sleep(25);
    }
  }

  async waitStatus(id, status, timeout = 5000) {
    let last;
    await this.waitFor(() => {
      const r = this.rt(['state', id]);
      if (r.code !== 0) return false;
      try { last = JSON.parse(r.stdout).status; } catch { return false; }
      return last === status;
    }, `status "${status}" of ${id} (last: ${last})`, timeout);
  }

  // ---- cleanup: runs even when the case failed ----
  cleanup() {
    const problems = [];
    let ids = new Set(this.ids);
    try {
      const r = this.rt(['list', '-q'], { timeout: 10000 });
      if (r.code === 0) for (const l of r.stdout.split('\n')) if (l.trim()) ids.add(l.trim());
    } catch { /* runtime may be broken; fall through to the manual steps */ }
    for (const id of ids) {
      let pid;
      try {
        const s = this.rt(['state', id], { timeout: 10000 });
        if (s.code === 0) pid = JSON.parse(s.stdout).pid;
      } catch { /* ignore */ }
      this.rt(['kill', id, 'KILL'], { timeout: 10000 });
      const d = this.rt(['delete', '--force', id], { timeout: 15000 });
      const still = this.rt(['state', id], { timeout: 10000 });
      if (still.code === 0) problems.push(`${id} not deleted: ${lastLine(d.stderr)}`);
      // A process the runtime failed to kill: only touch it if its root is inside our dir
      // (pids are reused; never kill somebody else's process).
      if (pid > 0) {
        const ours = fs.readdirSync(this.dir).some((d) => this.sameFile(`/proc/${pid}/root/`, path.join(this.dir, d, 'rootfs')));
        if (ours) {
          try { process.kill(pid, 'SIGKILL'); } catch { /* raced with exit */ }
          problems.push(`${id}: process ${pid} survived delete --force`);
        }
      }
    }
    // Mounts leaked into the host namespace under our dir: unmount before removing anything,
    // so a leaked bind mount can never make rm delete files outside the case dir.
    const leaked = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
      .map((l) => l.split(' ')[4]).filter((m) => m && (m === this.dir || m.startsWith(this.dir + '/')))
      .sort((a, b) => b.length - a.length);
    for (const m of leaked) {
      spawnSync('umount', ['-l', m]);
      problems.push(`mount leaked on host: ${m}`);
    }
    const stillMounted = fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${this.dir}`);
    if (stillMounted) problems.push(`mounts under ${this.dir} remain; not removing it`);
    else fs.rmSync(this.dir, { recursive: true, force: true });
    return problems;
  }
}
