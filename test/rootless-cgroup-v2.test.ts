/**
 * Rootless with a delegated cgroup v2 subtree (run inside the cgroup v2 VM by
 * test/cgroups-v2-vm.sh): root delegates /sys/fs/cgroup/<deleg> to the test user the way
 * systemd's Delegate=yes does (the directory and its cgroup.procs, cgroup.subtree_control and
 * cgroup.threads are the user's; memory and pids enabled), tsrun runs as the user from
 * <deleg>/shell with linux.cgroupsPath /<deleg>/<id>: the memory limit is written and enforced,
 * pause/resume go through cgroup.freeze, and nothing is left. On any other host the file says
 * plainly that it did not run.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { detectLayout } from '../src/cgroups';
import { Sandbox, TSRUN, waitFor, type Result } from './helpers/tsrun';

const layout = detectLayout();
const DELEG = `tsrun-rootless-${process.pid}`;
const DIR = path.join('/sys/fs/cgroup', DELEG);
const OWNED = ['', 'cgroup.procs', 'cgroup.subtree_control', 'cgroup.threads'];

/** tsrun as the sandbox's user, started from <deleg>/shell (root moves the shell there first). */
function tsrunDelegated(s: Sandbox, args: string[], timeout = 180_000): Result {
  const u = s.user!;
  const sp = s.spawnArgs(args);
  const env = Object.entries(sp.opts.env).map(([k, v]) => `${k}=${v}`);
  // Files, not pipes: a detached container keeps its stdio (as with runc).
  const out = path.join(s.dir, '.deleg-out');
  const err = path.join(s.dir, '.deleg-err');
  const fds = [fs.openSync(out, 'w+'), fs.openSync(err, 'w+')];
  try {
    const r = spawnSync('sh', ['-c', 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"', 'sh', path.join(DIR, 'shell'),
      'setpriv', `--reuid=${u.uid}`, `--regid=${u.gid}`, '--clear-groups', 'env', '-i', ...env, TSRUN, ...sp.argv], { cwd: s.dir, stdio: ['ignore', fds[0], fds[1]], timeout });
    if (r.error) throw r.error;
    return { status: r.status, signal: r.signal, stdout: fs.readFileSync(out, 'utf8'), stderr: fs.readFileSync(err, 'utf8') };
  } finally {
    for (const fd of fds) fs.closeSync(fd);
    fs.rmSync(out, { force: true });
    fs.rmSync(err, { force: true });
  }
}

function delegatedSandbox(args: string[]): Sandbox {
  const s = new Sandbox(args, 'rlv2', { rootless: true });
  s.config.linux.cgroupsPath = `/${DELEG}/${s.id}`;
  s.writeConfig();
  return s;
}

if (layout !== 'v2') {
  console.log(`    rootless-cgroup-v2: this host is "${layout}", not cgroup v2: the delegated-cgroup rootless tests did NOT run here (they run in the cgroup v2 VM)`);
  test.skip('rootless containers in a delegated cgroup v2 subtree (needs a cgroup v2 host)', () => {});
} else {
  const rtest = (name: string, args: string[], body: (s: Sandbox) => Promise<void> | void) =>
    test(name, async () => {
      const s = delegatedSandbox(args);
      try {
        await body(s);
      } finally {
        s.cleanup();
      }
    });

  test.before(() => {
    const s = new Sandbox(['true'], 'rlv2-user', { rootless: true }); // makes the user
    const u = s.user!;
    s.cleanup();
    fs.writeFileSync('/sys/fs/cgroup/cgroup.subtree_control', '+memory +pids');
    fs.mkdirSync(DIR);
    fs.mkdirSync(path.join(DIR, 'shell'));
    fs.writeFileSync(path.join(DIR, 'cgroup.subtree_control'), '+memory +pids');
    for (const d of [DIR, path.join(DIR, 'shell')]) for (const f of OWNED) fs.chownSync(path.join(d, f), u.uid, u.gid);
  });

  test.after(() => {
    for (const d of [path.join(DIR, 'shell'), DIR]) {
      try {
        fs.rmdirSync(d);
      } catch (e) {
        console.log(`    cleanup: ${d}: ${(e as Error).message}`);
      }
    }
    assert.not.ok(fs.existsSync(DIR), `${DIR} left behind`);
  });

  rtest('rootless memory limit in a delegated subtree: memory.max written, a 24 MB allocation in 8 MB is killed (137)', ['sh', '-c', 'cat /sys/fs/cgroup/memory.max; x=$(head -c 24000000 /dev/zero | tr "\\0" a); echo survived ${#x}'], (s) => {
    s.config.linux.resources = { memory: { limit: 8 * 1024 * 1024, swap: 8 * 1024 * 1024 } };
    s.config.linux.namespaces.push({ type: 'cgroup' });
    s.config.mounts.push({ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'ro'] });
    s.writeConfig();
    const r = tsrunDelegated(s, ['run', '-b', s.bundle, s.id]);
    assert.match(r.stdout, /^8388608$/m, r.stderr);
    assert.not.match(r.stdout, 'survived');
    assert.is(r.status, 137, r.stderr);
    assert.not.match(r.stderr, 'rootless: no permission', 'the delegated cgroup was skipped');
    assert.equal(s.leftovers(), []);
  });

  rtest('control: the same allocation without the limit survives (the kill above is the limit\'s)', ['sh', '-c', 'x=$(head -c 24000000 /dev/zero | tr "\\0" a); echo survived ${#x}'], (s) => {
    const r = tsrunDelegated(s, ['run', '-b', s.bundle, s.id]);
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stdout, 'survived 24000000');
    assert.equal(s.leftovers(), []);
  });

  rtest('rootless pause/resume through cgroup.freeze of the delegated cgroup; ps from the cgroup', ['sleep', '1000'], async (s) => {
    const run = tsrunDelegated(s, ['run', '-d', '-b', s.bundle, s.id]);
    assert.is(run.status, 0, run.stderr);
    const dir = path.join(DIR, s.id);
    assert.is(fs.statSync(dir).uid, s.user!.uid, 'the container cgroup is the user\'s');
    const pid = s.state().pid;
    assert.match(fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8'), new RegExp(`^${pid}$`, 'm'));
    assert.is(tsrunDelegated(s, ['pause', s.id]).status, 0);
    assert.is(s.state().status, 'paused');
    assert.match(fs.readFileSync(path.join(dir, 'cgroup.events'), 'utf8'), /frozen 1/);
    assert.is(tsrunDelegated(s, ['resume', s.id]).status, 0);
    await waitFor(() => s.state().status === 'running', 60_000);
    const upd = tsrunDelegated(s, ['update', '--memory', '64m', s.id]);
    assert.is(upd.status, 0, upd.stderr);
    assert.is(fs.readFileSync(path.join(dir, 'memory.max'), 'utf8').trim(), String(64 * 1024 * 1024));
    assert.is(tsrunDelegated(s, ['delete', '-f', s.id]).status, 0);
    assert.not.ok(fs.existsSync(dir));
    assert.equal(s.leftovers(), []);
  });
}

test.run();
