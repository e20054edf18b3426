/**
 * Isolation through the whole pipeline (config.json → validation → plan → tsrun-init): namespaces,
 * the root filesystem and hostile paths in it, /dev, the process settings, and what must never
 * reach the container (fds, the runtime's binary, a cwd outside the root).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sandboxTest, CONSOLE_RECEIVER, Sandbox, TSRUN, waitFor } from './helpers/tsrun';

/** Runs the sandbox's container to completion and returns its stdout (asserting success). */
function runOk(s: Sandbox, extra: string[] = []): string {
  const r = s.tsrun(['run', ...extra, '-b', s.bundle, s.id]);
  assert.is(r.stderr, '', 'no error output');
  assert.is(r.status, 0, `exit status (stdout: ${r.stdout})`);
  assert.equal(s.leftovers(), []);
  return r.stdout;
}

const hostNs = (t: string) => fs.readlinkSync(`/proc/self/ns/${t}`);

sandboxTest('no mount namespace: the container shares the runtime\'s, chrooted into its rootfs, nothing mounted', ['sh', '-c', 'cat /marker; exec sleep 100'], async (s) => {
  fs.writeFileSync(path.join(s.bundle, 'rootfs/marker'), 'in-rootfs\n');
  const c = s.config;
  c.linux.namespaces = c.linux.namespaces.filter((n: { type: string }) => n.type !== 'mount');
  const withMounts = structuredClone(c);
  // Everything that would be made in the host's mount namespace is refused, naming it.
  c.mounts = [];
  c.linux.maskedPaths = [];
  c.linux.readonlyPaths = [];
  s.writeConfig(withMounts);
  const refused = s.tsrun(['run', '-d', '-b', s.bundle, s.id]);
  assert.is(refused.status, 1);
  assert.match(refused.stderr, /unable to restrict sys entries without a private MNT namespace|\/mounts needs a mount namespace/);
  assert.equal(s.leftovers(), []);
  s.writeConfig(c);
  const mountsBefore = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').length;
  const r = s.tsrun(['run', '-d', '-b', s.bundle, s.id]);
  assert.is(r.status, 0, r.stderr);
  const pid = s.state().pid;
  assert.is(fs.readlinkSync(`/proc/${pid}/ns/mnt`), hostNs('mnt'), 'same mount namespace as the runtime');
  assert.is(fs.readlinkSync(`/proc/${pid}/root`), fs.realpathSync(path.join(s.bundle, 'rootfs')), 'chrooted into the rootfs');
  assert.is(fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').length, mountsBefore, 'nothing mounted on the host');
  assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
  assert.equal(s.leftovers(), []);
});

sandboxTest('new namespaces differ from the host\'s', ['sh', '-c', 'for n in pid net ipc uts mnt; do readlink /proc/self/ns/$n; done'], (s) => {
  const lines = runOk(s).trim().split('\n');
  const host = ['pid', 'net', 'ipc', 'uts', 'mnt'].map(hostNs);
  for (let i = 0; i < host.length; i++) assert.is.not(lines[i], host[i]);
});

sandboxTest('the user process is pid 1 of its pid namespace', ['sh', '-c', 'echo $$'], (s) => {
  assert.is(runOk(s).trim(), '1');
});

sandboxTest('hostname and domainname are set', ['sh', '-c', 'hostname; cat /proc/sys/kernel/domainname'], (s) => {
  s.config.hostname = 'box1';
  s.config.domainname = 'example.test';
  s.writeConfig();
  assert.is(runOk(s), 'box1\nexample.test\n');
});

sandboxTest('a namespace joined by path is shared', ['readlink', '/proc/self/ns/net'], async (s) => {
  // A process of our own in a network namespace of its own (pid 1 of this sandbox is not ours).
  const holder = spawn('unshare', ['-n', 'sleep', '60'], { stdio: 'ignore' });
  try {
    await waitFor(() => fs.readlinkSync(`/proc/${holder.pid}/ns/net`) !== fs.readlinkSync('/proc/self/ns/net'), 5000, 'unshare');
    s.config.linux.namespaces = s.config.linux.namespaces.map((n: any) => (n.type === 'network' ? { type: 'network', path: `/proc/${holder.pid}/ns/net` } : n));
    s.writeConfig();
    assert.is(runOk(s).trim(), fs.readlinkSync(`/proc/${holder.pid}/ns/net`));
  } finally {
    holder.kill('SIGKILL');
  }
});

sandboxTest('user namespace: mappings are applied', ['sh', '-c', 'cat /proc/self/uid_map /proc/self/gid_map; id -u'], (s) => {
  s.config.linux.namespaces.push({ type: 'user' });
  // The mapped root must be able to reach the bundle (mkdtemp makes the sandbox 0700).
  fs.chmodSync(s.dir, 0o755);
  s.config.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  s.config.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  // sysfs cannot be mounted by a user namespace that does not own the network namespace: the
  // new network namespace is owned by it, so this works as in runc.
  s.writeConfig();
  const out = runOk(s).trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '));
  assert.equal(out, ['0 100000 65536', '0 100000 65536', '0']);
});

sandboxTest('time namespace offsets are applied', ['cat', '/proc/uptime'], (s) => {
  s.config.linux.namespaces.push({ type: 'time' });
  s.config.linux.timeOffsets = { boottime: { secs: 86400 * 365, nanosecs: 0 } };
  s.writeConfig();
  const uptime = Number(runOk(s).split(' ')[0]);
  assert.ok(uptime > 86400 * 365, `uptime ${uptime} includes the offset`);
});

sandboxTest('mounts: tmpfs with options, read-only bind, applied in order', ['sh', '-c', 'grep " /data " /proc/self/mountinfo; cat /data/sub/file; touch /ro/x 2>&1 || echo ro-refused'], (s) => {
  const hostDir = path.join(s.dir, 'hostdir');
  fs.mkdirSync(hostDir);
  fs.writeFileSync(path.join(hostDir, 'file'), 'from the host\n');
  s.config.mounts.push(
    { destination: '/data', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=700', 'size=1m'] },
    { destination: '/data/sub', type: 'bind', source: hostDir, options: ['bind', 'ro'] },
    { destination: '/ro', type: 'bind', source: hostDir, options: ['rbind', 'ro'] },
  );
  s.writeConfig();
  const out = runOk(s);
  assert.match(out, /\/data rw,nosuid,nodev.* - tmpfs tmpfs rw.*size=1024k.*mode=700/);
  assert.match(out, 'from the host');
  assert.match(out, 'ro-refused');
  assert.not.ok(fs.existsSync(path.join(hostDir, 'x')));
});

sandboxTest('root.readonly makes / read-only', ['sh', '-c', 'touch /x 2>/dev/null && echo writable || echo read-only'], (s) => {
  s.config.root.readonly = true;
  s.writeConfig();
  assert.is(runOk(s).trim(), 'read-only');
});

sandboxTest('a mount destination behind an absolute symlink stays inside the rootfs', ['sh', '-c', 'ls /escape/'], (s) => {
  const victim = path.join(s.dir, 'victim');
  fs.mkdirSync(victim);
  fs.writeFileSync(path.join(victim, 'precious'), 'x');
  // /escape → <host path of victim>: resolved inside the rootfs it is <rootfs><victim path>.
  fs.symlinkSync(victim, path.join(s.bundle, 'rootfs/escape'));
  s.config.mounts.push({ destination: '/escape', type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] });
  s.writeConfig();
  runOk(s);
  assert.equal(fs.readdirSync(victim), ['precious'], 'the host directory is untouched');
  assert.ok(fs.existsSync(path.join(s.bundle, 'rootfs', victim)), 'the mount point was created inside the rootfs');
});

sandboxTest('a mount destination behind a ../.. symlink stays inside the rootfs', ['true'], (s) => {
  const victimParent = path.dirname(s.bundle);
  fs.symlinkSync('../../../../../../../../..' + s.dir, path.join(s.bundle, 'rootfs/up'));
  s.config.mounts.push({ destination: '/up/bundle', type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] });
  s.writeConfig();
  runOk(s);
  assert.ok(fs.existsSync(path.join(victimParent, 'bundle/config.json')), 'the host bundle was not covered by a tmpfs');
});

sandboxTest('/proc as a symlink in the rootfs is refused', ['true'], (s) => {
  fs.rmdirSync(path.join(s.bundle, 'rootfs/proc'));
  fs.symlinkSync('/tmp', path.join(s.bundle, 'rootfs/proc'));
  const r = s.tsrun(['run', '-b', s.bundle, s.id]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /\/proc/);
  assert.match(r.stderr, /symlink/);
  assert.equal(s.leftovers(), []);
});

sandboxTest('default devices exist with runc\'s modes; /dev symlinks; linux.devices', ['sh', '-c', 'for d in null zero full random urandom tty mydev; do stat -c "%n %F %t:%T %a" /dev/$d; done; for l in fd stdin ptmx; do readlink /dev/$l; done'], (s) => {
  s.config.linux.devices = [{ path: '/dev/mydev', type: 'c', major: 1, minor: 3, fileMode: 0o640, uid: 0, gid: 0 }];
  s.writeConfig();
  const out = runOk(s).trim().split('\n');
  assert.equal(out.slice(0, 7), [
    '/dev/null character special file 1:3 666',
    '/dev/zero character special file 1:5 666',
    '/dev/full character special file 1:7 666',
    '/dev/random character special file 1:8 666',
    '/dev/urandom character special file 1:9 666',
    '/dev/tty character special file 5:0 666',
    '/dev/mydev character special file 1:3 640',
  ]);
  assert.equal(out.slice(7), ['/proc/self/fd', '/proc/self/fd/0', 'pts/ptmx']);
});

sandboxTest('process: env, cwd, uid/gid/additionalGids, umask, rlimits', ['sh', '-c', 'echo $FOO; pwd; id -u; id -g; id -G; umask; ulimit -n'], (s) => {
  s.config.process.env.push('FOO=bar baz');
  fs.mkdirSync(path.join(s.bundle, 'rootfs/work'));
  s.config.process.cwd = '/work';
  s.config.process.user = { uid: 1000, gid: 1001, additionalGids: [1002, 1003], umask: 0o027 };
  s.config.process.rlimits = [{ type: 'RLIMIT_NOFILE', hard: 321, soft: 123 }];
  s.writeConfig();
  assert.equal(runOk(s).trim().split('\n'), ['bar baz', '/work', '1000', '1001', '1001 1002 1003', '0027', '123']);
});

sandboxTest('the host environment does not leak into the container', ['env'], (s) => {
  const r = s.tsrun(['run', '-b', s.bundle, s.id], { env: { ...process.env, LEAKY_SECRET: 'x' } });
  assert.is(r.status, 0);
  assert.not.match(r.stdout, 'LEAKY_SECRET');
  // Nor what bin/tsrun sets for its own engine (BUN_JSC_useJIT, addon/cli/front.cpp; that the CLI
  // gets it is cli-front.test.ts's check).
  assert.not.match(r.stdout, 'BUN_JSC');
  assert.match(r.stdout, `TSRUN_TEST_MARKER=${s.marker}`);
});

sandboxTest('sysctl values are written in the container\'s namespaces', ['cat', '/proc/sys/net/ipv4/ip_forward', '/proc/sys/kernel/shmmni'], (s) => {
  s.config.linux.sysctl = { 'net.ipv4.ip_forward': '1', 'kernel.shmmni': '1234' };
  s.writeConfig();
  assert.equal(runOk(s).trim().split('\n'), ['1', '1234']);
});

sandboxTest('masked and readonly paths', ['sh', '-c', 'cat /proc/keys | wc -c; ls /sys/firmware | wc -l; (echo 1 > /proc/sys/kernel/domainname) 2>/dev/null && echo writable || echo ro'], (s) => {
  assert.equal(runOk(s).trim().split('\n').map((l) => l.trim()), ['0', '0', 'ro']);
});

sandboxTest('no fd of the caller reaches the container, even without CLOEXEC', ['ls', '/proc/self/fd'], (s) => {
  // Open fds on / and a cgroup dir in a shell that then runs tsrun: they are inherited by tsrun
  // (no CLOEXEC), as with a careless caller (CVE-2024-21626).
  const r = spawnSync('sh', ['-c', `exec 7</ 8</sys/fs/cgroup 9<${s.bundle}; exec "$@"`, 'sh', TSRUN, '--root', s.root, 'run', '-b', s.bundle, s.id], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  // ls itself opens the directory it lists (fd 3).
  assert.equal(r.stdout.trim().split('\n').sort(), ['0', '1', '2', '3']);
});

sandboxTest('cwd /proc/self/fd/N cannot land outside the rootfs', ['pwd'], (s) => {
  s.config.process.cwd = '/proc/self/fd/7';
  s.writeConfig();
  const r = spawnSync('sh', ['-c', 'exec 7</; exec "$@"', 'sh', TSRUN, '--root', s.root, 'run', '-b', s.bundle, s.id], { encoding: 'utf8' });
  assert.is.not(r.status, 0, `must not run with cwd on the host: ${r.stdout}`);
  assert.equal(s.leftovers(), []);
});

sandboxTest('--preserve-fds and LISTEN_FDS pass exactly those fds', ['sh', '-c', 'ls /proc/self/fd | sort -n | tr "\\n" " "; echo; echo $LISTEN_FDS $LISTEN_PID'], (s) => {
  const cmd = `exec 3</dev/null 4</dev/null 5</dev/null 6</dev/null; LISTEN_PID=$$ LISTEN_FDS=2 exec "$@"`;
  const r = spawnSync('sh', ['-c', cmd, 'sh', TSRUN, '--root', s.root, 'run', '--preserve-fds', '1', '-b', s.bundle, s.id], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const [fds, env] = r.stdout.trim().split('\n');
  // 0-2 stdio, 3-4 LISTEN_FDS, 5 preserved, 6 not passed; ls adds one for its directory.
  assert.equal(fds.trim().split(' ').map(Number).slice(0, 6), [0, 1, 2, 3, 4, 5]);
  assert.not.ok(fds.trim().split(' ').includes('7'));
  assert.is(env.trim(), '2 1');
});

sandboxTest('a created init: small, not dumpable, its exe is a sealed memfd, never a host file', ['true'], (s) => {
  assert.is(s.tsrun(['create', '-b', s.bundle, s.id]).status, 0);
  const pid = s.state().pid;
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
  console.log(`    created init VmRSS: ${rssKb} kB (runc init on this machine: ~9800 kB)`);
  assert.ok(rssKb < 4096, `VmRSS ${rssKb} kB must stay under 4 MB`);
  // Not dumpable: /proc/<pid>/ files are owned by root:root and ptrace-protected; the exe link of
  // a non-dumpable process is still readable by root, and must be a memfd.
  const exe = fs.readlinkSync(`/proc/${pid}/exe`);
  assert.match(exe, /^\/memfd:/);
  assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
  assert.equal(s.leftovers(), []);
});

sandboxTest('--console-socket receives the pty master; the slave is the container\'s stdio and /dev/console', ['sh', '-c', 'tty; test -c /dev/console && echo console-ok'], async (s) => {
  s.config.process.terminal = true;
  s.writeConfig();
  const sock = path.join(s.dir, 'console.sock');
  // The receiver accepts one connection, takes the fd, prints what the container writes on the pty.
  const receiver = spawnSync('python3', ['-c', CONSOLE_RECEIVER, sock, TSRUN, '--root', s.root, 'run', '-d', '--console-socket', sock, '-b', s.bundle, s.id], { encoding: 'utf8', timeout: 30_000 });
  assert.is(receiver.status, 0, receiver.stderr);
  const lines = receiver.stdout.trim().split('\n');
  assert.match(lines[0], /^fds 1 name \S+/);
  assert.match(receiver.stdout, /\/dev\/(pts\/\d+|console)/);
  assert.match(receiver.stdout, 'console-ok');
  await waitFor(() => s.state().status === 'stopped');
  assert.is(s.tsrun(['delete', s.id]).status, 0);
  assert.equal(s.leftovers(), []);
});

sandboxTest('run with terminal: true in the foreground connects the pty to tsrun\'s own terminal', ['sh', '-c', 'tty; echo hi-from-tty; exit 3'], (s) => {
  s.config.process.terminal = true;
  s.writeConfig();
  // script(1) gives tsrun a terminal of its own, as a person at a shell would.
  const r = spawnSync('script', ['-qec', `${TSRUN} --root ${s.root} run -b ${s.bundle} ${s.id}`, '/dev/null'], { encoding: 'utf8', timeout: 30_000 });
  assert.match(r.stdout, /\/dev\/pts\/\d+\r\nhi-from-tty\r\n/);
  assert.is(r.status, 3, r.stdout);
  assert.equal(s.leftovers(), []);
});

sandboxTest('terminal without --console-socket is refused with runc\'s message', ['true'], (s) => {
  s.config.process.terminal = true;
  s.writeConfig();
  const r = s.tsrun(['create', '-b', s.bundle, s.id]);
  assert.is(r.status, 1);
  assert.match(r.stderr, 'cannot allocate tty if runc will detach without setting console socket');
  const r2 = s.tsrun(['create', '--console-socket', '/tmp/x.sock', '-b', s.bundle, s.id]);
  assert.is(r2.status, 1);
  s.config.process.terminal = false;
  s.writeConfig();
  const r3 = s.tsrun(['create', '--console-socket', '/tmp/x.sock', '-b', s.bundle, s.id]);
  assert.is(r3.status, 1);
  assert.match(r3.stderr, 'cannot use console socket if runc will not detach or allocate tty');
  assert.equal(s.leftovers(), []);
});

sandboxTest('a new session keyring by default; --no-new-keyring keeps the caller\'s', ['cat', '/proc/keys'], (s) => {
  s.config.linux.maskedPaths = [];
  s.writeConfig();
  // --no-new-keyring first: an unreferenced keyring is garbage-collected some time after its
  // container is gone, and until then root's /proc/keys still lists it.
  assert.not.match(runOk(s, ['--no-new-keyring']), `_ses.${s.id}`);
  assert.match(runOk(s), `_ses.${s.id}`);
});

// This host has neither AppArmor nor SELinux: each label must fail exactly as runc 1.1 fails
// here (checked by hand against /usr/sbin/runc), never be ignored silently.
sandboxTest('apparmorProfile without AppArmor: the write to attr/exec fails create, as in runc', ['true'], (s) => {
  s.config.process.apparmorProfile = 'tsrun-test-profile';
  s.writeConfig();
  const r = s.tsrun(['run', '-b', s.bundle, s.id]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /apparmor.*invalid argument/);
  assert.equal(s.leftovers(), []);
});

sandboxTest('selinuxLabel without SELinux: refused before anything runs, with runc\'s message', ['true'], (s) => {
  s.config.process.selinuxLabel = 'system_u:system_r:container_t:s0';
  s.writeConfig();
  const r = s.tsrun(['run', '-b', s.bundle, s.id]);
  assert.is(r.status, 1);
  assert.match(r.stderr, 'selinux label is specified in config, but selinux is disabled or not supported');
  assert.equal(s.leftovers(), []);
});

sandboxTest('linux.mountLabel without SELinux: the tmpfs context= option fails the mount, as in runc', ['true'], (s) => {
  s.config.linux.mountLabel = 'system_u:object_r:container_file_t:s0';
  s.writeConfig();
  const r = s.tsrun(['run', '-b', s.bundle, s.id]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /mount tmpfs on \/dev: invalid argument/);
  assert.equal(s.leftovers(), []);
});

sandboxTest('--no-pivot runs the container with MS_MOVE + chroot', ['sh', '-c', 'echo ok; ls /'], (s) => {
  assert.match(runOk(s, ['--no-pivot']), /^ok\n/);
});

test.run();
