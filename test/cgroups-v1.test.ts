/**
 * cgroup v1 / hybrid manager against the real kernel of this host (no fake tree): every cgroup a
 * test creates is destroyed in `after` even when the test fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assertRejects } from './helpers/tsrun';
import { detectLayout, loadCgroupManager, newCgroupManager, type CgroupManager } from '../src/cgroups';
import type { NewCgroupManagerOptions } from '../src/cgroups';
import { parseProcCgroup } from '../src/cgroups/layout';
import { parseStats } from '../src/cgroups/stats';
import { warmMigrationLock, withRollback } from '../src/cgroups/util';
import { releaseCgroups } from './helpers/cgroups';

const layout = detectLayout();
const onV1 = layout === 'v1' || layout === 'hybrid';
if (!onV1) console.log(`cgroups-v1: SKIPPED: this host is cgroup ${layout}; the v1/hybrid code was NOT tested against a real kernel here`);

const managers: CgroupManager[] = [];
const children: ChildProcess[] = [];
let seq = 0;

function mk(opts: Partial<NewCgroupManagerOptions> = {}): CgroupManager {
  const m = newCgroupManager({ id: `tsrun-t-${process.pid}-${++seq}`, ...opts });
  managers.push(m);
  return m;
}

/** A shell that waits for a line on stdin before exec'ing cmd: it can be put in a cgroup first. */
function gated(cmd: string): ChildProcess & { go(): void; done: Promise<{ code: number | null; signal: string | null; out: string }> } {
  const c = spawn('/bin/sh', ['-c', `read x; exec ${cmd}`], { stdio: ['pipe', 'pipe', 'pipe'] }) as any;
  let out = '';
  c.stdout.on('data', (d: Buffer) => (out += d));
  c.stderr.on('data', (d: Buffer) => (out += d));
  c.done = new Promise((r) => c.on('exit', (code: number | null, signal: string | null) => r({ code, signal, out })));
  c.go = () => c.stdin.write('go\n');
  children.push(c);
  return c;
}

const read = (dir: string, f: string) => fs.readFileSync(path.join(dir, f), 'utf8').trim();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Top-level dirs of the absolute test paths: destroy (like runc) only removes the leaf. */
const topDirs = [`tsrun-abs-${process.pid}`, `tsrun-cs-${process.pid}`, `tsrun-bad-${process.pid}`];

test.after(async () => {
  await releaseCgroups(children, managers);
  for (const h of fs.readdirSync('/sys/fs/cgroup')) {
    for (const t of topDirs) {
      const d = path.join('/sys/fs/cgroup', h, t);
      if (!fs.existsSync(d)) continue;
      const rm = (x: string) => {
        for (const e of fs.readdirSync(x, { withFileTypes: true })) if (e.isDirectory()) rm(path.join(x, e.name));
        fs.rmdirSync(x);
      };
      try {
        rm(d);
      } catch (e) {
        console.error(`cleanup ${d}: ${(e as Error).message}`);
      }
    }
  }
});

test('layout: this host is hybrid (v1 controllers + cgroup2 at /sys/fs/cgroup/unified)', () => {
  if (!onV1) return console.log('  skipped: not a v1/hybrid host');
  const mi = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  const hasUnified = / - cgroup2 /.test(mi);
  assert.is(layout, hasUnified ? 'hybrid' : 'v1');
});

test('paths: default is <own cgroup>/<id> in every hierarchy, unified included on hybrid', () => {
  if (!onV1) return;
  const m = mk();
  const id = path.basename(m.state.paths.memory);
  const self = parseProcCgroup(fs.readFileSync('/proc/self/cgroup', 'utf8'));
  assert.is(m.state.paths.memory, path.join('/sys/fs/cgroup/memory', self.memory, id));
  assert.is(m.state.paths.pids, path.join('/sys/fs/cgroup/pids', self.pids, id));
  assert.is(m.state.paths['name=systemd'], path.join('/sys/fs/cgroup/systemd', self['name=systemd'], id));
  if (layout === 'hybrid') assert.is(m.state.paths[''], path.join('/sys/fs/cgroup/unified', self[''], id));
  // Saved state round-trips through JSON.
  assert.equal(loadCgroupManager(JSON.parse(JSON.stringify(m.state))).state, m.state);
});

test('primeMigration: our own pid into the cgroup we are in (the migration lock warmed), nothing moves; control: the same write into another cgroup moves us', async () => {
  if (!onV1) return;
  const m = mk();
  await m.create();
  const before = fs.readFileSync('/proc/self/cgroup', 'utf8');
  try {
    assert.is(await m.primeMigration(), null, 'the write went through (as root)');
    assert.is(fs.readFileSync('/proc/self/cgroup', 'utf8'), before, 'nothing moved');
    assert.is(await loadCgroupManager(m.state).primeMigration(), null, 'a loaded manager: nothing to write');
    // Control: the same write into the container's cgroup moves this process (and is undone).
    assert.is(await warmMigrationLock(m.state.paths.pids), null);
    assert.is.not(fs.readFileSync('/proc/self/cgroup', 'utf8'), before, 'control: a write into another cgroup moves us');
  } finally {
    // The container's cgroup is <own>/<id>: back into our own.
    await warmMigrationLock(path.dirname(m.state.paths.pids));
  }
  assert.is(fs.readFileSync('/proc/self/cgroup', 'utf8'), before, 'back where we were');
});

test('paths: absolute from each root; relative ones cannot climb out', () => {
  if (!onV1) return;
  const a = mk({ cgroupsPath: `/tsrun-abs-${process.pid}/c` });
  assert.is(a.state.paths.memory, `/sys/fs/cgroup/memory/tsrun-abs-${process.pid}/c`);
  const r = mk({ cgroupsPath: `../../../tsrun-rel-${process.pid}` });
  const self = parseProcCgroup(fs.readFileSync('/proc/self/cgroup', 'utf8'));
  assert.is(r.state.paths.memory, path.join('/sys/fs/cgroup/memory', self.memory, `tsrun-rel-${process.pid}`));
  assert.throws(() => newCgroupManager({ id: 'x', cgroupsPath: '/' }), /not a valid cgroup path/);
  // The systemd driver is its own manager (test/systemd.test.ts); without systemd it says so.
  if (!fs.existsSync('/run/systemd/system')) assert.throws(() => newCgroupManager({ id: 'x', systemd: true }), /^systemd not running on this host, cannot use systemd cgroups manager$/);
});

test('create: every resource is written and reads back', async () => {
  if (!onV1) return;
  const m = mk({
    resources: {
      memory: { limit: 64 << 20, swap: 96 << 20, reservation: 32 << 20, swappiness: 10, disableOOMKiller: false, kernel: 1 << 30, kernelTCP: 1 << 30 },
      cpu: { shares: 512, quota: 50000, period: 100000, cpus: '0', mems: '0', burst: 1000, idle: 0 },
      pids: { limit: 42 },
      blockIO: { throttleReadBpsDevice: [{ major: 254, minor: 0, rate: 1048576 }], throttleWriteIOPSDevice: [{ major: 254, minor: 0, rate: 100 }] },
      devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 4, minor: 64, access: 'rw' }],
    },
    warn: () => {},
  });
  await m.create();
  const p = m.state.paths;
  for (const d of Object.values(p)) assert.ok(fs.existsSync(d), `${d} exists`);
  assert.is(read(p.memory, 'memory.limit_in_bytes'), String(64 << 20));
  if (fs.existsSync(path.join(p.memory, 'memory.memsw.limit_in_bytes'))) assert.is(read(p.memory, 'memory.memsw.limit_in_bytes'), String(96 << 20));
  assert.is(read(p.memory, 'memory.soft_limit_in_bytes'), String(32 << 20));
  assert.is(read(p.memory, 'memory.swappiness'), '10');
  assert.is(read(p.cpu, 'cpu.shares'), '512');
  assert.is(read(p.cpu, 'cpu.cfs_quota_us'), '50000');
  assert.is(read(p.cpu, 'cpu.cfs_period_us'), '100000');
  assert.is(read(p.cpu, 'cpu.cfs_burst_us'), '1000');
  assert.is(read(p.cpuset, 'cpuset.cpus'), '0');
  assert.is(read(p.cpuset, 'cpuset.mems'), '0');
  assert.is(read(p.pids, 'pids.max'), '42');
  assert.match(read(p.blkio, 'blkio.throttle.read_bps_device'), '254:0 1048576');
  assert.match(read(p.blkio, 'blkio.throttle.write_iops_device'), '254:0 100');
  // Bundle rules, then runc's defaults (exact list as runc 1.1.5 produces on this host, plus c 4:64).
  const list = read(p.devices, 'devices.list').split('\n').sort();
  assert.equal(list, ['b *:* m', 'c *:* m', 'c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 1:8 rwm', 'c 1:9 rwm', 'c 10:200 rwm', 'c 136:* rwm', 'c 4:64 rw', 'c 5:0 rwm', 'c 5:2 rwm'].sort());
});

test('create: cpuset of a new cgroup gets the parent cpus/mems (tasks can join)', async () => {
  if (!onV1) return;
  const m = mk({ cgroupsPath: `/tsrun-cs-${process.pid}/a/b` });
  await m.create();
  const parent = read('/sys/fs/cgroup/cpuset', 'cpuset.cpus');
  assert.is(read(m.state.paths.cpuset, 'cpuset.cpus'), parent);
  assert.is(read(path.dirname(m.state.paths.cpuset), 'cpuset.cpus'), parent);
  const c = gated('sleep 100');
  await m.apply(c.pid!);
  assert.ok(m.pids().includes(c.pid!));
  c.kill('SIGKILL');
});

test('bad input: clear error naming file and value, and no cgroup dir left behind', async () => {
  if (!onV1) return;
  const cases: [NewCgroupManagerOptions['resources'], RegExp][] = [
    [{ cpu: { cpus: '99999' } }, /cpuset\.cpus: write 99999: /],
    [{ memory: { limit: 64 << 20, swap: 32 << 20 } }, /memory\.memsw\.limit_in_bytes: write 33554432: invalid argument/],
    [{ memory: { swappiness: 200 } }, /swappiness.*0-100/],
    [{ pids: { limit: 10 }, cpu: { shares: 1 << 30 } }, /cpu\.shares: write 1073741824: the maximum allowed cpu-shares is 262144/],
    [{ unified: { 'memory.max': '1' } }, /cannot use unified on cgroup v1/],
    [{ devices: [{ allow: true, type: 'x' }] }, /devices\[0\]\.type: invalid device type/],
    [{ hugepageLimits: [{ pageSize: '2MB', limit: 1 << 21 }] }, /hugetlb/],
    [{ network: { classID: 0x100001 } }, /net_cls/],
  ];
  for (const [resources, re] of cases) {
    if (resources?.memory?.swap && !fs.existsSync('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes')) continue;
    const m = mk({ cgroupsPath: `/tsrun-bad-${process.pid}/c`, resources });
    let err: Error | null = null;
    try {
      await m.create();
    } catch (e) {
      err = e as Error;
    }
    assert.ok(err, `create must fail for ${JSON.stringify(resources)}`);
    assert.match(err!.message, re);
    for (const d of Object.values(m.state.paths)) {
      assert.not.ok(fs.existsSync(d), `${d} left behind after ${JSON.stringify(resources)}`);
      assert.not.ok(fs.existsSync(path.dirname(d)), `${path.dirname(d)} (created parent) left behind`);
    }
  }
});

test('update: a refused value writes nothing, not even the files set before it', async () => {
  if (!onV1) return;
  const m = mk();
  await m.create();
  const before = read(m.state.paths.memory, 'memory.limit_in_bytes');
  // memory.limit_in_bytes is written before memory.swappiness: the range used to fail after it.
  await assertRejects(() => m.update({ memory: { limit: 64 << 20, swappiness: 200 } }), /^linux\.resources\.memory\.swappiness: invalid value:200\. valid memory swappiness range is 0-100$/);
  await assertRejects(() => m.update({ pids: { limit: 5 }, unified: { 'pids.max': '5' } }), /^invalid configuration: cannot use unified on cgroup v1$/);
  assert.is(read(m.state.paths.memory, 'memory.limit_in_bytes'), before);
  assert.is(read(m.state.paths.pids, 'pids.max'), 'max');
});

test('memory limit is enforced and the OOM watcher fires; stats count it', async () => {
  if (!onV1) return;
  const m = mk({ resources: { memory: { limit: 32 << 20, swap: 32 << 20 } } });
  await m.create();
  let ooms = 0;
  const stop = m.watchOom(() => ooms++);
  try {
    const c = gated('/bin/busybox sh -c "/bin/busybox dd if=/dev/zero bs=1M count=100 2>/dev/null | /bin/busybox tail > /dev/null"');
    await m.apply(c.pid!);
    c.go();
    const r = await c.done;
    assert.is.not(r.code, 0, `the 100 MB pipeline must not succeed in 32 MB (${JSON.stringify(r)})`);
    for (let i = 0; i < 50 && ooms === 0; i++) await sleep(100);
    assert.ok(ooms >= 1, 'OOM watcher fired');
    const st = parseStats(m.statsJson());
    // Recent kernels leave memory.failcnt at 0 here; the peak pinned at the limit shows it was hit.
    assert.is(st.memory.usage.max, 32 << 20, `peak at the limit: ${JSON.stringify(st.memory.usage)}`);
    const oomControl = fs.readFileSync(path.join(m.state.paths.memory, 'memory.oom_control'), 'utf8');
    assert.match(oomControl, /oom_kill [1-9]/);
    assert.is(st.memory.usage.limit, 32 << 20);
    assert.ok(Number(st.memory.raw?.pgfault ?? 0) > 0, 'memory.stat read');
  } finally {
    stop();
  }
});

test('pids limit is enforced', async () => {
  if (!onV1) return;
  const m = mk({ resources: { pids: { limit: 4 } } });
  await m.create();
  const c = gated('/bin/busybox sh -c "for i in 1 2 3 4 5 6 7 8; do /bin/busybox sleep 3 & done; wait"');
  await m.apply(c.pid!);
  c.go();
  await sleep(500);
  const cur = Number(read(m.state.paths.pids, 'pids.current'));
  assert.ok(cur <= 4, `pids.current ${cur} <= 4`);
  const ev = fs.readFileSync(path.join(m.state.paths.pids, 'pids.events'), 'utf8');
  assert.match(ev, /max [1-9]/);
  assert.is(parseStats(m.statsJson()).pids.limit, 4);
  m.killAll(9);
  await c.done;
});

test('freeze/thaw, stats non-zero, killAll, update', async () => {
  if (!onV1) return;
  const m = mk({ resources: { memory: { limit: 256 << 20 }, pids: { limit: 100 } } });
  await m.create();
  // Busy for a while so CPU usage is measurable.
  const c = gated('/bin/busybox sh -c "i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; exec /bin/busybox sleep 1000"');
  await m.apply(c.pid!);
  c.go();
  await sleep(300);
  await m.freeze();
  assert.ok(m.isFrozen());
  assert.is(read(m.state.paths.freezer, 'freezer.state'), 'FROZEN');
  await m.thaw();
  assert.not.ok(m.isFrozen());
  await sleep(500);
  const st = parseStats(m.statsJson());
  assert.ok((st.cpu.usage.total ?? 0) > 0, 'cpu total > 0');
  assert.ok((st.memory.usage.usage ?? 0) > 0, 'memory usage > 0');
  assert.ok((st.pids.current ?? 0) >= 1, 'pids current >= 1');
  assert.is(st.pids.limit, 100);
  // update: lower memory with swap (order matters), pids to unlimited.
  if (fs.existsSync(path.join(m.state.paths.memory, 'memory.memsw.limit_in_bytes'))) {
    await m.update({ memory: { limit: 128 << 20, swap: 128 << 20 } });
    assert.is(read(m.state.paths.memory, 'memory.memsw.limit_in_bytes'), String(128 << 20));
    await m.update({ memory: { limit: 512 << 20, swap: 1024 << 20 } });
    assert.is(read(m.state.paths.memory, 'memory.memsw.limit_in_bytes'), String(1024 << 20));
    await m.update({ memory: { limit: -1 } });
    assert.is(read(m.state.paths.memory, 'memory.memsw.limit_in_bytes'), read(path.dirname(m.state.paths.memory), 'memory.memsw.limit_in_bytes'));
  }
  await m.update({ pids: { limit: 0 } });
  assert.is(read(m.state.paths.pids, 'pids.max'), 'max');
  await m.update({ cpu: { shares: 2048 } });
  assert.is(read(m.state.paths.cpu, 'cpu.shares'), '2048');
  // Below usage: EBUSY turned into a clear message.
  await assertRejects(() => m.update({ memory: { limit: 4096 } }), /memory\.limit_in_bytes: write 4096: unable to set memory limit to 4096 \(current usage/);
  m.killAll(9);
  const r = await c.done;
  assert.is(r.signal, 'SIGKILL');
});

test('update that fails half-way: what it had already written is restored (all or nothing)', async () => {
  if (!onV1) return;
  const m = mk({ resources: { memory: { limit: 64 << 20 }, cpu: { shares: 512 } } });
  await m.create();
  // memory comes before cpu in the write order: its new limit is written, then the cpu period
  // (below the kernel's 1 ms minimum) fails.
  const bad = { memory: { limit: 32 << 20 }, cpu: { shares: 1024, period: 10 } };
  await assertRejects(() => withRollback(() => m.update(bad)), /cpu\.cfs_period_us: write 10: invalid argument/);
  assert.is(read(m.state.paths.memory, 'memory.limit_in_bytes'), String(64 << 20), 'memory limit rolled back');
  assert.is(read(m.state.paths.cpu, 'cpu.shares'), '512', 'cpu shares rolled back');
  // Control: without the journal the same failure leaves the new memory limit behind.
  await assertRejects(() => m.update(bad), /cpu\.cfs_period_us: write 10: invalid argument/);
  assert.is(read(m.state.paths.memory, 'memory.limit_in_bytes'), String(32 << 20), 'without rollback the first write stays');
  // And a good update goes through whole.
  await withRollback(() => m.update({ memory: { limit: 48 << 20 }, cpu: { shares: 256 } }));
  assert.is(read(m.state.paths.memory, 'memory.limit_in_bytes'), String(48 << 20));
  assert.is(read(m.state.paths.cpu, 'cpu.shares'), '256');
});

test('destroy: every dir removed (unified too), idempotent; busy cgroup only emptied when asked', async () => {
  if (!onV1) return;
  const m = mk();
  await m.create();
  const c = gated('sleep 1000');
  await m.apply(c.pid!);
  let err: Error | null = null;
  try {
    await m.destroy({ timeoutMs: 300 });
  } catch (e) {
    err = e as Error;
  }
  assert.ok(err && /processes are still in it/.test(err.message), `busy destroy refused: ${err?.message}`);
  await m.destroy({ killLeftovers: true });
  for (const d of Object.values(m.state.paths)) assert.not.ok(fs.existsSync(d), `${d} removed`);
  if (layout === 'hybrid') assert.ok(m.state.paths[''].startsWith('/sys/fs/cgroup/unified/'));
  await m.destroy(); // again: nothing to do, no error
});

test('mountSteps: tmpfs + one bind per hierarchy (or cgroup fs with a cgroup namespace)', () => {
  if (!onV1) return;
  const m = mk();
  const MS_RDONLY = 1;
  const steps = m.mountSteps('/sys/fs/cgroup', MS_RDONLY | 2 | 4 | 8, false);
  assert.equal(steps[0], { kind: 'mount', source: 'tmpfs', destination: '/sys/fs/cgroup', fstype: 'tmpfs', flags: 2 | 4 | 8, data: 'mode=755', remountFlags: 0, propagation: [], recursiveAttrSet: 0, recursiveAttrClear: 0, sourceIsDir: true });
  const mem = steps.find((s) => s.kind === 'mount' && s.destination === '/sys/fs/cgroup/memory') as any;
  assert.is(mem.source, m.state.paths.memory);
  assert.is(mem.flags, 0x1000 | 0x4000);
  assert.is(mem.remountFlags, MS_RDONLY | 2 | 4 | 8);
  assert.ok(steps.some((s) => s.kind === 'mount' && s.destination === '/sys/fs/cgroup/systemd'));
  // runc does not mount the unified hierarchy in a v1/hybrid container.
  assert.not.ok(steps.some((s) => s.kind === 'mount' && s.destination === '/sys/fs/cgroup/unified'));
  const ns = m.mountSteps('/sys/fs/cgroup', MS_RDONLY, true);
  const sd = ns.find((s) => s.kind === 'mount' && s.destination === '/sys/fs/cgroup/systemd') as any;
  assert.equal([sd.fstype, sd.source, sd.data, sd.flags], ['cgroup', 'systemd', 'name=systemd', 2 | 4 | 8 | MS_RDONLY]);
  const cpu = ns.find((s) => s.kind === 'mount' && s.destination === '/sys/fs/cgroup/cpu') as any;
  assert.is(cpu.data, 'cpu');
});

test.run();
