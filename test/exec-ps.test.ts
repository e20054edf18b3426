/**
 * exec, ps, pause/resume, update, features, spec through bin/tsrun: what containerd's go-runc and
 * dockerd rely on (argument shapes, exit statuses, pid files, JSON outputs).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Sandbox, TSRUN, selected, waitFor } from './helpers/tsrun';
import { spawn, spawnSync } from 'node:child_process';

function withRunning(name: string, body: (s: Sandbox) => Promise<void> | void) {
  if (!selected(name)) return;
  test(name, async () => {
    const s = new Sandbox(['sleep', '1000']);
    try {
      assert.is(s.tsrun(['run', '-d', '-b', s.bundle, s.id]).status, 0);
      await body(s);
      assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
      assert.equal(s.leftovers(), []);
    } finally {
      s.cleanup();
    }
  });
}

withRunning('exec runs in the container\'s namespaces and returns the exit status', (s) => {
  const initPid = s.state().pid;
  const r = s.tsrun(['exec', s.id, 'sh', '-c', 'hostname; readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt; exit 5']);
  assert.is(r.status, 5, r.stderr);
  const [host, pidNs, mntNs] = r.stdout.trim().split('\n');
  assert.is(host, 'tsrun-test');
  assert.is(pidNs, fs.readlinkSync(`/proc/${initPid}/ns/pid`));
  assert.is(mntNs, fs.readlinkSync(`/proc/${initPid}/ns/mnt`));
});

withRunning('exec flags: --env, --cwd, --user, -g; args after the id are the command, flags included', (s) => {
  const r = s.tsrun(['exec', '-e', 'FOO=bar', '--cwd', '/tmp', '-u', '1000:1000', '-g', '5', s.id, 'sh', '-c', 'echo $FOO; pwd; id -u; id -G', '-e']);
  assert.is(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n'), ['bar', '/tmp', '1000', '1000 5']);
});

withRunning('exec --process FILE with a runtime-spec process', (s) => {
  const file = path.join(s.dir, 'process.json');
  fs.writeFileSync(file, JSON.stringify({ args: ['sh', '-c', 'echo from-process-file; exit 4'], cwd: '/', env: ['PATH=/bin'], user: { uid: 0, gid: 0 } }));
  const r = s.tsrun(['exec', '--process', file, s.id]);
  assert.is(r.status, 4, r.stderr);
  assert.is(r.stdout, 'from-process-file\n');
});

withRunning('exec -d --pid-file: pid file written, process runs detached', async (s) => {
  const pidFile = path.join(s.dir, 'exec.pid');
  const r = s.tsrun(['exec', '-d', '--pid-file', pidFile, s.id, 'sleep', '30']);
  assert.is(r.status, 0, r.stderr);
  const text = fs.readFileSync(pidFile, 'utf8');
  assert.match(text, /^\d+$/);
  assert.ok(fs.readFileSync(`/proc/${text}/cmdline`, 'utf8').startsWith('sleep'));
  const ps = JSON.parse(s.tsrun(['ps', '--format', 'json', s.id]).stdout);
  assert.ok(ps.includes(Number(text)), 'ps lists the exec\'d process');
  assert.ok(ps.includes(s.state().pid), 'ps lists the init');
});

withRunning('a failed exec exits 255 with "exec failed:"', (s) => {
  const r = s.tsrun(['exec', s.id, 'no-such-binary']);
  assert.is(r.status, 255);
  assert.match(r.stderr, /^exec failed: .*no-such-binary/);
});

withRunning('ps table keeps the container\'s lines of ps -ef', (s) => {
  const r = s.tsrun(['ps', s.id]);
  assert.is(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0], /PID/);
  assert.is(lines.length, 2);
  assert.match(lines[1], /sleep 1000/);
});

withRunning('pause/resume: paused state, exec refused while paused unless --ignore-paused', async (s) => {
  assert.is(s.tsrun(['pause', s.id]).status, 0);
  assert.is(s.state().status, 'paused');
  const e = s.tsrun(['exec', s.id, 'true']);
  assert.is(e.status, 255, 'runc: every exec failure exits 255');
  assert.match(e.stderr, 'paused');
  const again = s.tsrun(['resume', s.id]);
  assert.is(again.status, 0);
  assert.is(s.state().status, 'running');
  const notPaused = s.tsrun(['resume', s.id]);
  assert.is(notPaused.status, 1);
  assert.match(notPaused.stderr, 'container not paused');
});

withRunning('update --memory and --resources - change the cgroup', (s) => {
  assert.is(s.tsrun(['update', '--memory', '64m', s.id]).status, 0);
  const saved = JSON.parse(fs.readFileSync(path.join(s.root, s.id, 'state.json'), 'utf8'));
  const memDir = saved.cgroup.paths.memory;
  assert.is(fs.readFileSync(path.join(memDir, 'memory.limit_in_bytes'), 'utf8').trim(), String(64 * 1024 * 1024));
  const r = spawnSync(TSRUN, ['--root', s.root, 'update', '--resources', '-', s.id], { input: JSON.stringify({ pids: { limit: 77 } }), encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.is(fs.readFileSync(path.join(saved.cgroup.paths.pids, 'pids.max'), 'utf8').trim(), '77');
});

withRunning('events --stats prints one stats event in runc\'s shape', (s) => {
  const r = s.tsrun(['events', '--stats', s.id]);
  assert.is(r.status, 0, r.stderr);
  const ev = JSON.parse(r.stdout);
  assert.is(ev.type, 'stats');
  assert.is(ev.id, s.id);
  assert.ok(ev.data.pids.current >= 1);
  assert.ok(ev.data.memory.usage.usage > 0);
});

test('events streams an oom event when a process of the container is OOM-killed', async () => {
  // A subshell allocates 100 MB in a 32 MB container, again and again; the init survives.
  const s = new Sandbox(['sh', '-c', 'while :; do (x=$(head -c 100000000 /dev/zero | tr "\\0" a)); sleep 0.5; done']);
  try {
    s.config.linux.resources = { memory: { limit: 32 * 1024 * 1024, swap: 32 * 1024 * 1024 } };
    s.writeConfig();
    assert.is(s.tsrun(['run', '-d', '-b', s.bundle, s.id]).status, 0);
    const events = spawn(TSRUN, ['--root', s.root, 'events', '--interval', '1s', s.id], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    events.stdout.on('data', (d) => (out += d));
    try {
      await waitFor(() => /"type":"oom"/.test(out), 30_000, 'an oom event');
    } finally {
      events.kill('SIGKILL');
    }
    const lines = out.trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(lines.some((e) => e.type === 'stats' && e.id === s.id), 'stats events too');
    assert.ok(lines.some((e) => e.type === 'oom' && e.id === s.id));
    assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
    assert.equal(s.leftovers(), []);
  } finally {
    s.cleanup();
  }
});

test('exec into a stopped container is refused', async () => {
  const s = new Sandbox(['true']);
  try {
    assert.is(s.tsrun(['run', '--keep', '-b', s.bundle, s.id]).status, 0);
    const r = s.tsrun(['exec', s.id, 'true']);
    assert.is(r.status, 255, 'runc: every exec failure exits 255');
    assert.match(r.stderr, 'cannot exec in a stopped container');
    assert.is(s.tsrun(['delete', s.id]).status, 0);
    assert.equal(s.leftovers(), []);
  } finally {
    s.cleanup();
  }
});

test('features describes what tsrun supports; spec writes runc\'s example', () => {
  const f = JSON.parse(spawnSync(TSRUN, ['features'], { encoding: 'utf8' }).stdout);
  assert.is(f.ociVersionMax, '1.2.0');
  assert.ok(f.hooks.includes('createContainer'));
  assert.ok(f.linux.namespaces.includes('time'));
  assert.is(f.linux.cgroup.systemd, true, 'the systemd driver (test/systemd*.test.ts)');
  const s = new Sandbox();
  try {
    const dir = path.join(s.dir, 'specdir');
    fs.mkdirSync(dir);
    assert.is(spawnSync(TSRUN, ['spec', '-b', dir]).status, 0);
    const spec = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    assert.equal(spec.process.args, ['sh']);
    assert.ok(spec.linux.maskedPaths.includes('/proc/kcore'));
    // runc 1.1's template: no cgroup namespace (scripts append one themselves).
    assert.equal(spec.linux.namespaces, [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }]);
    const again = spawnSync(TSRUN, ['spec', '-b', dir], { encoding: 'utf8' });
    assert.is(again.status, 1);
    assert.match(again.stderr, 'exists');
  } finally {
    s.cleanup();
  }
});

test.run();
