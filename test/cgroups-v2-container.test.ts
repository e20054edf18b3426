/**
 * Whole containers on a pure cgroup v2 host (run inside the cgroup v2 VM by
 * test/cgroups-v2-vm.sh): memory.max applied and enforced, the device eBPF program in force,
 * pause through cgroup.freeze, nothing left in the cgroup tree afterwards. On any other host the
 * file says plainly that it did not run and counts nothing as passed.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { detectLayout } from '../src/cgroups';
import { lonelyFront, REPO, sandboxTest, type SandboxBody, waitFor } from './helpers/tsrun';

const layout = detectLayout();

if (layout !== 'v2') {
  console.log(`    cgroups-v2-container: this host is "${layout}", not cgroup v2: these container tests did NOT run here (they run in the cgroup v2 VM)`);
  test.skip('containers on cgroup v2 (needs a cgroup v2 host)', () => {});
} else {
  // Every name: in the cgroup v2 VM, TEST_GREP=killed is crash.test.ts's filter, not these tests'.
  const withSandbox = (name: string, args: string[], body: SandboxBody) => sandboxTest(name, args, body, { everyName: true });

  withSandbox('memory limit: memory.max written, a 100 MB allocation in 32 MB is killed (137)', ['sh', '-c', 'cat /sys/fs/cgroup/memory.max; x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo survived ${#x}'], (s) => {
    s.config.linux.resources = { memory: { limit: 32 * 1024 * 1024, swap: 32 * 1024 * 1024 } };
    s.config.linux.namespaces.push({ type: 'cgroup' });
    s.config.mounts.push({ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'ro'] });
    s.writeConfig();
    const r = s.tsrun(['run', '-b', s.bundle, s.id], { timeout: 120_000 });
    assert.match(r.stdout, /^33554432$/m);
    assert.not.match(r.stdout, 'survived');
    assert.is(r.status, 137, r.stderr);
    assert.equal(s.leftovers(), []);
  });

  withSandbox('device cgroup (eBPF): a bind-mounted host device outside the allow-list cannot be opened', ['sh', '-c', 'echo ok > /dev/null && echo null-ok; head -c 1 /dev/kmsg >/dev/null 2>&1 && echo kmsg-open || echo kmsg-denied'], (s) => {
    s.config.mounts.push({ destination: '/dev/kmsg', type: 'bind', source: '/dev/kmsg', options: ['bind'] });
    s.writeConfig();
    const r = s.tsrun(['run', '-b', s.bundle, s.id], { timeout: 120_000 });
    assert.is(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n'), ['null-ok', 'kmsg-denied']);
    assert.equal(s.leftovers(), []);
  });

  withSandbox('events --stats: the limits and counters of the container\'s cgroup, from the front door alone as from the engine CLI', ['sh', '-c', 'sleep 1000 & sleep 1000'], (s) => {
    s.config.linux.resources = { memory: { limit: 64 * 1024 * 1024 }, pids: { limit: 50 } };
    s.writeConfig();
    assert.is(s.tsrun(['run', '-d', '-b', s.bundle, s.id], { timeout: 120_000 }).status, 0);
    const args = ['--root', s.root, 'events', '--stats', s.id];
    const alone = spawnSync(lonelyFront(s.dir), args, { encoding: 'utf8', timeout: 60_000 });
    const viaCli = spawnSync(path.join(REPO, 'bin/.tsrun-cli'), args, { encoding: 'utf8', timeout: 60_000 });
    for (const [what, r] of [['front door alone', alone], ['engine CLI', viaCli]] as const) {
      assert.is(r.status, 0, `${what}: ${r.stderr}`);
      const d = JSON.parse(r.stdout).data;
      assert.is(d.memory.usage.limit, 64 * 1024 * 1024, what);
      assert.ok(d.memory.usage.usage > 0, what);
      assert.is(d.pids.limit, 50, what);
      assert.ok(d.pids.current >= 2, `${what}: ${d.pids.current}`);
      assert.ok(d.cpu.usage.total > 0, what);
      assert.ok(Array.isArray(d.cpuset.cpus) && d.cpuset.cpus.length > 0, what);
    }
    assert.is(s.tsrun(['delete', '-f', s.id], { timeout: 60_000 }).status, 0);
    assert.equal(s.leftovers(), []);
  });

  withSandbox('pause/resume through cgroup.freeze', ['sleep', '1000'], async (s) => {
    assert.is(s.tsrun(['run', '-d', '-b', s.bundle, s.id], { timeout: 120_000 }).status, 0);
    const saved = JSON.parse(fs.readFileSync(path.join(s.root, s.id, 'state.json'), 'utf8'));
    const dir = saved.cgroup.paths[''];
    assert.is(s.tsrun(['pause', s.id], { timeout: 60_000 }).status, 0);
    assert.is(s.state().status, 'paused');
    assert.match(fs.readFileSync(path.join(dir, 'cgroup.events'), 'utf8'), /frozen 1/);
    assert.is(s.tsrun(['resume', s.id], { timeout: 60_000 }).status, 0);
    await waitFor(() => s.state().status === 'running', 30_000);
    assert.is(s.tsrun(['delete', '-f', s.id], { timeout: 60_000 }).status, 0);
    assert.not.ok(fs.existsSync(dir), 'cgroup removed');
    assert.equal(s.leftovers(), []);
  });
}

test.run();
