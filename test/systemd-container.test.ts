/**
 * The systemd cgroup driver with real containers and a real systemd (run inside the VM_INIT=systemd
 * cgroup v2 guest by test/systemd-vm.sh, against bin/tsrun and, with RUNTIME=/usr/sbin/runc,
 * against runc): the transient scope, its properties as systemctl shows them, the cgroup files,
 * update, pause/resume, delete, OOM, kill --all, stats, a unit left by a killed create, a client
 * (podman) end to end. On a host without systemd the file says so and counts nothing as passed.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { detectLayout, isRunningSystemd } from '../src/cgroups';
import { Sandbox, TSRUN, sleep } from './helpers/tsrun';
import { copyRootfs } from './helpers/rootfs';

const RUNC = path.basename(TSRUN) === 'runc';
const name = RUNC ? 'runc' : 'tsrun';

function sh(cmd: string, args: string[]): { status: number | null; out: string; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: (r.stdout ?? '').trim(), err: (r.stderr ?? '').trim() };
}

/** `systemctl show -p A,B unit` → {A: …, B: …}. */
function show(unit: string, props: string[]): Record<string, string> {
  const r = sh('systemctl', ['show', '-p', props.join(','), unit]);
  const out: Record<string, string> = {};
  for (const l of r.out.split('\n')) {
    const i = l.indexOf('=');
    if (i > 0) out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}

/** Every loaded unit (any state) whose name matches `pattern`. */
function unitsMatching(pattern: string): string[] {
  const r = sh('systemctl', ['list-units', '--all', '--plain', '--no-legend', pattern]);
  return r.out.split('\n').map((l) => l.trim().split(/\s+/)[0]).filter(Boolean);
}

const cg = (unit: string, slice = 'system.slice') => `/sys/fs/cgroup/${slice}/${unit}`;
const read = (f: string) => fs.readFileSync(f, 'utf8').trim();

if (!isRunningSystemd() || detectLayout() !== 'v2') {
  console.log(`    systemd-container: this host ${isRunningSystemd() ? 'is not cgroup v2' : 'does not run systemd'}: the systemd driver's container tests did NOT run here (they run in the VM_INIT=systemd guest: npm test -- systemd)`);
  test.skip('systemd cgroup driver with real containers (needs systemd + cgroup v2)', () => {});
} else {
  console.log(`    systemd-container: REAL systemd (${sh('systemctl', ['--version']).out.split('\n')[0]}) on cgroup v2, runtime ${TSRUN}`);
  const withSandbox = (title: string, args: string[], body: (s: Sandbox, unit: string) => Promise<void> | void) =>
    test(`${name}: ${title}`, async () => {
      const s = new Sandbox(args, 'sd');
      const unit = `tsrun-${s.id}.scope`;
      try {
        await body(s, unit);
      } finally {
        s.cleanup();
        // A unit that outlived its container fails the test that left it (and is stopped here).
        if (unitsMatching(`*${s.id}*`).length) {
          sh('systemctl', ['stop', unit]);
          sh('systemctl', ['reset-failed', unit]);
        }
      }
    });

  withSandbox('create/start in system.slice:tsrun:<id>: active scope, MemoryMax/TasksMax as configured, the files too; update; pause/resume; delete removes unit and directory', ['sleep', '300'], async (s, unit) => {
    s.config.linux.cgroupsPath = `system.slice:tsrun:${s.id}`;
    s.config.linux.resources = { memory: { limit: 64 * 1024 * 1024 }, pids: { limit: 77 }, cpu: { quota: 50000, period: 100000 } };
    s.writeConfig();
    // Positive control for the "gone" checks below: nothing of the unit before create.
    assert.equal(unitsMatching(unit), []);
    const c = s.tsrun(['--systemd-cgroup', 'create', '-b', s.bundle, s.id], { timeout: 120_000 });
    assert.is(c.status, 0, c.stderr);
    assert.is(sh('systemctl', ['is-active', unit]).out, 'active');
    assert.equal(unitsMatching(unit), [unit], 'the unit listing sees the live unit');
    const p = show(unit, ['MemoryMax', 'TasksMax', 'CPUQuotaPerSecUSec', 'Delegate', 'Slice', 'DefaultDependencies']);
    assert.is(p.MemoryMax, String(64 * 1024 * 1024));
    assert.is(p.TasksMax, '77');
    assert.is(p.CPUQuotaPerSecUSec, '500ms');
    assert.is(p.Delegate, 'yes');
    assert.is(p.Slice, 'system.slice');
    assert.is(p.DefaultDependencies, 'no');
    const dir = cg(unit);
    assert.is(read(path.join(dir, 'memory.max')), String(64 * 1024 * 1024));
    assert.is(read(path.join(dir, 'pids.max')), '77');
    assert.is(read(path.join(dir, 'cpu.max')), '50000 100000');
    const pid = s.state().pid;
    assert.is(read(`/proc/${pid}/cgroup`), `0::/system.slice/${unit}`);
    assert.is(s.state().status, 'created');
    assert.is(s.tsrun(['start', s.id]).status, 0);

    const u = s.tsrun(['update', '--memory', '128m', '--pids-limit', '99', s.id]);
    assert.is(u.status, 0, u.stderr);
    const p2 = show(unit, ['MemoryMax', 'TasksMax']);
    assert.is(p2.MemoryMax, String(128 * 1024 * 1024));
    assert.is(p2.TasksMax, '99');
    assert.is(read(path.join(dir, 'memory.max')), String(128 * 1024 * 1024));
    assert.is(read(path.join(dir, 'pids.max')), '99');

    assert.is(s.tsrun(['pause', s.id]).status, 0);
    assert.is(s.state().status, 'paused');
    assert.is(read(path.join(dir, 'cgroup.freeze')), '1');
    assert.match(read(path.join(dir, 'cgroup.events')), /frozen 1/);
    assert.is(s.tsrun(['resume', s.id]).status, 0);
    assert.is(s.state().status, 'running');
    assert.match(read(path.join(dir, 'cgroup.events')), /frozen 0/);

    const st = s.tsrun(['events', '--stats', s.id]);
    assert.is(st.status, 0, st.stderr);
    assert.is(JSON.parse(st.stdout).data.memory.usage.limit, 128 * 1024 * 1024);

    assert.is(s.tsrun(['kill', s.id, 'KILL']).status, 0);
    for (let i = 0; i < 100 && s.state().status !== 'stopped'; i++) await sleep(100);
    const d = s.tsrun(['delete', s.id], { timeout: 60_000 });
    assert.is(d.status, 0, d.stderr);
    assert.equal(unitsMatching(unit), [], 'unit gone after delete');
    assert.not.ok(fs.existsSync(dir), `${dir} gone after delete`);
    assert.equal(s.leftovers(), []);
  });

  withSandbox('empty cgroupsPath: the default unit (<runtime>-<id>.scope in system.slice); kill --all reaches every process', ['sh', '-c', 'sleep 300 & sleep 300 & wait'], async (s) => {
    const unit = `${RUNC ? 'runc' : 'tsrun'}-${s.id}.scope`;
    const c = s.tsrun(['--systemd-cgroup', 'run', '-d', '-b', s.bundle, s.id], { timeout: 120_000 });
    assert.is(c.status, 0, c.stderr);
    assert.is(sh('systemctl', ['is-active', unit]).out, 'active');
    const dir = cg(unit);
    for (let i = 0; i < 50 && read(path.join(dir, 'cgroup.procs')).split('\n').length < 3; i++) await sleep(100);
    assert.is(read(path.join(dir, 'cgroup.procs')).split('\n').length, 3, 'sh and two sleeps in the scope');
    assert.is(s.tsrun(['kill', '--all', s.id, 'KILL']).status, 0);
    for (let i = 0; i < 100 && s.state().status !== 'stopped'; i++) await sleep(100);
    assert.is(s.state().status, 'stopped');
    assert.is(s.tsrun(['delete', s.id], { timeout: 60_000 }).status, 0);
    assert.equal(unitsMatching(unit), []);
    assert.equal(s.leftovers(), []);
  });

  withSandbox('OOM: a 100 MB allocation in a 32 MB scope is killed, run exits 137, no unit left', ['sh', '-c', 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo survived ${#x}'], (s, unit) => {
    s.config.linux.cgroupsPath = `system.slice:tsrun:${s.id}`;
    s.config.linux.resources = { memory: { limit: 32 * 1024 * 1024, swap: 32 * 1024 * 1024 } };
    s.writeConfig();
    const r = s.tsrun(['--systemd-cgroup', 'run', '-b', s.bundle, s.id], { timeout: 180_000 });
    assert.not.match(r.stdout, 'survived');
    assert.is(r.status, 137, r.stderr);
    assert.equal(unitsMatching(unit), [], 'the OOM-failed scope was reset and removed');
    assert.equal(s.leftovers(), []);
  });

  withSandbox('org.systemd.property.* annotations become unit properties (Sec → USec); what systemd cannot express goes to the files', ['sleep', '300'], (s, unit) => {
    s.config.linux.cgroupsPath = `system.slice:tsrun:${s.id}`;
    s.config.annotations = { 'org.systemd.property.TimeoutStopSec': 'uint64 17', 'org.systemd.property.CollectMode': "'inactive-or-failed'" };
    s.config.linux.resources = { unified: { 'memory.oom.group': '1', 'memory.high': '50000000' } };
    s.writeConfig();
    const c = s.tsrun(['--systemd-cgroup', 'run', '-d', '-b', s.bundle, s.id], { timeout: 120_000 });
    assert.is(c.status, 0, c.stderr);
    const p = show(unit, ['TimeoutStopUSec', 'CollectMode', 'MemoryHigh']);
    assert.is(p.TimeoutStopUSec, '17s');
    assert.is(p.CollectMode, 'inactive-or-failed');
    assert.is(p.MemoryHigh, '50000000');
    assert.is(read(path.join(cg(unit), 'memory.oom.group')), '1');
    assert.is(read(path.join(cg(unit), 'memory.high')), '49999872');
    assert.is(s.tsrun(['delete', '-f', s.id], { timeout: 60_000 }).status, 0);
    assert.equal(unitsMatching(unit), []);
    assert.equal(s.leftovers(), []);
  });

  withSandbox('a name ending in .slice asks for a slice, which systemd refuses to put the init in (PIDs): runc\'s error, nothing left; a bad slice name and a path without three fields fail too', ['sleep', '300'], (s) => {
    const slice = `tsrunt${process.pid}.slice`;
    s.config.linux.cgroupsPath = `:tsrun:${slice}`;
    s.writeConfig();
    const c = s.tsrun(['--systemd-cgroup', 'run', '-d', '-b', s.bundle, s.id], { timeout: 120_000 });
    assert.is(c.status, 1, c.stderr);
    assert.match(c.stderr, /Cannot set property PIDs, or unknown property/);
    assert.equal(unitsMatching(slice), []);
    assert.not.ok(fs.existsSync(`/sys/fs/cgroup/${slice}`));

    s.config.linux.cgroupsPath = 'system.slice:tsrun';
    s.writeConfig();
    const b = s.tsrun(['--systemd-cgroup', 'run', '-d', '-b', s.bundle, s.id]);
    assert.is(b.status, 1);
    // (runc's stderr is a logrus line: its quotes come escaped)
    assert.match(b.stderr, /expected cgroupsPath to be of format \\?"slice:prefix:name\\?" for systemd cgroups, got \\?"system.slice:tsrun\\?" instead/, b.stderr);
    s.config.linux.cgroupsPath = `bad--name.slice:tsrun:${s.id}`;
    s.writeConfig();
    const b2 = s.tsrun(['--systemd-cgroup', 'run', '-d', '-b', s.bundle, s.id]);
    assert.is(b2.status, 1);
    assert.match(b2.stderr, /invalid slice name: bad--name\.slice/, b2.stderr);
    // A failure after the unit exists (a unified file the kernel does not have): the unit is stopped.
    s.config.linux.cgroupsPath = `system.slice:tsrun:${s.id}`;
    s.config.linux.resources = { unified: { 'memory.nosuchfile': '1' } };
    s.writeConfig();
    const b3 = s.tsrun(['--systemd-cgroup', 'run', '-d', '-b', s.bundle, s.id], { timeout: 120_000 });
    assert.is(b3.status, 1, b3.stderr);
    assert.match(b3.stderr, /memory\.nosuchfile/, b3.stderr);
    assert.equal(unitsMatching(`*${s.id}*`), []);
    assert.equal(s.leftovers(), []);
  });

  // runc 1.1 (Debian's 1.1.5) joins the second container to the live unit instead ("container's
  // cgroup is not empty", deprecated; refused from runc 1.2 on, whose startUnit tsrun follows):
  // deleting either container would then stop both. Seen failing against runc 1.1.5 in this guest.
  if (RUNC) {
    console.log("    runc: the shared-unit check is skipped: runc 1.1 joins a live unit of the same name (refused since runc 1.2, and by tsrun)");
    test.skip('runc: a second container asking for the unit of a live one fails (runc 1.1 joins it instead)', () => {});
  } else withSandbox('a second container asking for the unit of a live one fails and leaves the first (and its unit) alone', ['sleep', '300'], (s, unit) => {
    s.config.linux.cgroupsPath = `system.slice:tsrun:${s.id}`;
    s.writeConfig();
    const a = s.tsrun(['--systemd-cgroup', 'run', '-d', '-b', s.bundle, s.id], { timeout: 120_000 });
    assert.is(a.status, 0, a.stderr);
    const pid = s.state().pid;
    const b = s.tsrun(['--systemd-cgroup', 'run', '-d', '-b', s.bundle, `${s.id}-b`], { timeout: 120_000 });
    assert.is(b.status, 1, b.stderr);
    assert.match(b.stderr, /already (loaded|exists)|UnitExists|exists/i, b.stderr);
    assert.is(sh('systemctl', ['is-active', unit]).out, 'active', 'the first container\'s unit still runs');
    assert.is(s.state().status, 'running');
    assert.is(read(`/proc/${pid}/cgroup`), `0::/system.slice/${unit}`);
    assert.is(s.tsrun(['delete', '-f', s.id], { timeout: 60_000 }).status, 0);
    assert.equal(unitsMatching(unit), []);
    assert.equal(s.leftovers(), []);
  });

  withSandbox('a unit left by a killed create (SIGKILL during its createRuntime hook) is stopped by delete -f', ['sleep', '300'], async (s, unit) => {
    s.config.linux.cgroupsPath = `system.slice:tsrun:${s.id}`;
    const flag = path.join(s.dir, 'hook-ran');
    s.config.hooks = { createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', `echo $$ > ${flag}.tmp; mv ${flag}.tmp ${flag}; exec sleep 60`] }] };
    s.writeConfig();
    const child = spawn(TSRUN, ['--root', s.root, '--systemd-cgroup', 'create', '-b', s.bundle, s.id], { stdio: 'ignore', cwd: s.dir });
    for (let i = 0; i < 600 && !fs.existsSync(flag); i++) await sleep(100);
    assert.ok(fs.existsSync(flag), 'the hook ran');
    // The unit exists now (the hook runs after the init is in its cgroup): the control for the check below.
    assert.is(sh('systemctl', ['is-active', unit]).out, 'active');
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    const d = s.tsrun(['delete', '-f', s.id], { timeout: 60_000 });
    assert.is(d.status, 0, d.stderr);
    assert.equal(unitsMatching(unit), [], 'unit of the killed create stopped');
    assert.not.ok(fs.existsSync(cg(unit)));
    try {
      process.kill(Number(read(flag)), 'SIGKILL'); // the hook's sleep (its tsrun is gone)
    } catch {}
    assert.equal(s.leftovers(), []);
  });

  test(`${name}: podman --cgroup-manager systemd: run --rm with output and exit status, --memory enforced in the scope`, () => {
    if (!fs.existsSync('/usr/bin/podman')) {
      console.log('    podman is not installed: the client end to end did NOT run');
      return;
    }
    const dir = fs.mkdtempSync('/tmp/tsrun-podman-');
    try {
      const g = ['--root', `${dir}/root`, '--runroot', `${dir}/runroot`, '--tmpdir', `${dir}/tmp`, '--runtime', TSRUN, '--cgroup-manager', 'systemd', '--events-backend', 'file'];
      const rootfs = `${dir}/rootfs`;
      copyRootfs(rootfs);
      const env = { ...process.env, CONTAINERS_CONF: `${dir}/containers.conf` };
      // cwd: conmon drops an "oom" marker file into its working directory after an OOM kill.
      fs.writeFileSync(env.CONTAINERS_CONF, '[containers]\ndefault_ulimits = []\nnetns = "none"\n[engine]\ncgroup_manager = "systemd"\n');
      // --cgroupns host: /proc/self/cgroup shows the scope's path, and /sys/fs/cgroup the whole tree.
      const r = spawnSync('podman', [...g, 'run', '--rm', '--network', 'none', '--cgroupns', 'host', '--memory', '48m', '--rootfs', rootfs, '/bin/sh', '-c', 'cat /proc/self/cgroup; cat /sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup)/memory.max; echo from-podman; exit 7'], { encoding: 'utf8', env, timeout: 300_000, cwd: dir });
      assert.is(r.status, 7, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /from-podman/);
      assert.match(r.stdout, /^0::\/machine\.slice\/libpod-[0-9a-f]+\.scope/m, r.stdout);
      assert.match(r.stdout, new RegExp(`^${48 * 1024 * 1024}$`, 'm'), r.stdout);
      const o = spawnSync('podman', [...g, 'run', '--rm', '--network', 'none', '--memory', '32m', '--memory-swap', '32m', '--rootfs', rootfs, '/bin/sh', '-c', 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo survived'], { encoding: 'utf8', env, timeout: 300_000, cwd: dir });
      assert.is(o.status, 137, `${o.stdout}\n${o.stderr}`);
      assert.not.match(o.stdout, 'survived');
      assert.equal(unitsMatching('libpod-*'), [], 'no libpod scope left');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test(`${name}: no ${name}-* or tsrun-* unit is left at the end`, () => {
    assert.equal([...unitsMatching('tsrun-*'), ...unitsMatching('runc-*'), ...unitsMatching('tsrunt*')], []);
  });
}

test.run();
