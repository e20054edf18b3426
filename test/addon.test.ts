// The N-API addon (addon/native, loaded through src/native/addon.ts): each function against the
// real kernel, in this process and in child processes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { native, nativeAddonPath, type NativeDeviceRule } from '../src/native/addon';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-addon-'));
const n = native();

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as NodeJS.ErrnoException).code;
  }
  return undefined;
}

test('loads from <repo root>/build/Release, is cached, and errors carry op, strerror and code', () => {
  assert.is(nativeAddonPath(), path.resolve(__dirname, '../build/Release/tsrun_native.node'));
  assert.is(native(), n);
  try {
    n.flock(987654, true, true);
    assert.unreachable('flock on a closed fd');
  } catch (e) {
    assert.is((e as Error).message, 'flock: Bad file descriptor');
    assert.is((e as NodeJS.ErrnoException).code, 'EBADF');
    assert.is((e as NodeJS.ErrnoException).errno, 9);
  }
  assert.throws(() => (n.flock as unknown as (x: string) => void)('3'), /fd must be a number/);
  assert.throws(() => n.mkfifo('a\0b', 0o600), /path must not contain NUL bytes/);
});

test('TSRUN_NATIVE overrides the path (checked in a fresh process)', () => {
  const r = spawnSync(process.execPath, ['-r', 'esbuild-register', '-e', "try { require('./src/native/addon').native() } catch (e) { console.log(e.message) }"], {
    cwd: path.resolve(__dirname, '..'),
    env: { ...process.env, TSRUN_NATIVE: '/nonexistent/x.node' },
    encoding: 'utf8',
  });
  assert.match(r.stdout, /^cannot load the tsrun native addon \/nonexistent\/x\.node/);
});

test('flock: two open file descriptions contend; shared locks coexist; funlock releases', () => {
  const f = path.join(tmp, 'lock');
  fs.writeFileSync(f, '');
  const a = fs.openSync(f, 'r');
  const b = fs.openSync(f, 'r');
  try {
    n.flock(a, true, true);
    assert.is(code(() => n.flock(b, true, true)), 'EAGAIN');
    assert.is(code(() => n.flock(b, false, true)), 'EAGAIN');
    n.funlock(a);
    n.flock(b, true, true);
    n.funlock(b);
    n.flock(a, false, true);
    n.flock(b, false, true); // two shared locks
    assert.is(code(() => n.flock(fs.openSync(f, 'r'), true, true)), 'EAGAIN');
  } finally {
    fs.closeSync(a);
    fs.closeSync(b);
  }
});

test('flock: a lock held by another process blocks us until it exits', async () => {
  const f = path.join(tmp, 'lock2');
  fs.writeFileSync(f, '');
  // -o: the lock stays with flock itself (not inherited by the command); its own process group so
  // the whole tree can be killed.
  const child = spawn('flock', ['-o', '-x', f, 'sh', '-c', 'echo held; exec sleep 30'], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  await new Promise<void>((res) => child.stdout!.once('data', () => res()));
  const fd = fs.openSync(f, 'r');
  try {
    assert.is(code(() => n.flock(fd, false, true)), 'EAGAIN');
    const exited = new Promise((res) => child.once('exit', res));
    process.kill(-child.pid!, 'SIGKILL');
    await exited;
    n.flock(fd, true, true);
  } finally {
    fs.closeSync(fd);
  }
});

test('mkfifo: a fifo with the mode (umask applied); EEXIST the second time', () => {
  const p = path.join(tmp, 'fifo');
  const old = process.umask(0o022);
  try {
    n.mkfifo(p, 0o622);
  } finally {
    process.umask(old);
  }
  const st = fs.statSync(p);
  assert.ok(st.isFIFO());
  assert.is(st.mode & 0o777, 0o600);
  assert.is(code(() => n.mkfifo(p, 0o622)), 'EEXIST');
  try {
    n.mkfifo(p, 0o622);
  } catch (e) {
    assert.is((e as Error).message, `mkfifo ${p}: File exists`);
  }
});

test('socketpair + sendFd/recvFd: an fd and its data cross, exactly one fd, CLOEXEC', () => {
  const [s0, s1] = n.socketpair();
  try {
    const flags = spawnSync('cat', [`/proc/${process.pid}/fdinfo/${s0}`], { encoding: 'utf8' }).stdout;
    assert.ok((parseInt(/flags:\s+(\d+)/.exec(flags)![1], 8) & 0o2000000) !== 0, 'socket is O_CLOEXEC');
    const file = path.join(tmp, 'passed');
    fs.writeFileSync(file, 'through the socket');
    const fd = fs.openSync(file, 'r');
    n.sendFd(s0, fd, 'pty name /dev/pts/7');
    fs.closeSync(fd);
    const got = n.recvFd(s1);
    assert.is(got.data, 'pty name /dev/pts/7');
    assert.is.not(got.fd, fd === got.fd ? -1 : fd - 100000); // any valid number
    assert.is(fs.readFileSync(got.fd, 'utf8'), 'through the socket');
    const info = fs.readFileSync(`/proc/self/fdinfo/${got.fd}`, 'utf8');
    assert.ok((parseInt(/flags:\s+(\d+)/.exec(info)![1], 8) & 0o2000000) !== 0, 'received fd is O_CLOEXEC');
    fs.closeSync(got.fd);
    // Empty data still works (one NUL byte on the wire).
    const fd2 = fs.openSync(file, 'r');
    n.sendFd(s0, fd2, '');
    fs.closeSync(fd2);
    const got2 = n.recvFd(s1);
    assert.is(got2.data, '');
    fs.closeSync(got2.fd);
    // Data without an fd is refused.
    fs.writeSync(s0, 'no fd here');
    assert.is(code(() => n.recvFd(s1)), 'ENOMSG');
    // A large payload (ContainerProcessState with annotations) arrives whole.
    const big = 'x'.repeat(30000);
    const fd3 = fs.openSync(file, 'r');
    n.sendFd(s0, fd3, big);
    fs.closeSync(fd3);
    const got3 = n.recvFd(s1);
    assert.is(got3.data.length, 30000);
    fs.closeSync(got3.fd);
  } finally {
    fs.closeSync(s0);
  }
  // Peer closed: EOF is an error, not an empty success.
  assert.is(code(() => n.recvFd(s1)), 'ENOMSG');
  fs.closeSync(s1);
  assert.is(code(() => n.sendFd(987654, 0, 'x')), 'EBADF');
});

test('pidfd: open, signal, ESRCH for a gone process', async () => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((res) => child.once('exit', (_c, s) => res(s)));
  const pidfd = n.pidfdOpen(child.pid!);
  try {
    n.pidfdSendSignal(pidfd, 15);
    assert.is(await exited, 'SIGTERM');
    // The pidfd still refers to the (now reaped) process: no signal reaches a recycled pid.
    assert.is(code(() => n.pidfdSendSignal(pidfd, 15)), 'ESRCH');
  } finally {
    fs.closeSync(pidfd);
  }
  assert.is(code(() => n.pidfdOpen(child.pid!)), 'ESRCH');
  assert.throws(() => n.pidfdOpen(0), /pid must be positive/);
});

// ---- cgroup v2 device filter --------------------------------------------------------------------

function v2Root(): string | null {
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const dash = f.indexOf('-');
    if (dash > 0 && f[dash + 1] === 'cgroup2') return f[4];
  }
  return null;
}

const deny = (): NativeDeviceRule => ({ allow: false, type: 'a', major: -1, minor: -1, access: 'rwm' });
const cdev = (major: number, minor: number, access: string, allow = true): NativeDeviceRule => ({ allow, type: 'c', major, minor, access });

/** Runs `script` in a shell moved into the cgroup first; returns its stdout+stderr. */
function inCgroup(dir: string, script: string): string {
  const r = spawnSync('sh', ['-c', `echo $$ > ${dir}/cgroup.procs && exec sh -c '${script}' 2>&1`], { encoding: 'utf8' });
  return r.stdout + r.stderr;
}
// Never through /dev/null itself (2>/dev/null would be denied too): stderr closed, reads captured.
const probe = 'for d in null zero; do (printf x > /dev/$d) 2>&- && echo w-$d-ok || echo w-$d-no; v=$(head -c1 /dev/$d 2>&-) && echo r-$d-ok || echo r-$d-no; done';

test('waitReadable: a pidfd wakes it when its process exits, the timeout otherwise; a regular file is refused', async () => {
  const child = spawn('sleep', ['0.2']);
  const pidfd = n.pidfdOpen(child.pid!);
  const t = Date.now();
  assert.is(await new Promise<boolean>((resolve) => n.waitReadable(pidfd, 5000, resolve)), true);
  assert.ok(Date.now() - t < 3000, 'woken at the exit, not at the timeout');
  fs.closeSync(pidfd);
  const long = spawn('sleep', ['5']);
  const pidfd2 = n.pidfdOpen(long.pid!);
  assert.is(await new Promise<boolean>((resolve) => n.waitReadable(pidfd2, 50, resolve)), false);
  fs.closeSync(pidfd2);
  long.kill();
  const file = fs.openSync(__filename, 'r');
  assert.throws(() => n.waitReadable(file, 10, () => {}), /operation not permitted/i);
  fs.closeSync(file);
});

test('flockWait: gets the lock once its holder lets go; ETIMEDOUT, and a late lock goes with the fd', async () => {
  const dir = fs.mkdtempSync(path.join(tmp, 'lockwait-'));
  const holder = fs.openSync(dir, 'r');
  n.flock(holder, true, true);
  const waiter = fs.openSync(dir, 'r');
  setTimeout(() => fs.closeSync(holder), 100);
  assert.is(await new Promise((resolve) => n.flockWait(waiter, true, 5000, resolve)), null);
  const late = fs.openSync(dir, 'r');
  const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => n.flockWait(late, true, 50, resolve));
  assert.is(err?.code, 'ETIMEDOUT');
  fs.closeSync(late);
  fs.closeSync(waiter); // the timed-out thread now gets the lock, and lets go of it at once
  const again = fs.openSync(dir, 'r');
  await new Promise<void>((resolve, reject) => n.flockWait(again, true, 5000, (e) => (e ? reject(e) : resolve())));
  fs.closeSync(again);
});

test('writeFiles: in order, truncating, one write each; never creates a file; stops at the first failure, which it names by index', async () => {
  const a = path.join(tmp, 'wf-a');
  const b = path.join(tmp, 'wf-b');
  fs.writeFileSync(a, 'a much longer old value');
  fs.writeFileSync(b, 'old');
  await n.writeFiles([[a, '1'], [b, '2'], [a, '3']]);
  assert.is(fs.readFileSync(a, 'utf8'), '3', 'truncated, the later write wins');
  assert.is(fs.readFileSync(b, 'utf8'), '2');
  const missing = path.join(tmp, 'wf-missing');
  const err = await n.writeFiles([[a, '4'], [missing, '5'], [b, '6']]).then(
    () => null,
    (e) => e as NodeJS.ErrnoException & { index?: number },
  );
  assert.ok(err, 'a missing file is an error');
  assert.is(err!.code, 'ENOENT');
  assert.is(err!.index, 1);
  assert.not.ok(fs.existsSync(missing), 'not created');
  assert.is(fs.readFileSync(a, 'utf8'), '4', 'before the failure: written');
  assert.is(fs.readFileSync(b, 'utf8'), '2', 'after the failure: untouched');
  assert.throws(() => n.writeFiles([[a, 1 as unknown as string]]), /files must be an array of \[path, value\]/);
});

test('spawnProcess + pidfdReap: fds in place, blocking stdio, own session, empty env, exit status and signal', async () => {
  const out = path.join(tmp, 'spawn.out');
  const fd = fs.openSync(out, 'w');
  const [r, w] = n.pipe();
  // fd 3 of the child is our pipe's write end: its number differs from ours.
  const script = 'echo "$$ $(ps -o sid= -p $$) ${HOME-unset}"; echo three >&3; exit 7';
  const pid = await n.spawnProcess('/bin/sh', ['-c', script], [0, fd, fd, w]);
  fs.closeSync(w);
  const pidfd = n.pidfdOpen(pid);
  await new Promise((resolve) => n.waitReadable(pidfd, 5000, resolve));
  assert.equal(n.pidfdReap(pidfd), { code: 7, signal: null });
  fs.closeSync(pidfd);
  const buf = Buffer.alloc(100);
  assert.is(buf.toString('utf8', 0, fs.readSync(r, buf)), 'three\n');
  fs.closeSync(r);
  fs.closeSync(fd);
  const [self, sid, home] = fs.readFileSync(out, 'utf8').trim().split(/\s+/);
  assert.is(sid, self, 'its own session');
  assert.is(home, 'unset', 'empty environment');
  const sleeper = await n.spawnProcess('/bin/sleep', ['5'], [0, 1, 2]);
  const sfd = n.pidfdOpen(sleeper);
  assert.is(n.pidfdReap(sfd), null, 'still running');
  n.pidfdSendSignal(sfd, 9);
  await new Promise((resolve) => n.waitReadable(sfd, 5000, resolve));
  assert.equal(n.pidfdReap(sfd), { code: null, signal: 9 });
  fs.closeSync(sfd);
  await n.spawnProcess('/nonexistent', [], [0, 1, 2]).then(
    () => assert.unreachable('spawn of a missing file'),
    (e) => assert.is((e as NodeJS.ErrnoException).code, 'ENOENT'),
  );
  // Arguments are checked before anything is queued: a closed fd throws at once.
  assert.is(code(() => n.spawnProcess('/bin/true', [], [0, 1, 2, 999])), 'EBADF');
});

test('threadSchedTimes: this thread\'s CPU grows by a busy stretch and not by a sleep; the wait for a CPU is counted apart', async () => {
  const t0 = n.threadSchedTimes();
  const until = performance.now() + 30;
  while (performance.now() < until);
  const t1 = n.threadSchedTimes();
  // The stretch was 30 ms of wall clock: on the CPU for most of it, unless descheduled (waited).
  // Not all of it: in a VM the host's steal time is neither (one run here: 23 + 1.9 of 30 ms).
  assert.ok(t1.cpu - t0.cpu + (t1.waited - t0.waited) > 15, `busy: cpu +${(t1.cpu - t0.cpu).toFixed(2)}, waited +${(t1.waited - t0.waited).toFixed(2)}`);
  assert.ok(t1.waited >= t0.waited);
  const s0 = n.threadSchedTimes();
  spawnSync('sleep', ['0.05']);
  const s1 = n.threadSchedTimes();
  // 50 ms blocked in a call is neither CPU nor waiting for one (the spawn itself costs a little).
  assert.ok(s1.cpu - s0.cpu < 20, `asleep: cpu +${(s1.cpu - s0.cpu).toFixed(2)}`);
  assert.ok(s1.waited - s0.waited < 20, `asleep: waited +${(s1.waited - s0.waited).toFixed(2)}`);
});

test('loadDeviceFilter on a real cgroup v2 directory: allow-list, access bits, deny-list, replace', () => {
  const root = v2Root();
  if (!root) {
    console.log('  SKIPPED: no cgroup2 mount on this host; loadDeviceFilter not exercised');
    return;
  }
  const dir = path.join(root, `tsrun-addon-test-${process.pid}`);
  fs.mkdirSync(dir);
  try {
    const lines = () => inCgroup(dir, probe).trim().split('\n');
    // Without a program everything works (the test can fail).
    assert.equal(lines(), ['w-null-ok', 'r-null-ok', 'w-zero-ok', 'r-zero-ok']);
    n.loadDeviceFilter(dir, [deny(), cdev(1, 3, 'rwm')]);
    assert.is(n.deviceFilterCount(dir), 1);
    assert.equal(lines(), ['w-null-ok', 'r-null-ok', 'w-zero-no', 'r-zero-no']);
    // Replacing: still exactly one program, the new rules apply (/dev/zero read-only).
    n.loadDeviceFilter(dir, [deny(), cdev(1, 3, 'rwm'), cdev(1, 5, 'r')]);
    assert.is(n.deviceFilterCount(dir), 1);
    assert.equal(lines(), ['w-null-ok', 'r-null-ok', 'w-zero-no', 'r-zero-ok']);
    // Wildcard minor: every 1:* char device, read/write only.
    n.loadDeviceFilter(dir, [deny(), cdev(1, -1, 'rw')]);
    assert.equal(lines(), ['w-null-ok', 'r-null-ok', 'w-zero-ok', 'r-zero-ok']);
    // Block devices do not match a char rule.
    n.loadDeviceFilter(dir, [deny(), { allow: true, type: 'b', major: 1, minor: -1, access: 'rwm' }]);
    assert.equal(lines(), ['w-null-no', 'r-null-no', 'w-zero-no', 'r-zero-no']);
  } finally {
    for (let i = 0; i < 50 && fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').trim(); i++) spawnSync('sleep', ['0.05']);
    fs.rmdirSync(dir);
  }
});

test('loadDeviceFilter: rule semantics of runc (deny-list mode, hole punching refused, bad rules)', () => {
  const root = v2Root();
  if (!root) {
    console.log('  SKIPPED: no cgroup2 mount on this host');
    return;
  }
  const dir = path.join(root, `tsrun-addon-test2-${process.pid}`);
  fs.mkdirSync(dir);
  try {
    const lines = () => inCgroup(dir, probe).trim().split('\n');
    // Deny-list: allow everything, then deny /dev/zero writes only.
    n.loadDeviceFilter(dir, [{ allow: true, type: 'a', major: -1, minor: -1, access: 'rwm' }, cdev(1, 5, 'w', false)]);
    assert.equal(lines(), ['w-null-ok', 'r-null-ok', 'w-zero-no', 'r-zero-ok']);
    // Removing part of a wildcard exception would silently do nothing in cgroup v1: refused.
    assert.throws(() => n.loadDeviceFilter(dir, [deny(), cdev(1, -1, 'rw'), cdev(1, 3, 'w', false)]), /^device rule c 1:3 w cannot punch a hole in the wildcard rule c 1:\* rw$/);
    // The failed call left the previous program in place.
    assert.is(n.deviceFilterCount(dir), 1);
    assert.equal(lines(), ['w-null-ok', 'r-null-ok', 'w-zero-no', 'r-zero-ok']);
    // Exact rule removed by a later deny: the device is denied again.
    n.loadDeviceFilter(dir, [deny(), cdev(1, 3, 'rwm'), cdev(1, 5, 'rwm'), cdev(1, 3, 'rwm', false)]);
    assert.equal(lines(), ['w-null-no', 'r-null-no', 'w-zero-ok', 'r-zero-ok']);
    // The rule list tsrun actually sends (src/cgroups/devices.ts order: spec rules, then defaults).
    n.loadDeviceFilter(dir, [deny(), { allow: true, type: 'c', major: -1, minor: -1, access: 'm' }, { allow: true, type: 'b', major: -1, minor: -1, access: 'm' }, cdev(1, 3, 'rwm'), cdev(1, 5, 'rwm')]);
    assert.equal(lines(), ['w-null-ok', 'r-null-ok', 'w-zero-ok', 'r-zero-ok']);
    assert.throws(() => n.loadDeviceFilter(dir, [{ ...deny(), type: 'x' as 'a' }]), /rules\[0\]\.type must be 'a', 'b' or 'c'/);
    assert.throws(() => n.loadDeviceFilter(dir, [cdev(1, 3, 'rwx')]), /rules\[0\]\.access must be a combination of r, w and m/);
    assert.throws(() => n.loadDeviceFilter(path.join(dir, 'nope'), [deny()]), /^open .*nope: No such file or directory$/);
  } finally {
    for (let i = 0; i < 50 && fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').trim(); i++) spawnSync('sleep', ['0.05']);
    fs.rmdirSync(dir);
  }
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
test.run();
