/**
 * cgroup v2 manager. Two parts, and the output says which ran:
 *  - FAKE TREE: always; a temp dir shaped like cgroupfs checks file names and values written
 *    (no kernel involved: it proves our writes, not the kernel's acceptance);
 *  - REAL KERNEL: only on a cgroup v2 host (the VM: test/cgroups-v2-vm.sh), create/apply/limits
 *    enforced/freeze/stats/OOM/destroy against the kernel.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assertRejects } from './helpers/tsrun';
import { detectLayout, newCgroupManager, setDeviceFilterLoader, type CgroupManager, type DeviceRule } from '../src/cgroups';
import type { NewCgroupManagerOptions } from '../src/cgroups';
import { layoutOf, parseCgroupMounts } from '../src/cgroups/layout';
import { parseStats } from '../src/cgroups/stats';
import { blkioWeightToIOWeight, memorySwapToV2, sharesToWeight } from '../src/cgroups/manager';
import { releaseCgroups } from './helpers/cgroups';

const layout = detectLayout();
const realV2 = layout === 'v2';
console.log('cgroups-v2: FAKE-TREE tests run against a temp dir (file names and values only, no kernel)');
console.log(
  realV2
    ? 'cgroups-v2: REAL-KERNEL tests run against this cgroup v2 host'
    : `cgroups-v2: REAL-KERNEL tests SKIPPED: this host is cgroup ${layout}; run test/cgroups-v2-vm.sh for them`,
);

const tmpRoots: string[] = [];
const managers: CgroupManager[] = [];
const children: ChildProcess[] = [];

const CONTROLLERS = 'cpuset cpu io memory hugetlb pids rdma';
const IFACE = [
  'cgroup.procs', 'cgroup.controllers', 'cgroup.subtree_control', 'cgroup.freeze', 'cgroup.events', 'cgroup.kill',
  'cpu.weight', 'cpu.max', 'cpu.max.burst', 'cpu.idle', 'cpu.stat', 'cpuset.cpus', 'cpuset.mems',
  'memory.max', 'memory.low', 'memory.high', 'memory.swap.max', 'memory.current', 'memory.stat', 'memory.events', 'memory.swap.current',
  'pids.max', 'pids.current', 'io.weight', 'io.max', 'io.stat', 'hugetlb.2MB.max', 'rdma.max',
];

/** A fake cgroup2 root with the container dir (and its parents) already holding interface files. */
function fakeTree(rel: string): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-cg2-'));
  tmpRoots.push(root);
  fs.writeFileSync(path.join(root, 'cgroup.controllers'), CONTROLLERS + '\n');
  fs.writeFileSync(path.join(root, 'cgroup.subtree_control'), '');
  let d = root;
  for (const part of rel.split('/').filter(Boolean)) {
    d = path.join(d, part);
    fs.mkdirSync(d);
    for (const f of IFACE) fs.writeFileSync(path.join(d, f), '');
    fs.writeFileSync(path.join(d, 'cgroup.controllers'), CONTROLLERS + '\n');
  }
  return root;
}

function fake(rel: string, opts: Partial<NewCgroupManagerOptions> = {}): { m: CgroupManager; root: string; dir: string } {
  const root = fakeTree(rel);
  const m = newCgroupManager({ id: 'c1', layout: 'v2', fsRoot: root, selfCgroup: '0::/\n', cgroupsPath: '/' + rel, warn: () => {}, ...opts });
  return { m, root, dir: path.join(root, rel) };
}

const read = (dir: string, f: string) => fs.readFileSync(path.join(dir, f), 'utf8').trim();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let recorded: { dir: string; rules: DeviceRule[] }[] = [];
const recordingLoader = (dir: string, rules: DeviceRule[]) => void recorded.push({ dir, rules });

test.after(async () => {
  setDeviceFilterLoader(null);
  await releaseCgroups(children, managers);
  for (const r of tmpRoots) fs.rmSync(r, { recursive: true, force: true });
});

// ---------------------------------------------------------------- pure conversions and parsing

test('[unit] runc conversions: shares→weight, blkio→io weight, memsw→swap.max', () => {
  assert.is(sharesToWeight(2), 1);
  assert.is(sharesToWeight(1024), 39);
  assert.is(sharesToWeight(262144), 10000);
  assert.is(blkioWeightToIOWeight(10), 1);
  assert.is(blkioWeightToIOWeight(500), 4950);
  assert.is(blkioWeightToIOWeight(1000), 10000);
  assert.is(memorySwapToV2(0, -1), -1);
  assert.is(memorySwapToV2(-1, 100), -1);
  assert.is(memorySwapToV2(300, 100), 200);
  assert.is(memorySwapToV2(100, 100), 0);
  assert.throws(() => memorySwapToV2(50, 100), /should be >= memory limit/);
  assert.throws(() => memorySwapToV2(50, 0), /without memory limit/);
});

test('[unit] layout from mountinfo: v1, hybrid, v2', () => {
  const v1 = '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n';
  const hybrid = v1 + '41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n';
  const v2 = '30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n';
  assert.is(layoutOf(parseCgroupMounts(v1)), 'v1');
  assert.is(layoutOf(parseCgroupMounts(hybrid)), 'hybrid');
  assert.is(layoutOf(parseCgroupMounts(v2)), 'v2');
  assert.equal(parseCgroupMounts(v1)[0].controllers, ['cpu', 'cpuacct']);
  assert.throws(() => layoutOf([]), /no cgroup filesystem/);
});

// ---------------------------------------------------------------- fake tree

test('[fake tree] paths: relative = under the parent of our cgroup, absolute = under the root', () => {
  const root = fakeTree('');
  const rel = newCgroupManager({ id: 'c1', layout: 'v2', fsRoot: root, selfCgroup: '0::/user.slice/sess.scope\n' });
  assert.is(rel.state.paths[''], path.join(root, 'user.slice/c1'));
  const abs = newCgroupManager({ id: 'c1', layout: 'v2', fsRoot: root, selfCgroup: '0::/user.slice/sess.scope\n', cgroupsPath: '/a/b' });
  assert.is(abs.state.paths[''], path.join(root, 'a/b'));
  assert.is(abs.state.layout, 'v2');
});

test('[fake tree] create: controllers enabled in parents, every resource written with v2 names and values', async () => {
  setDeviceFilterLoader(recordingLoader);
  recorded = [];
  const { m, root, dir } = fake('pod/c1', {
    resources: {
      cpu: { shares: 1024, quota: 50000, period: 100000, burst: 1000, cpus: '0-1', mems: '0' },
      memory: { limit: 64 << 20, swap: 96 << 20, reservation: 32 << 20 },
      pids: { limit: 42 },
      blockIO: { weight: 500, throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }] },
      hugepageLimits: [{ pageSize: '2MB', limit: 4 << 21 }],
      rdma: { mlx5_0: { hcaHandles: 3, hcaObjects: 1000 } },
      unified: { 'memory.high': '50000000' },
      devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 4, minor: 64, access: 'rw' }],
    },
  });
  await m.create();
  assert.is(read(root, 'cgroup.subtree_control'), '+cpuset +cpu +io +memory +hugetlb +pids +rdma');
  assert.is(read(path.join(root, 'pod'), 'cgroup.subtree_control'), '+cpuset +cpu +io +memory +hugetlb +pids +rdma');
  assert.is(read(dir, 'cgroup.subtree_control'), '', 'the leaf enables nothing');
  assert.is(read(dir, 'cpu.weight'), '39');
  assert.is(read(dir, 'cpu.max'), '50000 100000');
  assert.is(read(dir, 'cpu.max.burst'), '1000');
  assert.is(read(dir, 'cpuset.cpus'), '0-1');
  assert.is(read(dir, 'cpuset.mems'), '0');
  assert.is(read(dir, 'memory.max'), String(64 << 20));
  assert.is(read(dir, 'memory.swap.max'), String(32 << 20), 'swap.max = swap - limit');
  assert.is(read(dir, 'memory.low'), String(32 << 20));
  assert.is(read(dir, 'pids.max'), '42');
  assert.is(read(dir, 'io.weight'), '4950');
  assert.is(read(dir, 'io.max'), '8:0 rbps=1048576');
  assert.is(read(dir, 'hugetlb.2MB.max'), String(4 << 21));
  assert.is(read(dir, 'rdma.max'), 'mlx5_0 hca_handle=3 hca_object=1000');
  assert.is(fs.readFileSync(path.join(dir, 'memory.high'), 'utf8'), '50000000');
  assert.is(recorded.length, 1);
  assert.is(recorded[0].dir, dir);
  assert.equal(recorded[0].rules.slice(0, 3), [
    { type: 'a', major: -1, minor: -1, access: 'rwm', allow: false },
    { type: 'c', major: 4, minor: 64, access: 'rw', allow: true },
    { type: 'c', major: -1, minor: -1, access: 'm', allow: true },
  ]);
  assert.is(recorded[0].rules.length, 2 + 11, 'bundle rules then runc default allow list');
});

test('[fake tree] quota -1 → "max period"; pids 0 → max; memory -1 → max with swap max', async () => {
  setDeviceFilterLoader(recordingLoader);
  const { m, dir } = fake('c2');
  await m.create();
  await m.update({ cpu: { quota: -1, period: 200000 }, pids: { limit: 0 }, memory: { limit: -1 } });
  assert.is(read(dir, 'cpu.max'), 'max 200000');
  assert.is(read(dir, 'pids.max'), 'max');
  assert.is(read(dir, 'memory.max'), 'max');
  assert.is(read(dir, 'memory.swap.max'), 'max');
  await m.update({ memory: { limit: 100, swap: 100 } });
  assert.is(read(dir, 'memory.swap.max'), '0', 'swap == limit disables swap');
});

test('[fake tree] update: a refused value writes nothing, not even the files set before it', async () => {
  setDeviceFilterLoader(recordingLoader);
  const { m, dir } = fake('c3');
  await m.create();
  // cpu and cpuset come before memory in the writes: a swap below memory used to fail after them.
  await assertRejects(() => m.update({ cpu: { shares: 1024, cpus: '0' }, memory: { limit: 100, swap: 50 } }), /memory\+swap limit \(50\) should be >= memory limit \(100\)/);
  await assertRejects(() => m.update({ pids: { limit: 5 }, unified: { '../x': '1' } }), /must be a file name/);
  for (const f of ['cpu.weight', 'cpuset.cpus', 'memory.max', 'memory.swap.max', 'pids.max']) assert.is(read(dir, f), '', `${f} written by a refused update`);
});

test('[fake tree] bad input: clear errors naming the value (cleanup is checked on the real kernel)', async () => {
  setDeviceFilterLoader(recordingLoader);
  const cases: [NewCgroupManagerOptions['resources'], RegExp][] = [
    [{ memory: { limit: 100, swap: 50 } }, /memory\+swap limit \(50\) should be >= memory limit \(100\)/],
    [{ unified: { '../x': '1' } }, /must be a file name/],
    [{ unified: { 'foo.bar': '1' } }, /"foo\.bar" can't be set: controller "foo" not available/],
    [{ cpu: { realtimeRuntime: 1000 } }, /not supported on cgroup v2/],
    [{ devices: [{ allow: true, access: 5 as unknown as string }] }, /devices\[0\]\.access: must be a string/],
  ];
  for (const [resources, re] of cases) {
    const root = fakeTree('');
    const m = newCgroupManager({ id: 'c1', layout: 'v2', fsRoot: root, selfCgroup: '0::/\n', cgroupsPath: '/new/c', resources, warn: () => {} });
    // The new dirs have no kernel files: add the ones these cases need once mkdir happened.
    const origMkdir = fs.promises.mkdir;
    (fs.promises as any).mkdir = async (p: fs.PathLike, o?: any) => {
      const r = await origMkdir(p, o);
      for (const f of IFACE) fs.writeFileSync(path.join(String(p), f), '');
      fs.writeFileSync(path.join(String(p), 'cgroup.controllers'), CONTROLLERS);
      return r;
    };
    let err: Error | null = null;
    try {
      await m.create();
    } catch (e) {
      err = e as Error;
    } finally {
      (fs.promises as any).mkdir = origMkdir;
    }
    assert.ok(err, `must fail: ${JSON.stringify(resources)}`);
    assert.match(err!.message, re);
    // Fake "kernel files" are regular files that rmdir cannot remove, so cleanup after a failed
    // create is asserted by the real-kernel tests (v1 on this host, v2 in the VM), not here.
  }
});

test('[fake tree] no eBPF loader: a clear error (TODO(native) until src/native/addon.ts provides loadDeviceFilter)', async () => {
  setDeviceFilterLoader(null);
  let native = false;
  try {
    native = typeof require('../src/native/addon').loadDeviceFilter === 'function';
  } catch {}
  if (native) return console.log('  native loadDeviceFilter is present: the missing-loader error path is not reachable');
  const { m } = fake('c3');
  await assertRejects(() => m.create(), /device rules on cgroup v2 need the native eBPF loader/);
});

test('[fake tree] stats, freeze, OOM watch, mountSteps', async () => {
  setDeviceFilterLoader(recordingLoader);
  const { m, dir } = fake('c4');
  await m.create();
  fs.writeFileSync(path.join(dir, 'cpu.stat'), 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 3\nnr_throttled 1\nthrottled_usec 20\n');
  fs.writeFileSync(path.join(dir, 'memory.current'), '4096\n');
  fs.writeFileSync(path.join(dir, 'memory.max'), 'max\n');
  fs.writeFileSync(path.join(dir, 'memory.stat'), 'anon 100\nfile 200\n');
  fs.writeFileSync(path.join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 2\noom 1\noom_kill 0\n');
  fs.writeFileSync(path.join(dir, 'pids.current'), '3\n');
  fs.writeFileSync(path.join(dir, 'pids.max'), '10\n');
  fs.writeFileSync(path.join(dir, 'io.stat'), '8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n');
  const st = parseStats(m.statsJson());
  assert.equal(st.cpu.usage, { total: 1500000, kernel: 500000, user: 1000000 });
  assert.equal(st.cpu.throttling, { periods: 3, throttledPeriods: 1, throttledTime: 20000 });
  assert.is(st.memory.usage.usage, 4096);
  assert.is(st.memory.usage.failcnt, 2);
  assert.is(st.memory.cache, 200);
  assert.equal(st.pids, { current: 3, limit: 10 });
  assert.equal(st.blkio.ioServiceBytesRecursive, [
    { major: 8, op: 'Read', value: 100 },
    { major: 8, op: 'Write', value: 200 },
  ]);
  fs.writeFileSync(path.join(dir, 'cgroup.events'), 'populated 1\nfrozen 1\n');
  await m.freeze();
  assert.is(read(dir, 'cgroup.freeze'), '1');
  assert.ok(m.isFrozen());
  let ooms = 0;
  const stop = m.watchOom(() => ooms++);
  fs.writeFileSync(path.join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\n');
  for (let i = 0; i < 30 && !ooms; i++) await sleep(50);
  stop();
  assert.is(ooms, 1);
  assert.equal(m.mountSteps('/sys/fs/cgroup', 15, true), [
    { kind: 'mount', source: 'cgroup', destination: '/sys/fs/cgroup', fstype: 'cgroup2', flags: 15, data: '', remountFlags: 0, propagation: [], recursiveAttrSet: 0, recursiveAttrClear: 0, sourceIsDir: true },
  ]);
});

// ---------------------------------------------------------------- real kernel (VM)

function gated(cmd: string): ChildProcess & { go(): void; done: Promise<{ code: number | null; signal: string | null }> } {
  const c = spawn('/bin/sh', ['-c', `read x; exec ${cmd}`], { stdio: ['pipe', 'ignore', 'ignore'] }) as any;
  c.done = new Promise((r) => c.on('exit', (code: number | null, signal: string | null) => r({ code, signal })));
  c.go = () => c.stdin.write('go\n');
  children.push(c);
  return c;
}

let nativeLoader = false;
function realManager(resources: NewCgroupManagerOptions['resources'], cgroupsPath?: string): CgroupManager {
  try {
    nativeLoader = typeof require('../src/native/addon').loadDeviceFilter === 'function';
  } catch {}
  if (!nativeLoader) setDeviceFilterLoader(recordingLoader);
  const m = newCgroupManager({ id: `tsrun-v2-${process.pid}-${managers.length}`, cgroupsPath, resources, warn: () => {} });
  managers.push(m);
  return m;
}

test('[real kernel] create, limits read back, memory OOM + watcher, pids, freeze, stats, destroy', async () => {
  if (!realV2) return console.log('  skipped: not a cgroup v2 host');
  const m = realManager({ memory: { limit: 32 << 20, swap: 32 << 20 }, pids: { limit: 8 }, cpu: { shares: 1024, quota: 50000, period: 100000 } });
  await m.create();
  const dir = m.state.paths[''];
  assert.is(read(dir, 'memory.max'), String(32 << 20));
  assert.is(read(dir, 'pids.max'), '8');
  assert.is(read(dir, 'cpu.weight'), '39');
  assert.is(read(dir, 'cpu.max'), '50000 100000');
  if (!nativeLoader) console.log('  NOTE: eBPF device filter NOT tested on the real kernel (no native loadDeviceFilter yet)');
  let ooms = 0;
  const stop = m.watchOom(() => ooms++);
  const c = gated('/bin/busybox sh -c "/bin/busybox dd if=/dev/zero bs=1M count=100 2>/dev/null | /bin/busybox tail > /dev/null"');
  await m.apply(c.pid!);
  c.go();
  const r = await c.done;
  assert.is.not(r.code, 0);
  for (let i = 0; i < 50 && !ooms; i++) await sleep(100);
  stop();
  assert.ok(ooms >= 1, 'OOM watcher fired');
  const s = gated('/bin/busybox sleep 1000');
  await m.apply(s.pid!);
  s.go();
  await m.freeze();
  assert.ok(m.isFrozen());
  await m.thaw();
  assert.not.ok(m.isFrozen());
  const st = parseStats(m.statsJson());
  assert.ok((st.cpu.usage.total ?? 0) > 0, 'cpu usage > 0');
  assert.ok((st.memory.usage.usage ?? 0) > 0, 'memory usage > 0');
  assert.is(st.pids.limit, 8);
  await m.update({ pids: { limit: 0 }, memory: { limit: 64 << 20, swap: 128 << 20 } });
  assert.is(read(dir, 'pids.max'), 'max');
  assert.is(read(dir, 'memory.max'), String(64 << 20));
  m.killAll(9);
  await s.done;
  await m.destroy();
  assert.not.ok(fs.existsSync(dir));
  await m.destroy();
});

test('[real kernel] bad value: error names file and value; nothing left behind', async () => {
  if (!realV2) return console.log('  skipped: not a cgroup v2 host');
  const m = realManager({ cpu: { cpus: '99999' } }, `/tsrun-v2bad-${process.pid}/c`);
  await assertRejects(() => m.create(), /cpuset\.cpus: write 99999: /);
  assert.not.ok(fs.existsSync(m.state.paths['']));
  assert.not.ok(fs.existsSync(path.dirname(m.state.paths[''])));
});

test.run();
