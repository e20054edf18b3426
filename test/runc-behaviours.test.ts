/**
 * Small runc contracts clients and images rely on, each checked against tsrun and runc alike
 * (RUNTIME=/usr/sbin/runc): HOME from the container's /etc/passwd, a missing cwd created, runc's
 * exec error texts (docker maps them to 127/126), exec -e replacing a variable.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Sandbox, TSRUN, cgroupDirsNamed, waitFor } from './helpers/tsrun';

function sandbox(name: string, args: string[], body: (s: Sandbox) => void | Promise<void>) {
  test(name, async () => {
    const s = new Sandbox(args, 'runcb');
    try {
      await body(s);
      assert.equal(s.leftovers(), []);
    } finally {
      s.cleanup();
    }
  });
}

sandbox('HOME: from /etc/passwd for the uid when the env has none, "/" for an unknown uid, the env wins', ['sh', '-c', 'echo "home=$HOME"'], (s) => {
  fs.appendFileSync(path.join(s.bundle, 'rootfs/etc/passwd'), 'tester:x:1234:1234::/home/tester:/bin/sh\n');
  s.config.process.env = s.config.process.env.filter((e: string) => !e.startsWith('HOME='));
  const cases: [number, string[], string][] = [
    [0, [], 'home=/root'],
    [1234, [], 'home=/home/tester'],
    [4321, [], 'home=/'],
    [1234, ['HOME=/custom'], 'home=/custom'],
  ];
  for (const [uid, extra, want] of cases) {
    s.config.process.user = { uid, gid: uid };
    s.config.process.env = [...s.config.process.env.filter((e: string) => !e.startsWith('HOME=')), ...extra];
    s.writeConfig();
    const r = s.tsrun(['run', '-b', s.bundle, s.id]);
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout.trim(), want, `uid ${uid} ${extra.join(' ')}`);
  }
});

sandbox('exec: HOME as for the container process; -e KEY=value replaces the container\'s KEY', ['sleep', '60'], (s) => {
  s.config.process.env = [...s.config.process.env.filter((e: string) => !e.startsWith('HOME=')), 'FOO=old'];
  s.writeConfig();
  assert.is(s.tsrun(['run', '-d', '-b', s.bundle, s.id]).status, 0);
  const e = s.tsrun(['exec', '-e', 'FOO=new', s.id, 'sh', '-c', 'echo "home=$HOME"; env | grep -c "^FOO="; echo "foo=$FOO"']);
  assert.is(e.status, 0, e.stderr);
  assert.is(e.stdout, 'home=/root\n1\nfoo=new\n');
  assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
});

sandbox('tmpcopyup: the tmpfs starts with a copy of what it covers (files, modes, owners, symlinks not followed); writes stay in the tmpfs', ['sh', '-c', 'cat /data/sub/f; stat -c "%a %u:%g" /data/sub /data/sub/f; readlink /data/link; echo new > /data/new; grep -c " /data .* tmpfs " /proc/self/mountinfo'], (s) => {
  const data = path.join(s.bundle, 'rootfs/data');
  fs.mkdirSync(path.join(data, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(data, 'sub/f'), 'copied\n');
  fs.chmodSync(path.join(data, 'sub'), 0o751);
  fs.chownSync(path.join(data, 'sub/f'), 1234, 5678);
  // A symlink to a host path: copied as a link, never followed.
  fs.symlinkSync('/etc/shadow', path.join(data, 'link'));
  s.config.mounts.push({ destination: '/data', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'tmpcopyup', 'size=1m'] });
  s.writeConfig();
  const r = s.tsrun(['run', '-b', s.bundle, s.id]);
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, 'copied\n751 0:0\n644 1234:5678\n/etc/shadow\n1\n');
  assert.not.ok(fs.existsSync(path.join(data, 'new')), 'the write went to the tmpfs, not the rootfs');
  // Control: without tmpcopyup the tmpfs starts empty.
  s.config.mounts[s.config.mounts.length - 1].options = ['nosuid', 'size=1m'];
  s.writeConfig();
  const empty = s.tsrun(['run', '-b', s.bundle, s.id]);
  assert.match(empty.stderr, /can't open '\/data\/sub\/f'/);
});

sandbox('stdio: the host\'s /dev/null becomes the container\'s own, read-write; a pipe belongs to the process\'s uid (echo > /dev/stdout works as non-root)', ['sh', '-c', 'stat -L -c "%d:%i" /proc/self/fd/0 /dev/null; echo x >&0 && echo stdin-writable'], async (s) => {
  // stdin: the host's /dev/null opened read-only, handed to `create` as conmon does (the
  // container gets the runtime's stdio; a foreground `runc run` would put its own pipes there).
  const ro = fs.openSync('/dev/null', 'r');
  const outFile = path.join(s.dir, 'stdio.out');
  const out = fs.openSync(outFile, 'w');
  try {
    const c = spawnSync(TSRUN, ['--root', s.root, 'create', '-b', s.bundle, s.id], { stdio: [ro, out, out], timeout: 30_000 });
    assert.is(c.status, 0, fs.readFileSync(outFile, 'utf8'));
  } finally {
    fs.closeSync(ro);
    fs.closeSync(out);
  }
  assert.is(s.tsrun(['start', s.id]).status, 0);
  await waitFor(() => s.state().status === 'stopped', 10_000, 'the container to finish');
  const [fd0, devNull, w] = fs.readFileSync(outFile, 'utf8').trim().split('\n');
  assert.is(fd0, devNull, 'fd 0 is the container\'s /dev/null');
  assert.is(w, 'stdin-writable');
  assert.is(s.tsrun(['delete', s.id]).status, 0);
  // A non-root process writes to /dev/stdout when stdout is a pipe made by root outside.
  s.config.process.user = { uid: 1000, gid: 1000 };
  s.config.process.args = ['sh', '-c', 'echo via-dev-stdout > /dev/stdout'];
  s.writeConfig();
  const p = spawnSync('sh', ['-c', `${TSRUN} --root ${s.root} run -b ${s.bundle} ${s.id} | cat`], { encoding: 'utf8', timeout: 30_000 });
  assert.is(p.stdout, 'via-dev-stdout\n', p.stderr);
});

sandbox('a tmpfs without mode= over an existing directory keeps that directory\'s mode; over a new one it is 1777', ['sh', '-c', 'stat -c %a /run /fresh'], (s) => {
  fs.mkdirSync(path.join(s.bundle, 'rootfs/run'), { recursive: true });
  fs.chmodSync(path.join(s.bundle, 'rootfs/run'), 0o755);
  s.config.mounts.push({ destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid'] });
  s.config.mounts.push({ destination: '/fresh', type: 'tmpfs', source: 'tmpfs', options: ['nosuid'] });
  s.writeConfig();
  const r = s.tsrun(['run', '-b', s.bundle, s.id]);
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, '755\n1777\n');
});

sandbox('a missing process.cwd is created inside the rootfs, also with a read-only root', ['pwd'], (s) => {
  for (const readonly of [false, true]) {
    s.config.process.cwd = readonly ? '/made/for/ro' : '/made/by/runtime';
    s.config.root.readonly = readonly;
    s.writeConfig();
    const r = s.tsrun(['run', '-b', s.bundle, s.id]);
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout.trim(), s.config.process.cwd);
    assert.ok(fs.statSync(path.join(s.bundle, 'rootfs', s.config.process.cwd)).isDirectory());
  }
});

sandbox('a missing or non-executable executable: runc\'s texts', ['true'], (s) => {
  const cases: [string, string][] = [
    ['/nonexistent', 'exec: "/nonexistent": stat /nonexistent: no such file or directory'],
    ['/etc/passwd', 'exec: "/etc/passwd": permission denied'],
    ['nosuchcommand', 'exec: "nosuchcommand": executable file not found in $PATH'],
  ];
  for (const [arg, text] of cases) {
    s.config.process.args = [arg];
    s.writeConfig();
    const r = s.tsrun(['run', '-b', s.bundle, s.id]);
    assert.is.not(r.status, 0, arg);
    // runc's logrus line escapes the quotes.
    assert.ok(r.stderr.replace(/\\"/g, '"').includes(text), `${arg}: ${r.stderr}`);
    s.tsrun(['delete', '-f', s.id]);
  }
});

sandbox('kill --all ID 0 of a stopped container succeeds', ['true'], async (s) => {
  assert.is(s.tsrun(['run', '-d', '-b', s.bundle, s.id]).status, 0);
  const deadline = Date.now() + 10_000;
  while (s.state().status !== 'stopped' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.is(s.state().status, 'stopped');
  const k = s.tsrun(['kill', '--all', s.id, '0']);
  assert.is(k.status, 0, k.stderr);
  // Control: without --all a stopped container is "not running".
  const k1 = s.tsrun(['kill', s.id, '0']);
  assert.is.not(k1.status, 0);
  assert.is(s.tsrun(['delete', s.id]).status, 0);
});

sandbox('a seccomp agent that does not listen: "failed to connect with seccomp agent"', ['true'], (s) => {
  s.config.linux.seccomp = {
    defaultAction: 'SCMP_ACT_ALLOW',
    listenerPath: path.join(s.dir, 'no-agent.sock'),
    architectures: ['SCMP_ARCH_X86_64'],
    syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }],
  };
  s.writeConfig();
  const r = s.tsrun(['run', '-b', s.bundle, s.id]);
  assert.is.not(r.status, 0);
  assert.match(r.stderr, /failed to connect with seccomp agent/);
});

sandbox('a redundant /dev/ptmx in linux.devices is ignored without a word', ['sh', '-c', 'echo ok; readlink /dev/ptmx'], (s) => {
  s.config.linux.devices = [{ path: '/dev/ptmx', type: 'c', major: 5, minor: 2, fileMode: 0o666, uid: 0, gid: 0 }];
  s.writeConfig();
  const r = s.tsrun(['run', '-b', s.bundle, s.id]);
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, 'ok\npts/ptmx\n');
  assert.is(r.stderr, '');
});

sandbox('exec exits 255 for every failure before the process runs (as runc)', ['sleep', '60'], (s) => {
  assert.is(s.tsrun(['run', '-d', '-b', s.bundle, s.id]).status, 0);
  assert.is(s.tsrun(['exec', 'no-such-container', 'true']).status, 255, 'unknown container');
  assert.is(s.tsrun(['exec', '--pid-file', path.join(s.dir, 'missing-dir/pid'), s.id, 'true']).status, 255, 'pid file in a missing directory');
  assert.is(s.tsrun(['pause', s.id]).status, 0);
  assert.is(s.tsrun(['exec', s.id, 'true']).status, 255, 'paused container');
  assert.is(s.tsrun(['resume', s.id]).status, 0);
  // Control: a process that runs and exits 3 gives 3.
  assert.is(s.tsrun(['exec', s.id, 'sh', '-c', 'exit 3']).status, 3);
  assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
});

sandbox('ps ID passes every argument after the id to ps(1), dashes included', ['sleep', '60'], (s) => {
  assert.is(s.tsrun(['run', '-d', '-b', s.bundle, s.id]).status, 0);
  const r = s.tsrun(['ps', s.id, '-e', '-x']);
  assert.is(r.status, 0, r.stderr);
  // ps -e -x: BSD-style columns with STAT and COMMAND (with -x, the environment after the command).
  assert.match(r.stdout, /^\s*PID\s+TTY\s+STAT\s+TIME\s+COMMAND/);
  assert.match(r.stdout, new RegExp(`sleep 60 .*TSRUN_TEST_MARKER=${s.marker}`));
  // Control: without arguments, ps -ef's columns.
  assert.match(s.tsrun(['ps', s.id]).stdout, /^UID\s+PID\s+PPID/);
  assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
});

// Only container processes belong in the container's cgroup: `ps`, `docker top` and
// `kill --all` must not meet the runtime's stage 0 (which supervises a foreground run).
sandbox('a foreground run: the cgroup holds the container process only; kill --all KILL makes run exit 137', ['sleep', '60'], async (s) => {
  const run = s.tsrunAsync(['run', '-b', s.bundle, s.id], { timeout: 30_000 });
  const deadline = Date.now() + 10_000;
  let procs: number[] = [];
  const dir = () => cgroupDirsNamed(s.id).find((d) => d.includes('/pids/') || d.includes('/unified/'));
  while (Date.now() < deadline) {
    const d = dir();
    if (d) procs = fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    if (procs.length && procs.every((p) => { try { return fs.readFileSync(`/proc/${p}/cmdline`, 'latin1').startsWith('sleep'); } catch { return false; } })) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.is(procs.length, 1, `one process in the cgroup: ${procs.join(' ')}`);
  assert.ok(fs.readFileSync(`/proc/${procs[0]}/cmdline`, 'latin1').startsWith('sleep'), 'and it is the container process');
  const k = s.tsrun(['kill', '--all', s.id, 'KILL']);
  assert.is(k.status, 0, k.stderr);
  const r = await run;
  assert.is(r.status, 137, `run exits with the container's status: ${r.stderr}`);
});

// tsrun's rule (runc 1.1.5 hands such a container a pipe of its own): no stdin means /dev/null,
// read-write. Control: with a stdin, the container reads what it is given.
sandbox('started without a stdin, the container process has /dev/null read-write as fd 0', ['sh', '-c', 'readlink /proc/self/fd/0; ls -l /proc/self/fd/0 | cut -c1-3; read x && echo "read $x"'], (s) => {
  if (process.env.RUNTIME) return console.log('    skipped for RUNTIME: runc gives a pipe');
  const run = (redirect: string, input?: string) =>
    spawnSync('bash', ['-c', `${JSON.stringify(TSRUN)} --root ${JSON.stringify(s.root)} run -b ${JSON.stringify(s.bundle)} ${s.id} ${redirect}`], { encoding: 'utf8', input });
  const closed = run('0<&-');
  assert.is(closed.stdout, '/dev/null\nlrw\n', closed.stderr);
  const given = run('', 'hello\n');
  assert.match(given.stdout, /read hello/);
});

sandbox('v1: a container under a pre-made parent cgroup whose cpuset.cpus/mems are empty starts (values copied down)', ['true'], (s) => {
  const root = '/sys/fs/cgroup/cpuset';
  if (!fs.existsSync(path.join(root, 'cpuset.cpus'))) return console.log('    skipped: no cgroup v1 cpuset hierarchy on this host');
  const parent = path.join(root, `premade-${s.id}`);
  fs.mkdirSync(parent);
  try {
    assert.is(fs.readFileSync(path.join(parent, 'cpuset.cpus'), 'utf8').trim(), '', 'control: a new cpuset cgroup starts empty');
    s.config.linux.cgroupsPath = `/premade-${s.id}/${s.id}`;
    s.writeConfig();
    const r = s.tsrun(['run', '-b', s.bundle, s.id]);
    assert.is(r.status, 0, r.stderr);
    assert.is.not(fs.readFileSync(path.join(parent, 'cpuset.cpus'), 'utf8').trim(), '');
  } finally {
    for (const d of cgroupDirsNamed(`premade-${s.id}`).sort((a, b) => b.length - a.length)) {
      try {
        fs.rmdirSync(d);
      } catch {}
    }
  }
});

sandbox('a pre-existing frozen cgroup is refused (no hang); thawed, the same path runs', ['true'], (s) => {
  const freezer = fs.existsSync('/sys/fs/cgroup/freezer/freezer.state') ? '/sys/fs/cgroup/freezer' : null;
  if (!freezer) return console.log('    skipped: no cgroup v1 freezer on this host (the v2 path is cgroup.freeze)');
  const name = `frozen-${s.id}`;
  const dir = path.join(freezer, name);
  fs.mkdirSync(dir);
  try {
    fs.writeFileSync(path.join(dir, 'freezer.state'), 'FROZEN');
    s.config.linux.cgroupsPath = `/${name}`;
    s.writeConfig();
    const r = s.tsrun(['run', '-b', s.bundle, s.id], { timeout: 20_000 });
    assert.is(r.signal, null, 'no hang');
    assert.is.not(r.status, 0);
    assert.match(r.stderr, /cgroup unexpectedly frozen/);
    s.tsrun(['delete', '-f', s.id]);
    if (!fs.existsSync(dir)) fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'freezer.state'), 'THAWED');
    const ok = s.tsrun(['run', '-b', s.bundle, s.id], { timeout: 20_000 });
    assert.is(ok.status, 0, `control: thawed, it runs: ${ok.stderr}`);
  } finally {
    for (const d of cgroupDirsNamed(name).sort((a, b) => b.length - a.length)) {
      try {
        fs.rmdirSync(d);
      } catch {}
    }
  }
});

// tsrun's rule (runc writes what it is given): --resources is checked against config.json's schema
// for linux.resources first, every problem named by its pointer, and nothing is written.
sandbox('update --resources is validated before anything is written', ['sleep', '60'], (s) => {
  if (process.env.RUNTIME) return console.log('    skipped for RUNTIME: runc does not validate --resources');
  assert.is(s.tsrun(['run', '-d', '-b', s.bundle, s.id]).status, 0);
  const bad = path.join(s.dir, 'bad.json');
  fs.writeFileSync(bad, JSON.stringify({ pids: { limit: 77 }, memory: { limit: 'lots' }, cpu: { shares: 'x' } }));
  const r = s.tsrun(['update', '--resources', bad, s.id]);
  assert.is(r.status, 1);
  assert.match(r.stderr, '/memory/limit must be integer');
  assert.match(r.stderr, '/cpu/shares must be integer');
  const pidsMax = cgroupDirsNamed(s.id).filter((d) => /\/pids\//.test(d)).map((d) => path.join(d, 'pids.max'));
  assert.ok(pidsMax.length > 0, 'the pids cgroup file was found');
  for (const f of pidsMax) assert.is.not(fs.readFileSync(f, 'utf8').trim(), '77', 'the valid part was not written either');
  // Control: the valid part alone is applied.
  const good = path.join(s.dir, 'good.json');
  fs.writeFileSync(good, JSON.stringify({ pids: { limit: 77 } }));
  assert.is(s.tsrun(['update', '--resources', good, s.id]).status, 0);
  for (const f of pidsMax) assert.is(fs.readFileSync(f, 'utf8').trim(), '77');
  assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
});

sandbox('exec -t in the foreground without --console-socket: a pty proxied to our stdio, owned by the process\'s uid/gid', ['sleep', '60'], (s) => {
  if (process.env.RUNTIME) return console.log('    skipped for RUNTIME: runc 1.1 needs a terminal on its own stdin for this');
  assert.is(s.tsrun(['run', '-d', '-b', s.bundle, s.id]).status, 0);
  const e = s.tsrun(['exec', '-t', s.id, 'sh', '-c', 'tty; exit 4']);
  assert.is(e.status, 4, e.stderr);
  assert.match(e.stdout, /^\/dev\/pts\/\d+\r?\n/);
  const u = s.tsrun(['exec', '-t', '-u', '1000:1000', s.id, 'sh', '-c', 'stat -c "%u %g" $(tty)']);
  assert.is(u.status, 0, u.stderr);
  // runc's fixStdioPermissions: the uid is the process's, the group stays devpts' gid=5.
  assert.is(u.stdout.trim(), '1000 5');
  // Control: without -t there is no terminal.
  const n = s.tsrun(['exec', s.id, 'sh', '-c', 'tty || true']);
  assert.match(n.stdout, /not a tty/);
  // Detached, a terminal still needs a console socket (runc's error).
  const d = s.tsrun(['exec', '-d', '-t', s.id, 'true']);
  assert.is(d.status, 255);
  assert.match(d.stderr, 'cannot allocate tty if runc will detach without setting console socket');
  assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
});

// Each hook kind runs where runc runs it, so a relative path in its args means the same thing:
// createContainer in the rootfs, startContainer in process.cwd (both inside the container),
// prestart/createRuntime/poststart of `run` in the bundle. The hook writes $PWD (from /bin/pwd) to a
// file named by a relative path.
sandbox('hooks run in runc\'s working directory for each kind', ['true'], (s) => {
  const hostPwd = (file: string) => ({ path: '/bin/sh', args: ['sh', '-c', `pwd > ${file}`] });
  s.config.process.cwd = '/tmp';
  s.config.hooks = {
    prestart: [hostPwd('prestart.cwd')],
    createRuntime: [hostPwd('createRuntime.cwd')],
    poststart: [hostPwd('poststart.cwd')],
    createContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'pwd > createContainer.cwd'] }],
    startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'pwd > startContainer.cwd'] }],
  };
  s.writeConfig();
  const r = s.tsrun(['run', '-b', s.bundle, s.id]);
  assert.is(r.status, 0, r.stderr);
  const real = fs.realpathSync(s.bundle);
  for (const k of ['prestart', 'createRuntime', 'poststart']) {
    assert.is(fs.readFileSync(path.join(s.bundle, `${k}.cwd`), 'utf8').trim(), real, `${k} runs in the bundle`);
  }
  // createContainer: before pivot_root, from inside the rootfs (the file lands in the rootfs's top).
  assert.ok(fs.existsSync(path.join(s.bundle, 'rootfs/createContainer.cwd')), 'createContainer runs in the rootfs');
  assert.is(fs.readFileSync(path.join(s.bundle, 'rootfs/tmp/startContainer.cwd'), 'utf8').trim(), '/tmp', 'startContainer runs in process.cwd');
});

sandbox('a read-only /dev mount: devices are made, then /dev is read-only (runc)', ['sh', '-c', 'ls /dev/null /dev/zero >/dev/null && echo devices; touch /dev/x 2>&1 || true; echo ok > /dev/null && echo null-writable'], (s) => {
  for (const m of s.config.mounts) if (m.destination === '/dev') m.options = [...m.options, 'ro'];
  s.writeConfig();
  const r = s.tsrun(['run', '-b', s.bundle, s.id]);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /^devices\n/);
  assert.match(r.stdout, /Read-only file system/);
  assert.match(r.stdout, /null-writable/);
  assert.not.match(r.stderr, /not supported/);
});

sandbox('--debug writes debug records, also for exec and to --log in JSON', ['sleep', '60'], (s) => {
  if (process.env.RUNTIME) return console.log('    skipped for RUNTIME: the record texts are tsrun\'s');
  const log = path.join(s.dir, 'debug.log');
  assert.is(s.tsrun(['--debug', '--log', log, '--log-format', 'json', 'run', '-d', '-b', s.bundle, s.id]).status, 0);
  assert.is(s.tsrun(['--debug', '--log', log, '--log-format', 'json', 'exec', s.id, 'true']).status, 0);
  const records = fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(records.some((r) => r.level === 'debug' && r.msg.startsWith('run:')), 'run');
  assert.ok(records.some((r) => r.level === 'debug' && r.msg.startsWith('exec:')), 'exec');
  const text = s.tsrun(['--debug', 'state', s.id]);
  assert.match(text.stderr, /level=debug msg="state: /);
  // Control: without --debug, no debug record.
  assert.not.match(s.tsrun(['state', s.id]).stderr, /level=debug/);
  assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
});

sandbox('device access letters: "rwa" is read+write as runc parses it; "x" alone is refused', ['sh', '-c', 'echo tsrun-device-access-test > /dev/kmsg && echo wrote || echo refused'], (s) => {
  s.config.mounts.push({ destination: '/dev/kmsg', type: 'bind', source: '/dev/kmsg', options: ['bind'] });
  const run = (access: string) => {
    s.config.linux.resources = { devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 11, access }] };
    s.writeConfig();
    const r = s.tsrun(['run', '-b', s.bundle, s.id]);
    s.tsrun(['delete', '-f', s.id]);
    return r;
  };
  const rwa = run('rwa');
  assert.is(rwa.status, 0, rwa.stderr);
  assert.is(rwa.stdout.trim(), 'wrote');
  assert.is(run('rm').stdout.trim(), 'refused', 'control: without w the write is refused');
  const x = run('x');
  assert.is.not(x.status, 0, 'an access with none of r, w, m is an error (never rwm)');
  assert.not.match(x.stdout, /wrote/);
});

sandbox('exec --cgroup puts the process into an existing sub-cgroup (all hierarchies, or the named controller)', ['sleep', '60'], (s) => {
  assert.is(s.tsrun(['run', '-d', '-b', s.bundle, s.id]).status, 0);
  const dirs = cgroupDirsNamed(s.id).filter((d) => d.endsWith(s.id));
  assert.ok(dirs.length > 0, 'the container has cgroups');
  try {
  for (const d of dirs) {
    fs.mkdirSync(path.join(d, 'sub'));
    // A new v1 cpuset cgroup takes no task until it has cpus and mems (the test makes it usable).
    for (const f of ['cpuset.cpus', 'cpuset.mems']) {
      if (fs.existsSync(path.join(d, f))) fs.writeFileSync(path.join(d, 'sub', f), fs.readFileSync(path.join(d, f), 'utf8').trim());
    }
  }
  const lines = (out: string) => out.trim().split('\n').filter((l) => l.includes(s.id));
  const all = s.tsrun(['exec', '--cgroup', 'sub', s.id, 'cat', '/proc/self/cgroup']);
  assert.is(all.status, 0, all.stderr);
  assert.ok(lines(all.stdout).length > 0 && lines(all.stdout).every((l) => l.endsWith(`${s.id}/sub`)), all.stdout);
  const one = s.tsrun(['exec', '--cgroup', 'pids:sub', s.id, 'cat', '/proc/self/cgroup']);
  assert.is(one.status, 0, one.stderr);
  const pidsLine = lines(one.stdout).find((l) => /:pids:/.test(l));
  if (pidsLine) {
    assert.ok(pidsLine.endsWith(`${s.id}/sub`), one.stdout);
    assert.ok(lines(one.stdout).filter((l) => !/:pids:/.test(l)).every((l) => l.endsWith(s.id)), 'control: the other hierarchies stay in the container\'s cgroup');
  }
  const missing = s.tsrun(['exec', '--cgroup', 'nope', s.id, 'true']);
  assert.is(missing.status, 255);
  assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
  } finally {
    // The sub-cgroups are the test's own: removed whether it passed or not (then the sandbox's).
    s.tsrun(['delete', '-f', s.id]);
    for (const d of dirs) {
      try {
        fs.rmdirSync(path.join(d, 'sub'));
      } catch {}
    }
  }
});

test.run();
