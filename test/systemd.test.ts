/**
 * The systemd cgroup driver without systemd: runc's cgroupsPath rules and error texts, slice
 * expansion, the unit properties a LinuxResources becomes (runc's conversions), the
 * org.systemd.property.* annotations, the manager's D-Bus call sequence against a recording bus,
 * and the CLI on a host without systemd. The real thing (a real systemd, real containers, and
 * runc side by side) is test/systemd-container.test.ts in the systemd VM (npm test -- systemd).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { detectLayout, isRunningSystemd, newCgroupManager, loadCgroupManager, setDeviceFilterLoader } from '../src/cgroups';
import { parseCgroupMounts } from '../src/cgroups/layout';
import { setSystemdBus, decodeProps, encodeProps, userBusAddress, USER_BUS_HINT, NO_USER_BUS, type BusTarget } from '../src/cgroups/systemd';
import { systemdNative } from '../src/native/addon';
import { annotationProps, deviceGroup, expandSlice, parseGVariant, parseSystemdCgroupsPath, rangeToBits, resourceProps, U64_MAX, type UnitProperty } from '../src/cgroups/systemd-props';
import { assertRejects, Sandbox, TSRUN } from './helpers/tsrun';
import { spawnSync } from 'node:child_process';

test('cgroupsPath: slice:prefix:name → unit and cgroup; empty → tsrun-<id>.scope in system.slice; runc\'s error texts', () => {
  assert.equal(parseSystemdCgroupsPath('system.slice:docker:abc', 'id'), { parent: 'system.slice', prefix: 'docker', name: 'abc', unit: 'docker-abc.scope', slice: 'system.slice', cgroup: '/system.slice/docker-abc.scope' });
  assert.equal(parseSystemdCgroupsPath('', 'c1').unit, 'tsrun-c1.scope');
  assert.equal(parseSystemdCgroupsPath(undefined, 'c1').cgroup, '/system.slice/tsrun-c1.scope');
  assert.is(parseSystemdCgroupsPath(':p:n', 'x').slice, 'system.slice', 'empty slice = system.slice');
  assert.is(parseSystemdCgroupsPath(':p:n', 'x', true).slice, 'user.slice', 'rootless: user.slice');
  assert.is(parseSystemdCgroupsPath('machine-a.slice:p:n', 'x').cgroup, '/machine.slice/machine-a.slice/p-n.scope');
  const sl = parseSystemdCgroupsPath('system.slice:p:my-x.slice', 'x');
  assert.is(sl.unit, 'my-x.slice', 'a name ending in .slice is a slice');
  assert.is(sl.cgroup, '/my.slice/my-x.slice');
  assert.throws(() => parseSystemdCgroupsPath('a:b', 'x'), /^linux\.cgroupsPath: expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, got "a:b" instead$/);
  assert.throws(() => parseSystemdCgroupsPath('/sys/a/b', 'x'), /expected cgroupsPath to be of format/);
  assert.throws(() => parseSystemdCgroupsPath('a:b:c:d', 'x'), /expected cgroupsPath to be of format/);
  assert.throws(() => parseSystemdCgroupsPath('bad:p:n', 'x'), /^invalid slice name: bad$/);
  assert.throws(() => parseSystemdCgroupsPath('system.slice:p:', 'x'), /unit name \(third field\) is empty/);
  assert.throws(() => parseSystemdCgroupsPath('system.slice:p:../../x', 'x'), /must not contain "\/"/);
});

test('expandSlice is runc\'s', () => {
  assert.is(expandSlice('-.slice'), '/');
  assert.is(expandSlice('a-b-c.slice'), '/a.slice/a-b.slice/a-b-c.slice');
  for (const bad of ['a--b.slice', '-a.slice', 'a/b.slice', 'x.scope', '.slic']) assert.throws(() => expandSlice(bad), /invalid slice name/, bad);
});

const props = (r: object, v2 = true, version = 252) => {
  const warns: string[] = [];
  const p = resourceProps(r, { v2, version: () => version, warn: (m) => warns.push(m), devices: false });
  return { map: new Map(p.map(([n, s, v]) => [n, [s, v]])), warns, list: p };
};

test('resources → properties: runc\'s conversions (v2 and v1)', () => {
  const a = props({ memory: { limit: 64 << 20, reservation: 1 << 20, swap: 128 << 20 }, pids: { limit: 77 }, cpu: { shares: 1024, quota: 50000, period: 100000, cpus: '0-1,3', mems: '0' } });
  assert.equal(a.map.get('MemoryMax'), ['t', BigInt(64 << 20)]);
  assert.equal(a.map.get('MemoryLow'), ['t', BigInt(1 << 20)]);
  assert.equal(a.map.get('MemorySwapMax'), ['t', BigInt(64 << 20)], 'v1 memsw - memory');
  assert.equal(a.map.get('CPUWeight'), ['t', 39n]);
  assert.equal(a.map.get('TasksMax'), ['t', 77n]);
  assert.equal(a.map.get('CPUQuotaPerSecUSec'), ['t', 500000n]);
  assert.equal(a.map.get('CPUQuotaPeriodUSec'), ['t', 100000n]);
  assert.equal(a.map.get('AllowedCPUs'), ['ay', Buffer.from([0b1011])]);
  assert.equal(a.map.get('AllowedMemoryNodes'), ['ay', Buffer.from([1])]);
  // rounding up to 10 ms per second; -1 = infinity; old systemd gets neither period nor cpuset
  assert.equal(props({ cpu: { quota: 12345, period: 100000 } }).map.get('CPUQuotaPerSecUSec'), ['t', 130000n]);
  assert.equal(props({ memory: { limit: -1 }, pids: { limit: -1 } }).map.get('MemoryMax'), ['t', U64_MAX]);
  assert.equal(props({ pids: { limit: -1 } }).map.get('TasksMax'), ['t', U64_MAX]);
  assert.not.ok(props({ pids: { limit: 0 } }).map.has('TasksMax'));
  const old = props({ cpu: { quota: 1000, period: 50000, cpus: '0' } }, true, 241);
  assert.not.ok(old.map.has('CPUQuotaPeriodUSec'));
  assert.not.ok(old.map.has('AllowedCPUs'));
  assert.ok(old.map.has('CPUQuotaPerSecUSec'));
  // v1 names
  const v1 = props({ memory: { limit: 1 << 20 }, cpu: { shares: 512 }, blockIO: { weight: 300 } }, false);
  assert.equal([...v1.map.keys()], ['MemoryLimit', 'CPUShares', 'BlockIOWeight']);
  assert.equal(props({}).list, [], 'nothing asked, nothing set');
  // unified keys systemd knows
  const u = props({ unified: { 'memory.high': '1000', 'pids.max': 'max', 'cpu.weight': '50', 'memory.oom.group': '1' } });
  assert.equal(u.map.get('MemoryHigh'), ['t', 1000n]);
  assert.equal(u.map.get('TasksMax'), ['t', U64_MAX]);
  assert.equal(u.map.get('CPUWeight'), ['t', 50n]);
  assert.is(u.list.length, 3, 'memory.oom.group is left to the files');
  assert.throws(() => props({ unified: { 'memory.max': 'lots' } }), /value conversion error/);
  assert.throws(() => props({ memory: { swap: 5 } }), /unable to set swap limit without memory limit/);
  assert.throws(() => rangeToBits('1-x', 'f'), /conversion error/);
});

test('devices → DevicePolicy=strict + DeviceAllow, as runc\'s generateDeviceProperties', () => {
  const p = resourceProps({ devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rw' }] }, { v2: true, version: () => 252, warn: () => {}, devices: true });
  assert.equal(p[0], ['DevicePolicy', 's', 'strict']);
  assert.equal(p[1], ['DeviceAllow', 'a(ss)', []]);
  const allow = new Map((p[2][2] as [string, string][]).map(([a, b]) => [a, b]));
  assert.is(allow.get('char-*'), 'm', 'runc default: mknod of any char device');
  assert.is(allow.get('block-*'), 'm');
  assert.is(allow.get('/dev/char/1:3'), 'rwm', 'the config rule merged with the default /dev/null rule');
  assert.is(allow.get('char-pts'), 'rwm', '136:* through its /proc/devices group');
  const all = resourceProps({ devices: [{ allow: true, access: 'rwm' }] }, { v2: true, version: () => 252, warn: () => {}, devices: true });
  assert.equal(all, [['DevicePolicy', 's', 'auto'], ['DeviceAllow', 'a(ss)', []]]);
  assert.is(deviceGroup('c', 136, 'Character devices:\n  1 mem\n136 pts\n\nBlock devices:\n  8 sd\n'), 'char-pts');
  assert.is(deviceGroup('b', 8, 'Character devices:\n  8 x\nBlock devices:\n  8 sd\n'), 'block-sd');
});

test('org.systemd.property.* annotations: GVariant text values, Sec → USec, runc\'s errors', () => {
  const p = annotationProps({
    'org.systemd.property.TimeoutStopSec': 'uint64 17',
    'org.systemd.property.CollectMode': "'inactive-or-failed'",
    'org.systemd.property.CPUWeight': 'uint64 300',
    'org.systemd.property.After': "['a.service', 'b.service']",
    'org.systemd.property.Wants': '@as []',
    'org.systemd.property.IOAccounting': 'true',
    'org.systemd.property.RuntimeMaxSec': '2.5',
    'other.annotation': 'x',
  });
  assert.equal(p, [
    ['TimeoutStopUSec', 't', 17000000n],
    ['CollectMode', 's', 'inactive-or-failed'],
    ['CPUWeight', 't', 300n],
    ['After', 'as', ['a.service', 'b.service']],
    ['Wants', 'as', []],
    ['IOAccounting', 'b', true],
    ['RuntimeMaxUSec', 't', 2500000n],
  ]);
  assert.equal(parseGVariant('42'), { sig: 'i', value: 42 });
  assert.equal(parseGVariant('int64 -5'), { sig: 'x', value: -5n });
  assert.equal(parseGVariant('"dq"'), { sig: 's', value: 'dq' });
  assert.throws(() => annotationProps({ 'org.systemd.property.ab': '1' }), /annotation org\.systemd\.property\.ab name incorrect: too short/);
  assert.throws(() => annotationProps({ 'org.systemd.property.Bad1': '1' }), /name incorrect: contains non-alphabetic character/);
  assert.throws(() => annotationProps({ 'org.systemd.property.Foo': 'uint8 1' }), /annotation org\.systemd\.property\.Foo=uint8 1 value parse error/);
  assert.throws(() => annotationProps({ 'org.systemd.property.Foo': '[1, "a"]' }), /value parse error/);
  assert.throws(() => annotationProps({ 'org.systemd.property.TimeoutSec': "'x'" }), /value parse error: not a number/);
  assert.throws(() => annotationProps({ 'org.systemd.property.Foo': 'uint32 5000000000' }), /out of range/);
  // saved state is JSON: bigints and byte arrays survive the round trip
  const enc = JSON.parse(JSON.stringify(encodeProps([['A', 't', U64_MAX], ['B', 'ay', Buffer.from([1, 2])], ['C', 'as', ['x']]])));
  assert.equal(decodeProps(enc), [['A', 't', U64_MAX], ['B', 'ay', Buffer.from([1, 2])], ['C', 'as', ['x']]]);
});

/**
 * A fake cgroup2 tree and a bus that records the calls (and which bus each went to: `targets`)
 * and plays systemd's part on the tree. The user's manager (a call on a user bus address) lives
 * at `USER_MANAGER_CG`, as user@<uid>.service does; its units go below it.
 */
const USER_MANAGER_CG = '/user.slice/user-999.slice/user@999.service';
function fakeHost() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-sdfake-'));
  fs.writeFileSync(path.join(root, 'cgroup.controllers'), 'memory pids');
  fs.writeFileSync(path.join(root, 'cgroup.subtree_control'), '');
  fs.mkdirSync(path.join(root, 'system.slice'));
  fs.writeFileSync(path.join(root, 'system.slice/cgroup.subtree_control'), '');
  const calls: string[] = [];
  const targets: BusTarget[] = [];
  const units = new Map<string, { active: string; props: UnitProperty[]; dir?: string }>();
  let startResult = 'done';
  const bus = {
    systemdStartTransientUnit(t: BusTarget, name: string, mode: string, p: UnitProperty[]) {
      targets.push(t);
      calls.push(`start ${name} ${mode} ${p.map((x) => x[0]).join(',')}`);
      if (units.has(name)) throw Object.assign(new Error(`Unit ${name} was already loaded or has a fragment file.`), { code: 'org.freedesktop.systemd1.UnitExists' });
      // Where systemd puts a scope: its Slice= below the manager's own cgroup.
      const slice = p.find((x) => x[0] === 'Slice')?.[2] as string;
      const dir = path.join(root, t === false ? '' : USER_MANAGER_CG, expandSlice(slice), name);
      fs.mkdirSync(dir, { recursive: true });
      for (const f of ['memory.max', 'pids.max', 'cgroup.procs', 'cgroup.freeze']) fs.writeFileSync(path.join(dir, f), '');
      units.set(name, { active: startResult === 'done' ? 'active' : 'failed', props: p, dir });
      return startResult;
    },
    systemdStopUnit(t: BusTarget, name: string) {
      targets.push(t);
      calls.push(`stop ${name}`);
      const u = units.get(name);
      if (!u) throw Object.assign(new Error(`Unit ${name} not loaded.`), { code: 'org.freedesktop.systemd1.NoSuchUnit' });
      fs.rmSync(u.dir ?? path.join(root, 'system.slice', name), { recursive: true, force: true });
      if (u.active !== 'failed') units.delete(name);
      return 'done';
    },
    systemdResetFailedUnit(t: BusTarget, name: string) {
      targets.push(t);
      calls.push(`reset-failed ${name}`);
      if (units.get(name)?.active === 'failed') units.delete(name);
    },
    systemdSetUnitProperties(t: BusTarget, name: string, runtime: boolean, p: UnitProperty[]) {
      targets.push(t);
      calls.push(`set ${name} ${runtime} ${p.map((x) => `${x[0]}=${x[2]}`).join(',')}`);
    },
    systemdUnitState(t: BusTarget, name: string) {
      targets.push(t);
      const u = units.get(name);
      return u ? { activeState: u.active, subState: u.active, loadState: 'loaded' } : null;
    },
    systemdManagerProperty(t: BusTarget, name: string) {
      targets.push(t);
      calls.push(`get ${name}`);
      if (name === 'Version') return '252.39-1~deb12u2';
      return t === false ? '/' : USER_MANAGER_CG;
    },
  };
  setSystemdBus(bus);
  return {
    root,
    calls,
    targets,
    units,
    failNextStart: () => (startResult = 'failed'),
    done: () => {
      setSystemdBus(null);
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

test('manager: the unit starts with the init in PIDs, then the files; update = SetUnitProperties + files; destroy stops it (control: the fake sees live units)', async () => {
  const h = fakeHost();
  try {
    const m = newCgroupManager({ id: 'c1', systemd: true, cgroupsPath: 'system.slice:tsrun:c1', resources: { memory: { limit: 1 << 20 }, pids: { limit: 9 } }, layout: 'v2', fsRoot: h.root, annotations: { 'org.systemd.property.TimeoutStopSec': 'uint64 5' } });
    assert.equal(m.state.systemd, { unit: 'tsrun-c1.scope', slice: 'system.slice', user: false, extra: [['TimeoutStopUSec', 't', { u64: '5000000' }]] });
    assert.is(m.state.paths[''], path.join(h.root, 'system.slice/tsrun-c1.scope'));
    await m.create();
    assert.equal(h.calls, [], 'nothing happens before the pid is known');
    assert.is(m.isFrozen(), false);
    assert.equal(m.pids(), []);
    const loaded: string[] = [];
    setDeviceFilterLoader((dir) => loaded.push(dir));
    try {
      await m.apply(4242);
    } finally {
      setDeviceFilterLoader(null);
    }
    assert.equal(loaded, [m.state.paths['']], 'the fs part (device filter) on the unit\'s directory');
    assert.is(fs.readFileSync(path.join(m.state.paths[''], 'memory.max'), 'utf8'), '1048576');
    assert.is(fs.readFileSync(path.join(m.state.paths[''], 'cgroup.procs'), 'utf8'), '4242');
    assert.match(h.calls[0], /^start tsrun-c1\.scope replace Description,Slice,Delegate,PIDs,MemoryAccounting,CPUAccounting,IOAccounting,TasksAccounting,DefaultDependencies,DevicePolicy,DeviceAllow,DeviceAllow,MemoryMax,TasksMax,TimeoutStopUSec$/);
    const sent = new Map(h.units.get('tsrun-c1.scope')!.props.map(([n, s, v]) => [n, [s, v]]));
    assert.equal(sent.get('PIDs'), ['au', [4242]]);
    assert.equal(sent.get('Delegate'), ['b', true]);
    assert.equal(sent.get('MemoryMax'), ['t', 1048576n]);
    assert.equal(sent.get('TimeoutStopUSec'), ['t', 5000000n]);
    // A later command loads the manager from the saved state (JSON round trip).
    const again = loadCgroupManager(JSON.parse(JSON.stringify(m.state)), { fsRoot: h.root });
    await again.update({ memory: { limit: 2 << 20 } });
    assert.is(h.calls[h.calls.length - 1], 'set tsrun-c1.scope true MemoryMax=2097152');
    assert.is(fs.readFileSync(path.join(m.state.paths[''], 'memory.max'), 'utf8'), '2097152');
    // A value the files refuse (no real-time limits on v2) leaves the unit's properties alone too.
    const before = h.calls.length;
    await assertRejects(() => again.update({ cpu: { shares: 1024, realtimeRuntime: 1000 } }), /real-time scheduling limits are not supported on cgroup v2/);
    assert.equal(h.calls.slice(before), [], 'no SetUnitProperties (CPUWeight) for a refused update');
    assert.ok(h.units.has('tsrun-c1.scope'), 'control: the unit is there before destroy');
    await again.destroy();
    assert.is(h.calls[h.calls.length - 1], 'stop tsrun-c1.scope');
    assert.not.ok(h.units.has('tsrun-c1.scope'));
    assert.not.ok(fs.existsSync(m.state.paths['']));
    // Destroying again (delete -f after a crash): NoSuchUnit is success.
    await again.destroy();
    assert.ok(h.targets.length > 5 && h.targets.every((t) => t === false), 'as root every call went to the system bus');
  } finally {
    h.done();
  }
});

test('manager: a failed start job is reset and reported; a failed unit is reset on destroy; UnitExists resets and retries once, and then the live unit is not ours to stop', async () => {
  const h = fakeHost();
  try {
    const m = newCgroupManager({ id: 'c2', systemd: true, layout: 'v2', fsRoot: h.root });
    h.failNextStart();
    await assertRejects(() => m.apply(1), /error creating systemd unit `tsrun-c2\.scope`: got `failed`/);
    assert.is(h.calls[h.calls.length - 1], 'reset-failed tsrun-c2.scope');
    const u = { active: 'failed', props: [] };
    h.units.set('tsrun-c2.scope', u);
    await m.destroy();
    assert.equal(h.calls.slice(-2), ['stop tsrun-c2.scope', 'reset-failed tsrun-c2.scope']);
    assert.not.ok(h.units.has('tsrun-c2.scope'));
    h.units.set('tsrun-c2.scope', { active: 'active', props: [] });
    await assertRejects(() => m.apply(1), /unable to start unit "tsrun-c2\.scope": Unit tsrun-c2\.scope was already loaded/);
    assert.equal(h.calls.slice(-3).map((c) => c.split(' ').slice(0, 2).join(' ')), ['start tsrun-c2.scope', 'reset-failed tsrun-c2.scope', 'start tsrun-c2.scope']);
    // That live unit is someone else's: the failed create's cleanup leaves it alone.
    const n = h.calls.length;
    const scope = path.join(h.root, 'system.slice/tsrun-c2.scope');
    fs.mkdirSync(scope);
    fs.writeFileSync(path.join(scope, 'cgroup.procs'), '999999999\n');
    fs.writeFileSync(path.join(scope, 'cgroup.kill'), '');
    m.killAll(9);
    assert.is(fs.readFileSync(path.join(scope, 'cgroup.kill'), 'utf8'), '', 'no kill written into the foreign unit');
    await m.destroy({ killLeftovers: true });
    assert.equal(h.calls.slice(n), []);
    assert.ok(h.units.has('tsrun-c2.scope'));
    // (control: a manager that did not hit UnitExists does stop it)
    const mine = loadCgroupManager(m.state, { fsRoot: h.root });
    mine.killAll(9);
    assert.is(fs.readFileSync(path.join(scope, 'cgroup.kill'), 'utf8'), '1');
    await mine.destroy();
    assert.is(h.calls[h.calls.length - 1], 'stop tsrun-c2.scope');
  } finally {
    h.done();
  }
});

/** Runs f with these environment variables set (undefined = unset), then puts them back. */
async function withEnv<T>(vars: Record<string, string | undefined>, f: () => T | Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const set = (v: Record<string, string | undefined>) => {
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined) delete process.env[k];
      else process.env[k] = x;
    }
  };
  set(vars);
  try {
    return await f();
  } finally {
    set(saved);
  }
}

test('user bus address: runc\'s rule ($DBUS_SESSION_BUS_ADDRESS, else $XDG_RUNTIME_DIR/bus when it exists, escaped), else runc\'s error', () => {
  const xdg = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun sd xdg-'));
  try {
    const noBus = `${USER_BUS_HINT}: ${NO_USER_BUS}`;
    assert.throws(() => userBusAddress({}), (e: Error) => e.message === noBus);
    assert.throws(() => userBusAddress({ XDG_RUNTIME_DIR: xdg, DBUS_SESSION_BUS_ADDRESS: '' }), (e: Error) => e.message === noBus, 'no bus socket there');
    fs.writeFileSync(path.join(xdg, 'bus'), '');
    // (control for the line above: the same directory with a bus in it)
    assert.is(userBusAddress({ XDG_RUNTIME_DIR: xdg }), `unix:path=${xdg.replace(/ /g, '%20')}/bus`, 'a space is escaped as godbus does');
    assert.is(userBusAddress({ XDG_RUNTIME_DIR: xdg, DBUS_SESSION_BUS_ADDRESS: 'unix:path=/x/y' }), 'unix:path=/x/y', 'the variable wins');
  } finally {
    fs.rmSync(xdg, { recursive: true, force: true });
  }
});

test('rootless: the user\'s manager over its bus; the unit in user.slice below the manager\'s cgroup (or the given slice); every later call on that bus (control: root\'s go to the system bus)', async () => {
  const h = fakeHost();
  const addr = 'unix:path=/run/user/999/bus';
  try {
    await withEnv({ DBUS_SESSION_BUS_ADDRESS: addr }, async () => {
      const m = newCgroupManager({ id: 'c4', systemd: true, rootless: true, resources: { memory: { limit: 1 << 20 } }, layout: 'v2', fsRoot: h.root });
      assert.equal(m.state.systemd, { unit: 'tsrun-c4.scope', slice: 'user.slice', user: true });
      assert.is(m.state.paths[''], path.join(h.root, USER_MANAGER_CG, 'user.slice/tsrun-c4.scope'));
      assert.equal(h.calls, ['get ControlGroup'], 'the manager\'s cgroup is asked before anything exists');
      await m.create();
      setDeviceFilterLoader(() => {});
      try {
        await m.apply(4343);
      } finally {
        setDeviceFilterLoader(null);
      }
      const sent = new Map(h.units.get('tsrun-c4.scope')!.props.map(([n, s, v]) => [n, [s, v]]));
      assert.equal(sent.get('Slice'), ['s', 'user.slice'], 'Slice= is relative to the user manager (runc: no user@ prefix)');
      assert.is(fs.readFileSync(path.join(m.state.paths[''], 'memory.max'), 'utf8'), '1048576');
      assert.is(fs.readFileSync(path.join(m.state.paths[''], 'cgroup.procs'), 'utf8'), '4343');
      const again = loadCgroupManager(JSON.parse(JSON.stringify(m.state)), { fsRoot: h.root });
      await again.update({ memory: { limit: 2 << 20 } });
      await again.destroy();
      assert.not.ok(h.units.has('tsrun-c4.scope'));
      assert.not.ok(fs.existsSync(m.state.paths['']));
      assert.ok(h.targets.length > 4, String(h.targets.length));
      assert.equal([...new Set(h.targets)], [addr], 'every call on the user bus');
      const named = newCgroupManager({ id: 'c5', systemd: true, rootless: true, cgroupsPath: 'mine-a.slice:p:n', layout: 'v2', fsRoot: h.root });
      assert.is(named.state.paths[''], path.join(h.root, USER_MANAGER_CG, 'mine.slice/mine-a.slice/p-n.scope'));
      assert.is(named.state.systemd!.slice, 'mine-a.slice');
    });
  } finally {
    h.done();
  }
});

test('rootless without a user bus: create fails with runc\'s words before any D-Bus call; a later delete says the same; a failed connection gets runc\'s hint (the real addon)', async () => {
  const h = fakeHost();
  const xdg = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-sd-nobus-'));
  try {
    const noBus = `${USER_BUS_HINT}: ${NO_USER_BUS}`;
    await withEnv({ DBUS_SESSION_BUS_ADDRESS: undefined, XDG_RUNTIME_DIR: xdg }, async () => {
      assert.throws(() => newCgroupManager({ id: 'c6', systemd: true, rootless: true, layout: 'v2', fsRoot: h.root }), (e: Error) => e.message === noBus);
      assert.equal(h.calls, [], 'nothing was asked of any bus');
      // (control: root's manager is made without a user bus)
      newCgroupManager({ id: 'c6', systemd: true, layout: 'v2', fsRoot: h.root });
      const saved = { layout: 'v2' as const, paths: { '': path.join(h.root, USER_MANAGER_CG, 'user.slice/tsrun-c6.scope') }, systemd: { unit: 'tsrun-c6.scope', slice: 'user.slice', user: true } };
      const stop = await loadCgroupManager(saved, { fsRoot: h.root }).destroy({ timeoutMs: 100 }).then(() => null, (e: Error) => e.message);
      assert.is(stop, `unable to stop unit "tsrun-c6.scope": ${noBus}`);
    });
    // An address that is there but has no bus behind it: the addon's connect error, with runc's hint.
    setSystemdBus(null);
    const missing = path.join(xdg, 'bus');
    let err: NodeJS.ErrnoException | null = null;
    try {
      systemdNative().systemdManagerProperty(`unix:path=${missing}`, 'ControlGroup');
    } catch (e) {
      err = e as NodeJS.ErrnoException;
    }
    assert.ok(err, 'the addon refused a bus that is not there');
    assert.is(err!.code, 'ENOENT');
    assert.is(err!.syscall, `connect to the user D-Bus at unix:path=${missing}`);
    await withEnv({ DBUS_SESSION_BUS_ADDRESS: `unix:path=${missing}` }, () => {
      assert.throws(() => newCgroupManager({ id: 'c7', systemd: true, rootless: true, layout: 'v2', fsRoot: h.root }), (e: Error) => e.message === `${USER_BUS_HINT}: connect to the user D-Bus at unix:path=${missing}: No such file or directory`);
    });
  } finally {
    h.done();
    fs.rmSync(xdg, { recursive: true, force: true });
  }
});

test('v1/hybrid: the unit\'s directory in every hierarchy (this host\'s mounts); unified refused; rootless refused on v1', async () => {
  const layout = detectLayout();
  if (layout === 'v2') {
    console.log('    systemd: this host is cgroup v2: the v1 path layout case did NOT run here');
    return;
  }
  const m = newCgroupManager({ id: 'c3', systemd: true, cgroupsPath: 'machine-x.slice:p:c3', layout });
  const mounts = parseCgroupMounts(fs.readFileSync('/proc/self/mountinfo', 'utf8'));
  const mem = mounts.find((x) => x.fstype === 'cgroup' && x.controllers.includes('memory'))!;
  assert.is(m.state.paths.memory, path.join(mem.mountpoint, '/machine.slice/machine-x.slice/p-c3.scope'));
  assert.is(m.state.paths.devices.endsWith('/machine.slice/machine-x.slice/p-c3.scope'), true);
  if (layout === 'hybrid') assert.is(m.state.paths[''], path.join(mounts.find((x) => x.fstype === 'cgroup2')!.mountpoint, '/machine.slice/machine-x.slice/p-c3.scope'));
  const props = resourceProps({ memory: { limit: 1 << 20 } }, { v2: false, version: () => 252, warn: () => {}, devices: false });
  assert.equal(props, [['MemoryLimit', 't', 1048576n]]);
  assert.throws(() => newCgroupManager({ id: 'c3', systemd: true, layout, rootless: true }), /cannot use rootless systemd cgroups manager on cgroup v1/);
  const u = newCgroupManager({ id: 'c3', systemd: true, layout, resources: { unified: { 'memory.max': '1' } } });
  await assertRejects(() => u.create(), /^linux\.resources\.unified: invalid configuration: cannot use unified on cgroup v1$/);
});

test('CLI on a host without systemd: create/run --systemd-cgroup fail with runc\'s one line, nothing left; features and --help tell the truth', () => {
  if (isRunningSystemd()) {
    console.log('    systemd: this host runs systemd: the "no systemd" case did NOT run here');
    return;
  }
  // Control: the same bundle is fine with the fs driver, so the failure below is the flag's.
  const s = new Sandbox(['true']);
  try {
    const ok = s.tsrun(['run', '-b', s.bundle, s.id]);
    assert.is(ok.status, 0, ok.stderr);
    for (const cmd of ['create', 'run']) {
      const r = s.tsrun(['--systemd-cgroup', cmd, '-b', s.bundle, s.id]);
      assert.is(r.status, 1);
      assert.is(r.stderr.trim(), 'systemd not running on this host, cannot use systemd cgroups manager');
    }
    assert.equal(s.leftovers(), []);
  } finally {
    s.cleanup();
  }
  const f = JSON.parse(spawnSync(TSRUN, ['features'], { encoding: 'utf8' }).stdout);
  assert.is(f.linux.cgroup.systemd, true);
  // The user manager: test/systemd-rootless.test.ts in the systemd VM is what backs this.
  assert.is(f.linux.cgroup.systemdUser, true);
  const h = spawnSync(TSRUN, ['--help'], { encoding: 'utf8' }).stdout;
  assert.match(h, /--systemd-cgroup\s+create the container's cgroup as a transient systemd unit/);
  assert.not.match(h, /not supported yet\)?\s*\n.*systemd/);
});

test.run();
