/**
 * Rootless containers (#15): tsrun run by a dedicated unprivileged user (scripts/rootless-user.sh
 * makes it, with /etc/subuid and /etc/subgid ranges), compared with what runc 1.1 does as the
 * same user. Each sandbox is a directory the user owns (bundle, rootfs, XDG_RUNTIME_DIR); tsrun
 * gets no --root, so its state must land in $XDG_RUNTIME_DIR/tsrun.
 *
 * This host cannot give the user a cgroup (hybrid layout, no systemd, root-owned cgroupfs): the
 * cgroup is skipped with a warning, as runc's rootless cgroup manager does. A delegated cgroup v2
 * subtree with an enforced memory limit is test/rootless-cgroup-v2.test.ts, in the cgroup v2 VM.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseRootlessFlag } from '../src/container/rootless';
import { CAPABILITY_NAMES, lastCap } from '../src/bundle/capabilities';
import { CONSOLE_RECEIVER, ROOTLESS_SUBID, rootlessUser, Sandbox, TSRUN, waitFor, type Result } from './helpers/tsrun';

const SUBID = ROOTLESS_SUBID;

function rtest(name: string, args: string[], body: (s: Sandbox) => Promise<void> | void): void {
  test(name, async () => {
    const s = new Sandbox(args, 'rl', { rootless: true });
    try {
      await body(s);
    } finally {
      s.cleanup();
    }
  });
}

/** Runs a command line as the sandbox's user (its env), in the bundle. */
function asUser(s: Sandbox, cmd: string, args: string[], input?: string, timeout = 30_000): Result {
  const sp = s.spawnArgs([]);
  const r = spawnSync(cmd, args, { cwd: s.bundle, uid: sp.opts.uid, gid: sp.opts.gid, env: sp.opts.env, input, encoding: 'utf8', timeout });
  if (r.error) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

const hostStatus = (pid: number, key: string) => (fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${key}:\\s*(.*)$`, 'm')) ?? [])[1];

test.before(() => {
  const u = rootlessUser();
  // The user must reach everything through the host's ordinary permissions.
  for (const p of [TSRUN, fs.realpathSync(path.join(__dirname, '../node_modules/node/bin/node'))]) {
    const r = spawnSync('sh', ['-c', `test -x "${p}"`], { uid: u.uid, gid: u.gid });
    assert.is(r.status, 0, `${p} is not executable for ${u.name}: check the path's permissions`);
  }
});

rtest('spec --rootless writes a config that runs as it is (terminal sh), exit status and output through the pty', ['true'], (s) => {
  fs.rmSync(path.join(s.bundle, 'config.json'));
  const spec = s.tsrun(['spec', '--rootless', '-b', s.bundle]);
  assert.is(spec.status, 0, spec.stderr);
  const config = JSON.parse(fs.readFileSync(path.join(s.bundle, 'config.json'), 'utf8'));
  const u = s.user!;
  assert.equal(config.linux.uidMappings, [{ containerID: 0, hostID: u.uid, size: 1 }]);
  assert.equal(config.linux.gidMappings, [{ containerID: 0, hostID: u.gid, size: 1 }]);
  assert.is(config.process.terminal, true);
  // Unchanged config: `sh` on a terminal (script(1) gives tsrun one, as a person's shell would).
  const r = asUser(s, 'script', ['-qec', `${TSRUN} run ${s.id}`, '/dev/null'], 'id -u; cat /proc/self/uid_map; exit 7\n');
  assert.is(r.status, 7, `run: ${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /\r\n0\r\n/);
  assert.match(r.stdout, new RegExp(`\\s0\\s+${u.uid}\\s+1\\r\\n`));
  // runc's rootless cgroup manager: no permission here, skipped, and said so.
  assert.match(r.stdout + r.stderr, 'rootless: no permission for cgroups');
  assert.equal(s.leftovers(), []);
});

rtest('uid 0 inside is the user outside; setgroups is "deny"; a root-owned host file stays unwritable even with every capability', ['sh', '-c', 'cat /proc/self/setgroups; id -u; echo breach >> /host/root-file && echo WROTE-ROOT; echo ok >> /host/user-file && echo WROTE-USER; chown 0:0 /host/user-file 2>&1; sleep 30'], async (s) => {
  const hostDir = path.join(s.dir, 'host');
  fs.mkdirSync(hostDir, { mode: 0o755 });
  fs.writeFileSync(path.join(hostDir, 'root-file'), 'root\n', { mode: 0o644 }); // root's, as every host file
  fs.writeFileSync(path.join(hostDir, 'user-file'), 'user\n', { mode: 0o644 });
  fs.chownSync(path.join(hostDir, 'user-file'), s.user!.uid, s.user!.gid); // control: the user may write it
  s.config.mounts.push({ destination: '/host', type: 'bind', source: hostDir, options: ['rbind', 'rw'] });
  const names = CAPABILITY_NAMES.slice(0, lastCap() + 1);
  for (const set of ['bounding', 'effective', 'permitted']) s.config.process.capabilities[set] = names;
  s.writeConfig();
  const out = path.join(s.dir, 'out');
  fs.writeFileSync(out, '');
  fs.chownSync(out, s.user!.uid, s.user!.gid);
  const r = s.tsrun(['run', '-d', '-b', s.bundle, '--pid-file', path.join(s.dir, 'pid'), s.id]);
  assert.is(r.status, 0, r.stderr);
  const pid = Number(fs.readFileSync(path.join(s.dir, 'pid'), 'utf8'));
  // From the host: every id of the container's root is the user's; its capabilities (all of them)
  // belong to its own user namespace, whose owner is the user.
  assert.is(hostStatus(pid, 'Uid'), `${s.user!.uid}\t${s.user!.uid}\t${s.user!.uid}\t${s.user!.uid}`);
  assert.is(hostStatus(pid, 'Gid').split('\t')[0], String(s.user!.gid));
  assert.is(fs.readFileSync(`/proc/${pid}/uid_map`, 'utf8').trim().split(/\s+/).join(' '), `0 ${s.user!.uid} 1`);
  assert.is(fs.readFileSync(`/proc/${pid}/setgroups`, 'utf8').trim(), 'deny');
  assert.is.not(fs.readlinkSync(`/proc/${pid}/ns/user`), fs.readlinkSync('/proc/self/ns/user'));
  const ex = s.tsrun(['exec', s.id, 'sh', '-c', 'cat /proc/self/setgroups; id -u; grep CapEff /proc/self/status; cat /host/root-file /host/user-file']);
  assert.is(ex.status, 0, ex.stderr);
  assert.match(ex.stdout, /^deny\n0\nCapEff:\s*000001ffffffffff|^deny\n0\nCapEff:\s*[0-9a-f]*f{8}/);
  assert.is(fs.readFileSync(path.join(hostDir, 'root-file'), 'utf8'), 'root\n', 'a root-owned host file was written from a rootless container');
  // The control shows the probe can write: the user's own file was appended to.
  assert.is(fs.readFileSync(path.join(hostDir, 'user-file'), 'utf8'), 'user\nok\n');
  assert.is(fs.statSync(path.join(hostDir, 'user-file')).uid, s.user!.uid);
  assert.match(ex.stdout, /^root\nuser\nok\n/m);
  assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
  assert.equal(s.leftovers(), []);
});

rtest('create/start/state/list/exec/ps/kill/delete as the user, state in $XDG_RUNTIME_DIR/tsrun (0700, the user\'s); pause/update refused without a cgroup; nothing left', ['sleep', '60'], async (s) => {
  s.config.process.oomScoreAdj = 500;
  s.writeConfig();
  const c = s.tsrun(['create', '-b', s.bundle, s.id]);
  assert.is(c.status, 0, c.stderr);
  assert.match(c.stderr, /rootless: no permission for cgroups \(mkdir \/sys\/fs\/cgroup\/\S+: permission denied/);
  const st = fs.statSync(s.root);
  assert.is(st.uid, s.user!.uid);
  assert.is(st.mode & 0o777, 0o700);
  assert.ok(fs.existsSync(path.join(s.root, s.id, 'state.json')), `no state under ${s.root}`);
  assert.is(s.state().status, 'created');
  const list = s.tsrun(['list']);
  assert.match(list.stdout, new RegExp(`^${s.id}\\s+\\d+\\s+created\\s.*\\s${s.user!.name}$`, 'm'));
  // exec into the created container (runc allows it: its init is dumpable when it joins no
  // namespace). The init is dumpable again only now, as the container's process: its /proc files
  // are the user's, so exec's stage 0 can open its namespaces.
  const initPid = s.state().pid;
  const early = s.tsrun(['exec', s.id, 'sh', '-c', 'id -u; echo created-exec-ok']);
  assert.is(early.status, 0, early.stderr);
  assert.is(early.stdout, '0\ncreated-exec-ok\n');
  assert.is(fs.statSync(`/proc/${initPid}/ns`).uid, s.user!.uid, 'a created rootless init\'s /proc files are the user\'s');
  assert.is(s.state().status, 'created');
  assert.is(s.tsrun(['start', s.id]).status, 0);
  assert.is(s.state().status, 'running');
  const ex = s.tsrun(['exec', s.id, 'sh', '-c', 'id -u; echo exec-ok']);
  assert.is(ex.status, 0, ex.stderr);
  assert.is(ex.stdout, '0\nexec-ok\n');
  // oomScoreAdj of the config (500, a raise: allowed unprivileged) for the exec'd process too.
  const oom = s.tsrun(['exec', s.id, 'cat', '/proc/self/oom_score_adj']);
  assert.is(oom.stdout, '500\n', oom.stderr);
  const eg = s.tsrun(['exec', '-g', '5', s.id, 'true']);
  assert.is(eg.status, 255, eg.stderr);
  assert.match(eg.stderr, 'cannot set any additional groups in a rootless container');
  const ps = s.tsrun(['ps', '--format', 'json', s.id]);
  assert.is(ps.status, 0, ps.stderr);
  assert.ok(JSON.parse(ps.stdout).includes(s.state().pid), ps.stdout);
  const pause = s.tsrun(['pause', s.id]);
  assert.is(pause.status, 1);
  assert.match(pause.stderr, 'cannot toggle freezer: cgroups not configured for container');
  const upd = s.tsrun(['update', '--memory', '32m', s.id]);
  assert.is(upd.status, 1);
  assert.match(upd.stderr, 'container could not join or create cgroup');
  const ev = s.tsrun(['events', '--stats', s.id]);
  assert.is(ev.status, 0, ev.stderr);
  assert.is(JSON.parse(ev.stdout).type, 'stats');
  assert.is(s.tsrun(['kill', s.id, 'KILL']).status, 0);
  await waitFor(() => s.state().status === 'stopped');
  assert.is(s.tsrun(['delete', s.id]).status, 0);
  assert.equal(fs.readdirSync(s.root), []);
  assert.equal(s.leftovers(), []);
});

rtest('multi-range mappings go through newuidmap/newgidmap: container uid 1000 is subuid+999 on the host', ['sh', '-c', 'cat /proc/self/uid_map /proc/self/gid_map; touch /tmp/f1000 && chown 1000:1000 /tmp/f1000 && echo chowned'], (s) => {
  const u = s.user!;
  s.config.linux.uidMappings = [{ containerID: 0, hostID: u.uid, size: 1 }, { containerID: 1, hostID: SUBID, size: 65536 }];
  s.config.linux.gidMappings = [{ containerID: 0, hostID: u.gid, size: 1 }, { containerID: 1, hostID: SUBID, size: 65536 }];
  for (const set of ['bounding', 'effective', 'permitted']) s.config.process.capabilities[set].push('CAP_CHOWN');
  s.writeConfig();
  const r = s.tsrun(['run', '-b', s.bundle, s.id]);
  assert.is(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '));
  assert.equal(lines, [`0 ${u.uid} 1`, `1 ${SUBID} 65536`, `0 ${u.gid} 1`, `1 ${SUBID} 65536`, 'chowned']);
  const st = fs.statSync(path.join(s.bundle, 'rootfs/tmp/f1000'));
  assert.is(st.uid, SUBID + 999);
  assert.is(st.gid, SUBID + 999);
  assert.equal(s.leftovers(), []);
});

rtest('a mapping the user is not granted in /etc/subuid is refused with runc\'s message; nothing left', ['true'], (s) => {
  const u = s.user!;
  s.config.linux.uidMappings = [{ containerID: 0, hostID: u.uid, size: 1 }, { containerID: 1, hostID: 200000, size: 10 }];
  s.writeConfig();
  const r = s.tsrun(['run', '-b', s.bundle, s.id]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /failed to use newuid map on \d+: newuidmap: uid range \[1-11\) -> \[200000-200010\) not allowed/);
  // Mapping someone else's uid directly (no newuidmap involved: a single range) fails too.
  s.config.linux.uidMappings = [{ containerID: 0, hostID: 0, size: 1 }];
  s.writeConfig();
  const r2 = s.tsrun(['run', '-b', s.bundle, s.id]);
  assert.is(r2.status, 1);
  assert.match(r2.stderr, /failed to use newuid map on \d+: newuidmap: uid range \[0-1\) -> \[0-1\) not allowed/);
  assert.equal(s.leftovers(), []);
});

rtest('runc\'s rootless refusals, each before anything exists: no user namespace, additional groups, unmapped user, a limit without a cgroup', ['true'], (s) => {
  const cases: [string, (c: any) => void, string][] = [
    ['no user namespace', (c) => {
      c.linux.namespaces = c.linux.namespaces.filter((n: any) => n.type !== 'user');
      delete c.linux.uidMappings; // (mappings without a user namespace are refused by the loader)
      delete c.linux.gidMappings;
    }, 'rootless container requires user namespaces'],
    ['no uid mapping', (c) => delete c.linux.uidMappings, 'a new user namespace needs uid mappings'], // the loader's check, before runc's
    ['additional groups', (c) => (c.process.user.additionalGids = [1]), 'cannot set any additional groups in a rootless container'],
    ['unmapped user', (c) => (c.process.user.uid = 1000), 'cannot set uid to unmapped user in user namespace'],
    ['an id-mapped bind (runc 1.2)', (c) => c.mounts.push({ destination: '/t', type: 'bind', source: '/tmp', options: ['rbind', 'idmap'] }), 'id-mapped mounts are not supported for rootless containers'],
    ['gid= of an unmapped group', (c) => c.mounts.push({ destination: '/t', type: 'tmpfs', source: 'tmpfs', options: ['gid=5'] }), 'cannot specify gid= mount options for unmapped gid in rootless containers'],
    ['memory limit', (c) => (c.linux.resources = { memory: { limit: 33554432 } }), 'cannot set memory limit: container could not join or create cgroup'],
  ];
  const base = JSON.stringify(s.config);
  for (const [what, change, message] of cases) {
    const c = JSON.parse(base);
    change(c);
    s.writeConfig(c);
    const r = s.tsrun(['run', '-b', s.bundle, s.id]);
    assert.is(r.status, 1, `${what}: ${r.stderr}`);
    assert.match(r.stderr, message, `${what}: ${r.stderr}`);
    assert.equal(s.leftovers(), [], what);
  }
  // And the same bundle without the change runs (the refusals are the changes' doing).
  s.writeConfig(JSON.parse(base));
  assert.is(s.tsrun(['run', '-b', s.bundle, s.id]).status, 0);
  assert.equal(s.leftovers(), []);
});

rtest('exec -t (pty proxied to the caller\'s terminal) and --console-socket as the user', ['sleep', '60'], async (s) => {
  assert.is(s.tsrun(['run', '-d', '-b', s.bundle, s.id]).status, 0);
  const t = asUser(s, 'script', ['-qec', `${TSRUN} exec -t ${s.id} sh -c 'tty; echo tty-ok'`, '/dev/null']);
  assert.is(t.status, 0, t.stdout + t.stderr);
  assert.match(t.stdout, /\/dev\/pts\/\d+\r\ntty-ok/, `exec -t printed ${JSON.stringify(t.stdout)}`);
  // --console-socket: a receiver of the user's own takes the pty master.
  const sock = path.join(s.dir, 'console.sock');
  const recv = asUser(s, 'python3', ['-c', CONSOLE_RECEIVER, sock, TSRUN, 'exec', '-t', '-d', '--console-socket', sock, s.id, 'sh', '-c', 'tty; echo console-ok']);
  assert.is(recv.status, 0, recv.stderr);
  assert.match(recv.stdout, /^fds 1 name /);
  assert.match(recv.stdout, /\/dev\/pts\/\d+\nconsole-ok/);
  assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
  assert.equal(s.leftovers(), []);
});

test('--rootless true|false|auto and the default --root: $XDG_RUNTIME_DIR/tsrun only for a user other than root (runc\'s rules)', () => {
  assert.is(parseRootlessFlag(undefined), null);
  assert.is(parseRootlessFlag('auto'), null);
  assert.is(parseRootlessFlag('true'), true);
  assert.is(parseRootlessFlag('0'), false);
  assert.throws(() => parseRootlessFlag('yes'), /--rootless: invalid value "yes"/);
  const u = rootlessUser();
  const debugRoot = (env: NodeJS.ProcessEnv, uid?: number, gid?: number) => {
    const r = spawnSync(TSRUN, ['--debug', 'list'], { env, uid, gid, encoding: 'utf8', cwd: '/' });
    return (r.stderr.match(/list: root (\S+),/) ?? [])[1];
  };
  // Root ignores $XDG_RUNTIME_DIR (runc keeps /run/runc for the real root).
  assert.is(debugRoot({ PATH: '/usr/bin:/bin', XDG_RUNTIME_DIR: '/tmp/nonexistent-xdg' }), '/run/tsrun');
  assert.is(debugRoot({ PATH: '/usr/bin:/bin', XDG_RUNTIME_DIR: '/tmp/nonexistent-xdg' }, u.uid, u.gid), '/tmp/nonexistent-xdg/tsrun');
  // No $XDG_RUNTIME_DIR: /run/tsrun, which the user cannot use (as runc's /run/runc).
  assert.is(debugRoot({ PATH: '/usr/bin:/bin' }, u.uid, u.gid), '/run/tsrun');
});

test.run();
