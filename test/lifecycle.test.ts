/**
 * The OCI lifecycle through bin/tsrun, as runc users and containerd see it: create/start/state/
 * kill/delete/run/list, runc's error strings, pid files, the state machine's refusals, and that
 * every failure leaves nothing behind.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sandboxTest, Sandbox, TSRUN, initProcesses, waitFor } from './helpers/tsrun';
import { spawnSync } from 'node:child_process';

function assertClean(s: Sandbox) {
  assert.equal(s.leftovers(), [], 'nothing may be left behind');
}

sandboxTest('run prints the output and exits 0, then leaves nothing', ['sh', '-c', 'echo hello from $(hostname)'], (s) => {
  const r = s.tsrun(['run', '-b', s.bundle, s.id]);
  assert.is(r.stderr, '');
  assert.is(r.stdout, 'hello from tsrun-test\n');
  assert.is(r.status, 0);
  assertClean(s);
});

sandboxTest('run exits with the container exit status', ['sh', '-c', 'exit 3'], (s) => {
  assert.is(s.tsrun(['run', '-b', s.bundle, s.id]).status, 3);
  assertClean(s);
});

sandboxTest('run exits with 128+signal when the container init is killed', ['sleep', '1000'], async (s) => {
  // (A process cannot SIGKILL itself as pid 1 of its namespace: the kernel ignores it there.)
  const run = s.tsrunAsync(['run', '-b', s.bundle, s.id]);
  await waitFor(() => s.tsrun(['state', s.id]).stdout.includes('"running"'), 10_000, 'running');
  assert.is(s.tsrun(['kill', s.id, 'KILL']).status, 0);
  assert.is((await run).status, 137);
  assertClean(s);
});

sandboxTest('run --keep leaves a stopped container that delete removes', ['true'], (s) => {
  assert.is(s.tsrun(['run', '--keep', '-b', s.bundle, s.id]).status, 0);
  assert.is(s.state().status, 'stopped');
  assert.is(s.state().pid, 0);
  assert.is(s.tsrun(['delete', s.id]).status, 0);
  assertClean(s);
});

sandboxTest('create waits; start runs the process; stopped after exit; delete cleans', ['sh', '-c', 'echo ran > /ran; sleep 0.3'], async (s) => {
  const pidFile = path.join(s.dir, 'pid');
  const c = s.tsrun(['create', '--bundle', s.bundle, '--pid-file', pidFile, s.id]);
  assert.is(c.stderr, '');
  assert.is(c.status, 0);
  const st = s.state();
  assert.is(st.status, 'created');
  assert.is(st.id, s.id);
  assert.is(st.bundle, s.bundle);
  assert.is(st.rootfs, path.join(s.bundle, 'rootfs'));
  assert.is(st.ociVersion, '1.2.0');
  assert.ok(st.pid > 0);
  assert.match(st.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  const pidText = fs.readFileSync(pidFile, 'utf8');
  assert.is(pidText, String(st.pid), 'pid file: decimal, no newline');
  assert.not.ok(fs.existsSync(path.join(s.bundle, 'rootfs/ran')), 'create must not run the user process');

  assert.is(s.tsrun(['start', s.id]).status, 0);
  await waitFor(() => fs.existsSync(path.join(s.bundle, 'rootfs/ran')), 5000, 'the process to run');
  const again = s.tsrun(['start', s.id]);
  if (s.state().status === 'running') {
    assert.is(again.status, 1);
    assert.match(again.stderr, 'cannot start an already running container');
  }
  await waitFor(() => s.state().status === 'stopped', 5000, 'stopped');
  assert.is(s.state().pid, 0);
  const late = s.tsrun(['start', s.id]);
  assert.is(late.status, 1);
  assert.match(late.stderr, 'cannot start a container that has stopped');
  assert.is(s.tsrun(['delete', s.id]).status, 0);
  const gone = s.tsrun(['state', s.id]);
  assert.is(gone.status, 1);
  assert.match(gone.stderr, 'container does not exist');
  assertClean(s);
});

sandboxTest('a slow poststart hook does not hold the container\'s lock: delete -f goes through meanwhile', ['sleep', '1000'], async (s) => {
  s.config.hooks = { poststart: [{ path: '/bin/sleep', args: ['sleep', '3'] }] };
  s.writeConfig();
  assert.is(s.tsrun(['create', '-b', s.bundle, s.id]).status, 0);
  const start = s.tsrunAsync(['start', s.id]);
  // The init runs once start has released it; the hook then sleeps 3 s.
  await waitFor(() => s.tsrun(['state', s.id]).stdout.includes('"running"'), 10_000, 'running');
  const t0 = Date.now();
  const d = s.tsrun(['delete', '-f', s.id]);
  const ms = Date.now() - t0;
  assert.is(d.status, 0, d.stderr);
  assert.ok(ms < 2000, `delete -f waited ${ms} ms for the poststart hook`);
  await start;
  assertClean(s);
});

sandboxTest('delete of a running container needs --force', ['sleep', '1000'], (s) => {
  assert.is(s.tsrun(['run', '-d', '-b', s.bundle, s.id]).status, 0);
  assert.is(s.state().status, 'running');
  const d = s.tsrun(['delete', s.id]);
  assert.is(d.status, 1);
  assert.match(d.stderr, `cannot delete container ${s.id} that is not stopped: running`);
  assert.is(s.tsrun(['delete', '--force', s.id]).status, 0);
  assertClean(s);
});

sandboxTest('delete of a created container needs -f (spec), which kills the waiting init', ['true'], (s) => {
  assert.is(s.tsrun(['create', '-b', s.bundle, s.id]).status, 0);
  const pid = s.state().pid;
  const refused = s.tsrun(['delete', s.id]);
  assert.is(refused.status, 1);
  assert.match(refused.stderr, `cannot delete container ${s.id} that is not stopped: created`);
  assert.is(s.state().status, 'created', 'a refused delete changes nothing');
  assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
  assert.not.ok(fs.existsSync(`/proc/${pid}/stat`) && !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z'), 'init gone');
  assertClean(s);
});

sandboxTest('kill accepts KILL, SIGKILL and 9; unknown signals are refused', ['sleep', '1000'], async (s) => {
  for (const [i, sig] of ['KILL', 'SIGKILL', '9'].entries()) {
    const id = `${s.id}-${i}`;
    assert.is(s.tsrun(['run', '-d', '-b', s.bundle, id]).status, 0);
    const bad = s.tsrun(['kill', id, 'SIGNOPE']);
    assert.is(bad.status, 1);
    assert.match(bad.stderr, /invalid signal/);
    assert.is(s.tsrun(['kill', id, sig]).status, 0);
    await waitFor(() => s.state(id).status === 'stopped', 5000, `${sig} to stop the container`);
    const again = s.tsrun(['kill', id, 'KILL']);
    assert.is(again.status, 1);
    assert.match(again.stderr, 'container not running');
    assert.is(s.tsrun(['delete', id]).status, 0);
  }
  assertClean(s);
});

sandboxTest('kill defaults to SIGTERM, with flags after the id too', ['sh', '-c', 'trap "echo got-term > /term; exit 0" TERM; while :; do sleep 0.05; done'], async (s) => {
  assert.is(s.tsrun(['run', '-d', '-b', s.bundle, s.id]).status, 0);
  await waitFor(() => s.state().status === 'running');
  assert.is(s.tsrun(['kill', s.id]).status, 0);
  await waitFor(() => fs.existsSync(path.join(s.bundle, 'rootfs/term')), 5000, 'the trap');
  await waitFor(() => s.state().status === 'stopped');
  assert.is(s.tsrun(['delete', s.id, '--force']).status, 0);
  assertClean(s);
});

sandboxTest('list: table, json, -q; empty json list is null', ['sleep', '1000'], (s) => {
  const empty = s.tsrun(['list', '--format', 'json']);
  assert.is(empty.stdout.trim(), 'null');
  assert.is(s.tsrun(['run', '-d', '-b', s.bundle, s.id]).status, 0);
  const json = JSON.parse(s.tsrun(['list', '--format', 'json']).stdout);
  assert.is(json.length, 1);
  assert.is(json[0].id, s.id);
  assert.is(json[0].status, 'running');
  const table = s.tsrun(['list']).stdout.split('\n');
  assert.match(table[0], /^ID\s+PID\s+STATUS\s+BUNDLE\s+CREATED\s+OWNER$/);
  assert.match(table[1], new RegExp(`^${s.id}\\s+\\d+\\s+running\\s+${s.bundle}\\s+\\S+\\s+root$`));
  assert.is(s.tsrun(['list', '-q']).stdout, `${s.id}\n`);
  assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
  assertClean(s);
});

sandboxTest('bad container ids are refused before any path is built', undefined, (s) => {
  for (const id of ['../escape', 'a/b', '.', '..', 'white space', '']) {
    const r = s.tsrun(['create', '-b', s.bundle, id]);
    assert.is(r.status, 1, `id ${JSON.stringify(id)}`);
    assert.match(r.stderr, /container id|Not enough non-option arguments/);
  }
  assert.not.ok(fs.existsSync(path.join(s.dir, 'escape')));
  assertClean(s);
});

sandboxTest('an id in use is refused with runc\'s message', ['sleep', '1000'], (s) => {
  assert.is(s.tsrun(['create', '-b', s.bundle, s.id]).status, 0);
  const r = s.tsrun(['create', '-b', s.bundle, s.id]);
  assert.is(r.status, 1);
  assert.match(r.stderr, 'container with given ID already exists');
  assert.is(s.state().status, 'created', 'the first container is untouched');
  assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
  assertClean(s);
});

sandboxTest('operations on an unknown id fail with "container does not exist"', undefined, (s) => {
  for (const args of [['state', 'nope'], ['start', 'nope'], ['kill', 'nope'], ['delete', 'nope']]) {
    const r = s.tsrun(args);
    assert.is(r.status, 1, args.join(' '));
    assert.match(r.stderr, 'container does not exist');
  }
});

sandboxTest('delete -f of an unknown id succeeds silently (runc; clients run it after a failed create)', undefined, (s) => {
  const r = s.tsrun(['delete', '-f', 'nope']);
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stderr, '');
  assert.is(r.stdout, '');
});

sandboxTest('-h on every command prints its help; an unknown command fails, also with -h', undefined, (s) => {
  for (const cmd of ['create', 'start', 'run', 'state', 'list', 'kill', 'delete', 'spec', 'exec', 'ps', 'features', 'pause', 'resume', 'update', 'events']) {
    const r = s.tsrun([cmd, '-h']);
    assert.is(r.status, 0, `${cmd} -h: ${r.stderr}`);
    assert.ok(r.stdout.startsWith(`tsrun ${cmd}`), `${cmd} -h prints that command's usage: ${r.stdout.split('\n')[0]}`);
  }
  for (const args of [['bogus'], ['bogus', '-h'], ['--debug', 'bogus', '--help']]) {
    const r = s.tsrun(args);
    assert.is(r.status, 1, args.join(' '));
    assert.match(r.stderr, 'unknown command "bogus"');
  }
});

sandboxTest('malformed config.json: error names the file, nothing left', undefined, (s) => {
  fs.writeFileSync(path.join(s.bundle, 'config.json'), '{"ociVersion": "1.2.0", ');
  const r = s.tsrun(['create', '-b', s.bundle, s.id]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /config\.json/);
  assertClean(s);
});

sandboxTest('schema violations are all listed with their JSON pointer', undefined, (s) => {
  s.config.process.args = 'sh';
  s.config.mounts[0].destination = 5;
  s.writeConfig();
  const r = s.tsrun(['create', '-b', s.bundle, s.id]);
  assert.is(r.status, 1);
  assert.match(r.stderr, '/process/args must be array');
  assert.match(r.stderr, '/mounts/0/destination must be string');
  assertClean(s);
});

sandboxTest('a missing rootfs is named', undefined, (s) => {
  fs.rmSync(path.join(s.bundle, 'rootfs'), { recursive: true });
  const r = s.tsrun(['create', '-b', s.bundle, s.id]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /rootfs/);
  assert.match(r.stderr, /does not exist|no such file/);
  assertClean(s);
});

sandboxTest('a missing executable fails create with runc\'s message, nothing left', ['no-such-binary'], (s) => {
  const before = new Set(initProcesses());
  const r = s.tsrun(['create', '-b', s.bundle, s.id]);
  assert.is(r.status, 1);
  assert.match(r.stderr, 'exec: "no-such-binary": executable file not found in $PATH');
  assertClean(s);
  assert.equal(initProcesses().filter((p) => !before.has(p)), [], 'no init left');
});

sandboxTest('a missing absolute executable is named', ['/bin/nope'], (s) => {
  const r = s.tsrun(['create', '-b', s.bundle, s.id]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /\/bin\/nope: no such file or directory/);
  assertClean(s);
});

sandboxTest('hooks run in order with the state on stdin; poststop after delete', ['sh', '-c', 'echo process >> /hooks.log'], (s) => {
  const log = path.join(s.bundle, 'rootfs/hooks.log');
  const hook = (name: string) => ({
    path: '/bin/sh',
    args: ['sh', '-c', `read -r state; echo "${name} $state" >> ${log}`],
  });
  // createContainer and startContainer run inside the container (after the mounts, the rootfs
  // still reachable by host path before pivot_root for createContainer; startContainer sees the
  // container's root).
  s.config.hooks = {
    prestart: [hook('prestart')],
    createRuntime: [hook('createRuntime')],
    createContainer: [hook('createContainer')],
    startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'read -r state; echo "startContainer $state" >> /hooks.log'] }],
    poststart: [hook('poststart')],
    poststop: [hook('poststop')],
  };
  s.writeConfig();
  assert.is(s.tsrun(['create', '-b', s.bundle, s.id]).status, 0);
  assert.is(s.tsrun(['start', s.id]).status, 0);
  return waitFor(() => s.state().status === 'stopped').then(() => {
    assert.is(s.tsrun(['delete', s.id]).status, 0);
    const lines = fs.readFileSync(log, 'utf8').trim().split('\n');
    const names = lines.map((l) => l.split(' ')[0]);
    assert.equal(names.filter((n) => n !== 'process' && n !== 'poststart'), ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststop']);
    assert.ok(names.indexOf('poststart') > names.indexOf('createContainer'));
    for (const l of lines.filter((l) => !l.startsWith('process'))) {
      const st = JSON.parse(l.slice(l.indexOf(' ') + 1));
      assert.is(st.id, s.id);
      assert.is(st.bundle, s.bundle);
    }
    const poststop = JSON.parse(lines.find((l) => l.startsWith('poststop'))!.slice(9));
    assert.is(poststop.status, 'stopped');
    assertClean(s);
  });
});

sandboxTest('a failing prestart hook fails create and leaves nothing', ['true'], (s) => {
  s.config.hooks = { prestart: [{ path: '/bin/sh', args: ['sh', '-c', 'echo boom >&2; exit 7'] }] };
  s.writeConfig();
  const r = s.tsrun(['create', '-b', s.bundle, s.id]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /prestart hook #0 \(\/bin\/sh\): exit status 7/);
  assertClean(s);
});

sandboxTest('a hook past its timeout is killed and fails create', ['true'], (s) => {
  s.config.hooks = { createRuntime: [{ path: '/bin/sleep', args: ['sleep', '30'], timeout: 1 }] };
  s.writeConfig();
  const started = Date.now();
  const r = s.tsrun(['create', '-b', s.bundle, s.id]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /createRuntime hook #0 \(\/bin\/sleep\): timeout after 1s/);
  assert.ok(Date.now() - started < 15_000);
  assertClean(s);
});

sandboxTest('a failing createContainer hook (run by the init) fails create and the poststop hooks run (control: a failure before any hook runs none)', ['true'], (s) => {
  // No prestart/createRuntime hooks: the init tells the parent the createContainer hooks begin.
  const marker = path.join(s.dir, 'poststop-ran');
  const poststop = [{ path: '/bin/sh', args: ['sh', '-c', `echo ran > ${marker}`] }];
  s.config.hooks = { createContainer: [{ path: '/bin/false' }], poststop };
  s.writeConfig();
  const r = s.tsrun(['create', '-b', s.bundle, s.id]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /\/bin\/false/);
  assert.ok(fs.existsSync(marker), 'poststop ran after the failed createContainer hook');
  assertClean(s);
  fs.rmSync(marker);
  s.config.hooks = { createContainer: [{ path: '/bin/true' }], poststop };
  s.config.mounts.push({ destination: '/x', type: 'bind', source: '/nonexistent-tsrun-source', options: ['rbind'] });
  s.writeConfig();
  const early = s.tsrun(['create', '-b', s.bundle, s.id]);
  assert.is(early.status, 1);
  assert.not.ok(fs.existsSync(marker), 'no poststop for a create that failed before any hook');
  assertClean(s);
});

sandboxTest('50 concurrent creates of one id: exactly one succeeds', ['sleep', '1000'], async (s) => {
  const results = await Promise.all(Array.from({ length: 50 }, () => s.tsrunAsync(['create', '-b', s.bundle, s.id], { timeout: 60_000 })));
  const ok = results.filter((r) => r.status === 0);
  assert.is(ok.length, 1, results.filter((r) => r.status !== 0 && !r.stderr.includes('already exists')).map((r) => r.stderr).join('\n'));
  for (const r of results.filter((r) => r.status !== 0)) assert.match(r.stderr, 'container with given ID already exists');
  assert.is(s.state().status, 'created');
  assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
  assertClean(s);
});

sandboxTest('delete racing start never leaves a half state', ['sleep', '1000'], async (s) => {
  for (let i = 0; i < 5; i++) {
    const id = `${s.id}-${i}`;
    assert.is(s.tsrun(['create', '-b', s.bundle, id]).status, 0);
    const [start, del] = await Promise.all([s.tsrunAsync(['start', id]), s.tsrunAsync(['delete', '-f', id])]);
    assert.is(del.status, 0, del.stderr);
    assert.ok(start.status === 0 || /does not exist|stopped|exec fifo/.test(start.stderr), start.stderr);
    const st = s.tsrun(['state', id]);
    assert.is(st.status, 1, `state after the race: ${st.stdout}`);
  }
  assertClean(s);
});

sandboxTest('kill racing delete -f: delete wins cleanly, kill either signals or finds nothing', ['sleep', '1000'], async (s) => {
  for (let i = 0; i < 5; i++) {
    const id = `${s.id}-${i}`;
    assert.is(s.tsrun(['run', '-d', '-b', s.bundle, id]).status, 0);
    const [kill, del] = await Promise.all([s.tsrunAsync(['kill', id, 'KILL']), s.tsrunAsync(['delete', '-f', id])]);
    assert.is(del.status, 0, del.stderr);
    assert.ok(kill.status === 0 || /does not exist|not running/.test(kill.stderr), `kill: ${kill.status} ${kill.stderr}`);
    assert.is(s.tsrun(['state', id]).status, 1, 'gone after the race');
  }
  assertClean(s);
});

sandboxTest('update racing update on different resources: neither is lost', ['sleep', '1000'], async (s) => {
  s.config.linux.resources = { memory: { limit: 64 << 20 }, cpu: { shares: 512 } };
  s.writeConfig();
  assert.is(s.tsrun(['run', '-d', '-b', s.bundle, s.id]).status, 0);
  for (let i = 0; i < 6; i++) {
    const mem = (40 + i) << 20;
    const shares = 300 + i;
    const [a, b] = await Promise.all([s.tsrunAsync(['update', '--memory', String(mem), s.id]), s.tsrunAsync(['update', '--cpu-share', String(shares), s.id])]);
    assert.is(a.status, 0, a.stderr);
    assert.is(b.status, 0, b.stderr);
    const saved = JSON.parse(fs.readFileSync(path.join(s.root, s.id, 'state.json'), 'utf8'));
    assert.is(saved.config.linux.resources.memory.limit, mem, `round ${i}: the memory update is recorded`);
    assert.is(saved.config.linux.resources.cpu.shares, shares, `round ${i}: the cpu update is recorded`);
  }
  assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
  assertClean(s);
});

sandboxTest('a recorded pid whose start time differs is never signalled', ['sleep', '1000'], (s) => {
  assert.is(s.tsrun(['run', '-d', '-b', s.bundle, s.id]).status, 0);
  const file = path.join(s.root, s.id, 'state.json');
  const saved = JSON.parse(fs.readFileSync(file, 'utf8'));
  const realPid = saved.initPid;
  // Pretend the init died and its pid was reused by another process.
  saved.initStartTime += 1;
  fs.writeFileSync(file, JSON.stringify(saved));
  assert.is(s.state().status, 'stopped');
  const k = s.tsrun(['kill', s.id, 'KILL']);
  assert.is(k.status, 1);
  assert.ok(fs.existsSync(`/proc/${realPid}`), 'the (re-used) pid was not signalled');
  saved.initStartTime -= 1;
  fs.writeFileSync(file, JSON.stringify(saved));
  assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
  assertClean(s);
});

sandboxTest('--log with --log-format json writes JSON records', undefined, (s) => {
  const log = path.join(s.dir, 'log.json');
  const r = s.tsrun(['--log', log, '--log-format', 'json', 'state', 'nope']);
  assert.is(r.status, 1);
  const lines = fs.readFileSync(log, 'utf8').trim().split('\n');
  const rec = JSON.parse(lines[lines.length - 1]);
  assert.is(rec.level, 'error');
  assert.is(rec.msg, 'container does not exist');
  assert.match(rec.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);
});

test('--version prints runc-shaped lines', () => {
  const r = spawnSync(TSRUN, ['--version'], { encoding: 'utf8' });
  assert.is(r.status, 0);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0], /^tsrun version \d+\.\d+\.\d+/);
  assert.match(lines[1], /^commit: \S+/);
  assert.match(lines[2], /^spec: 1\.2\.\d+/);
});

test('--rootless takes true|false|auto (true as root: runc\'s rootless cgroup manager, the container runs; --systemd-cgroup: test/systemd.test.ts)', () => {
  const s = new Sandbox(['true']);
  try {
    const b = s.tsrun(['--rootless', 'bogus', 'create', '-b', s.bundle, s.id]);
    assert.is(b.status, 1);
    assert.match(b.stderr, '--rootless: invalid value "bogus" (true, false or auto)');
    assertClean(s);
    const c = s.tsrun(['--rootless', 'true', 'run', '-b', s.bundle, s.id]);
    assert.is(c.status, 0, c.stderr);
    assertClean(s);
  } finally {
    s.cleanup();
  }
});

test.run();
