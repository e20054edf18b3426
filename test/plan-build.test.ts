/** config → InitPlan: every name resolved into the numbers tsrun-init uses, as runc resolves them. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { CreatePlan, PlanMountStep } from '../src/native/init-plan';
import { SpecError } from '../src/bundle/load';
import * as M from '../src/bundle/mount-options';
import { buildCreatePlan, buildExecPlan, statBindSources, type CreatePlanOptions } from '../src/plan/plan';
import type { Spec } from '../src/bundle/types';
import { assertValidPlan } from './helpers/plan-schema';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-plan-build-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
fs.mkdirSync(path.join(tmp, 'rootfs'));
fs.mkdirSync(path.join(tmp, 'data'));
fs.writeFileSync(path.join(tmp, 'file.txt'), 'x');

function spec(mutate?: (c: any) => void): Spec {
  const c: any = {
    ociVersion: '1.2.0',
    process: { user: { uid: 0, gid: 0 }, args: ['sh'], cwd: '/' },
    root: { path: 'rootfs' },
    mounts: [],
    linux: { namespaces: [{ type: 'pid' }, { type: 'mount' }] },
  };
  mutate?.(c);
  return c;
}

function plan(mutate?: (c: any) => void, extra: Partial<CreatePlanOptions> = {}): { plan: CreatePlan; warnings: string[]; cgroupCalls: unknown[][] } {
  const warnings: string[] = [];
  const cgroupCalls: unknown[][] = [];
  const p = buildCreatePlan({
    id: 'c1',
    bundle: tmp,
    config: spec(mutate),
    execFifo: '/run/x/exec.fifo',
    consoleSocket: '',
    noPivot: false,
    preserveFds: 0,
    waitForExit: false,
    statePrefix: '{"pid":',
    stateSuffix: '}',
    seccomp: null,
    cgroupMountSteps: (d, f, n) => {
      cgroupCalls.push([d, f, n]);
      return [{ kind: 'mkdir', path: d, mode: 0o555 }];
    },
    warn: (m) => warnings.push(m),
    ...extra,
  });
  // Every plan this file builds fits schemas/plan.schema.json (the shape tsrun-init checks).
  assertValidPlan(p);
  return { plan: p, warnings, cgroupCalls };
}

const mountStep = (s: PlanMountStep) => {
  assert.is(s.kind, 'mount');
  return s as Extract<PlanMountStep, { kind: 'mount' }>;
};

test('bind mounts: MS_BIND(+MS_REC), the rest as remount flags, source against the bundle', () => {
  const { plan: p } = plan((c) => {
    c.mounts = [
      { destination: '/data', type: 'bind', source: 'data', options: ['rbind', 'ro', 'nosuid', 'rprivate'] },
      { destination: '/etc/f', type: 'none', source: path.join(tmp, 'file.txt'), options: ['bind'] },
      { destination: '/r', source: 'data', options: ['rbind', 'rro'] },
    ];
  });
  const [a, b, r] = p.mountSteps.map(mountStep);
  assert.equal(a, {
    kind: 'mount',
    source: path.join(tmp, 'data'),
    destination: '/data',
    fstype: '',
    flags: M.MS_BIND | M.MS_REC,
    data: '',
    remountFlags: M.MS_RDONLY | M.MS_NOSUID,
    propagation: [M.MS_PRIVATE | M.MS_REC],
    recursiveAttrSet: 0,
    recursiveAttrClear: 0,
    sourceIsDir: true,
  });
  assert.is(b.flags, M.MS_BIND);
  assert.is(b.remountFlags, 0);
  assert.is(b.sourceIsDir, false);
  assert.is(r.recursiveAttrSet, M.MOUNT_ATTR_RDONLY);
  assert.is(r.remountFlags, 0);
});

test('non-bind mounts get their flags and data directly; destinations are cleaned', () => {
  const { plan: p } = plan((c) => {
    c.mounts = [{ destination: '/dev/shm/', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] }];
  });
  const s = mountStep(p.mountSteps[0]);
  assert.is(s.destination, '/dev/shm');
  assert.is(s.fstype, 'tmpfs');
  assert.is(s.source, 'shm');
  assert.is(s.flags, M.MS_NOSUID | M.MS_NOEXEC | M.MS_NODEV);
  assert.is(s.data, 'mode=1777,size=65536k');
  assert.is(s.remountFlags, 0);
  assert.is(s.sourceIsDir, true);
});

test('bind sources are stat\'ed beforehand off the event loop, and the plan takes what was found', async () => {
  fs.writeFileSync(path.join(tmp, 'a-file'), '');
  const config = spec((c) => (c.mounts = [
    { destination: '/d', source: tmp, options: ['rbind'] },
    { destination: '/f', source: 'a-file', options: ['bind'] },
    { destination: '/m', source: 'missing', type: 'bind' },
    { destination: '/t', source: 'tmpfs', type: 'tmpfs' },
  ]));
  const found = await statBindSources(config, tmp);
  assert.equal([...found.entries()].sort(), [
    [tmp, { isDir: true }],
    [path.join(tmp, 'a-file'), { isDir: false }],
    [path.join(tmp, 'missing'), { error: 'no such file or directory' }],
  ].sort());
  // The plan uses the map, not a stat of its own: a "directory" that does not exist is planned.
  const given = plan((c) => (c.mounts = [{ destination: '/g', source: '/nonexistent-given', options: ['rbind'] }]), { bindSources: new Map([['/nonexistent-given', { isDir: true }]]) });
  assert.is((given.plan.mountSteps.find((m: any) => m.destination === '/g') as any).sourceIsDir, true);
  // Control: without the map it is stat'ed, and missing.
  assert.throws(() => plan((c) => (c.mounts = [{ destination: '/g', source: '/nonexistent-given', options: ['rbind'] }])), /stat \/nonexistent-given: no such file or directory/);
});

test('a missing bind source is an error naming the mount', () => {
  assert.throws(
    () => plan((c) => (c.mounts = [{ destination: '/x', source: 'nope', options: ['bind'] }])),
    (e: SpecError) => e instanceof SpecError && e.message === `config.json: /mounts/0: bind mount ${tmp}/nope on /x: stat ${tmp}/nope: no such file or directory`,
  );
  assert.throws(() => plan((c) => (c.mounts = [{ destination: '/x', source: 'tmpfs' }])), /\/mounts\/0\/type: required for a mount that is not a bind mount/);
  // An id-mapped bind carries its mappings; without its own, the container's (or the joined
  // user namespace: empty lists); "ridmap" is the recursive one; a plain bind has no idmap.
  const map = [{ containerID: 0, hostID: 100000, size: 65536 }];
  const other = [{ containerID: 0, hostID: 200000, size: 10 }];
  const idm = (m: object, mutate?: (c: any) => void) =>
    (plan((c) => ((c.mounts = [{ destination: '/x', source: '/tmp', ...m }]), mutate?.(c))).plan.mountSteps.find((s: any) => s.destination === '/x') as any).idmap;
  assert.is(idm({ options: ['rbind'] }), undefined);
  assert.equal(idm({ options: ['rbind'], uidMappings: map, gidMappings: other }), { recursive: false, uidMappings: map, gidMappings: other });
  assert.equal(idm({ options: ['rbind', 'ridmap'], uidMappings: map, gidMappings: map }), { recursive: true, uidMappings: map, gidMappings: map });
  const userns = (c: any) => (c.linux.namespaces.push({ type: 'user' }), (c.linux.uidMappings = other), (c.linux.gidMappings = other));
  assert.equal(idm({ options: ['rbind', 'idmap'] }, userns), { recursive: false, uidMappings: other, gidMappings: other });
  assert.equal(idm({ options: ['bind', 'ridmap'] }, (c) => c.linux.namespaces.push({ type: 'user', path: '/proc/self/ns/user' })), { recursive: true, uidMappings: [], gidMappings: [] });
  // tmpcopyup is planned on tmpfs (and ignored elsewhere, as runc does).
  const cu = plan((c) => (c.mounts = [{ destination: '/x', type: 'tmpfs', source: 'tmpfs', options: ['tmpcopyup'] }]));
  assert.is((cu.plan.mountSteps.find((m: any) => m.destination === "/x") as any).copyUp, true);
});

test('cgroup mounts come from the cgroup manager, with the flags and whether the cgroupns is new', () => {
  const ro = M.MS_NOSUID | M.MS_NOEXEC | M.MS_NODEV | M.MS_RELATIME | M.MS_RDONLY;
  const opts = ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'];
  const a = plan((c) => (c.mounts = [{ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: opts }]));
  assert.equal(a.cgroupCalls, [['/sys/fs/cgroup', ro, false]]);
  assert.equal(a.plan.mountSteps, [{ kind: 'mkdir', path: '/sys/fs/cgroup', mode: 0o555 }]);
  const b = plan((c) => ((c.mounts = [{ destination: '/sys/fs/cgroup', type: 'cgroup', options: opts }]), c.linux.namespaces.push({ type: 'cgroup' })));
  assert.equal(b.cgroupCalls, [['/sys/fs/cgroup', ro, true]]);
});

test('default devices, linux.devices merged (the config wins on a path), ptmx and /dev symlinks', () => {
  const { plan: p } = plan((c) => {
    c.mounts = [{ destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'mode=755'] }];
    c.linux.devices = [
      { type: 'c', path: '/dev/null', major: 1, minor: 3, fileMode: 0o20600, uid: 5, gid: 6 },
      { type: 'b', path: '/dev/sda', major: 8, minor: 0 },
      { type: 'u', path: '/dev/u', major: 10, minor: 1 },
      { type: 'b', path: '/dev/sda', major: 8, minor: 1 },
    ];
  });
  assert.is(p.setupDev, true);
  assert.equal(
    p.devices.map((d) => [d.path, d.type, d.major, d.minor, d.fileMode, d.uid, d.gid, d.bind]),
    [
      ['/dev/random', 'c', 1, 8, 0o666, 0, 0, false],
      ['/dev/full', 'c', 1, 7, 0o666, 0, 0, false],
      ['/dev/tty', 'c', 5, 0, 0o666, 0, 0, false],
      ['/dev/zero', 'c', 1, 5, 0o666, 0, 0, false],
      ['/dev/urandom', 'c', 1, 9, 0o666, 0, 0, false],
      ['/dev/null', 'c', 1, 3, 0o600, 5, 6, false],
      ['/dev/sda', 'b', 8, 1, 0o666, 0, 0, false],
      ['/dev/u', 'c', 10, 1, 0o666, 0, 0, false],
    ],
  );
  const links = p.devSymlinks.map((l) => `${l.linkPath}->${l.target}`);
  assert.equal(links.slice(0, 5), ['/dev/ptmx->pts/ptmx', '/dev/fd->/proc/self/fd', '/dev/stdin->/proc/self/fd/0', '/dev/stdout->/proc/self/fd/1', '/dev/stderr->/proc/self/fd/2']);
  assert.is(links.includes('/dev/core->/proc/kcore'), fs.existsSync('/proc/kcore'));
});

test('devices are bind-mounted in a user namespace; a bind-mounted /dev is left alone', () => {
  const map = [{ containerID: 0, hostID: 100000, size: 65536 }];
  const u = plan((c) => (c.linux.namespaces.unshift({ type: 'network' }), c.linux.namespaces.push({ type: 'user' }), (c.linux.uidMappings = map), (c.linux.gidMappings = map)));
  assert.ok(u.plan.devices.length >= 6 && u.plan.devices.every((d) => d.bind));
  assert.equal(u.plan.namespaces.map((n) => n.type), ['user', 'network', 'pid', 'mount'], 'user first, the rest in order');
  assert.equal(u.plan.uidMappings, map);
  const b = plan((c) => (c.mounts = [{ destination: '/dev', source: '/dev', options: ['rbind'] }]));
  assert.is(b.plan.setupDev, false);
  assert.equal(b.plan.devices, []);
  assert.equal(b.plan.devSymlinks, []);
});

test('root propagation: MS_SLAVE|MS_REC by default, rootfsPropagation mapped when set', () => {
  assert.is(plan().plan.rootPropagation, M.MS_SLAVE | M.MS_REC);
  assert.is(plan().plan.rootPropagationExplicit, false);
  const expect: Record<string, number> = {
    private: M.MS_PRIVATE, rprivate: M.MS_PRIVATE | M.MS_REC, shared: M.MS_SHARED, rshared: M.MS_SHARED | M.MS_REC,
    slave: M.MS_SLAVE, rslave: M.MS_SLAVE | M.MS_REC, unbindable: M.MS_UNBINDABLE, runbindable: M.MS_UNBINDABLE | M.MS_REC,
  };
  for (const [name, flags] of Object.entries(expect)) {
    const p = plan((c) => (c.linux.rootfsPropagation = name)).plan;
    assert.is(p.rootPropagation, flags, name);
    assert.is(p.rootPropagationExplicit, true);
  }
});

test('process: rlimits, umask default, capabilities, user, console size', () => {
  const { plan: p, warnings } = plan((c) => {
    c.process.rlimits = [
      { type: 'RLIMIT_NOFILE', soft: 1024, hard: 4096 },
      { type: 'RLIMIT_CORE', soft: '18446744073709551615', hard: '18446744073709551615' },
      { type: 'RLIMIT_RTTIME', soft: 2 ** 64, hard: 2 ** 64 },
    ];
    c.process.capabilities = { bounding: ['CAP_CHOWN', 'CAP_SYS_ADMIN', 'CAP_WHATEVER'], effective: ['CAP_KILL'], ambient: [] };
    c.process.user = { uid: 1000, gid: 100, additionalGids: [5, 6] };
    c.process.consoleSize = { height: 24, width: 80 };
    c.process.terminal = true;
  });
  assert.equal(p.process.rlimits, [
    { resource: 7, soft: 1024, hard: 4096 },
    { resource: 4, soft: '18446744073709551615', hard: '18446744073709551615' },
    { resource: 15, soft: '18446744073709551615', hard: '18446744073709551615' },
  ]);
  assert.is(p.process.umask, 0o022);
  assert.equal(p.process.capabilities, { bounding: [0, 21], effective: [5], permitted: [], inheritable: [], ambient: [] });
  assert.equal(warnings, ['ignoring unknown or unavailable capabilities: [CAP_WHATEVER]']);
  assert.equal([p.process.uid, p.process.gid, p.process.additionalGids], [1000, 100, [5, 6]]);
  assert.equal([p.process.consoleWidth, p.process.consoleHeight, p.process.terminal], [80, 24, true]);
  assert.is(p.process.oomScoreAdj, null);
  const q = plan((c) => ((c.process.user.umask = 0o077), (c.process.oomScoreAdj = -500))).plan;
  assert.is(q.process.umask, 0o077);
  assert.is(q.process.oomScoreAdj, -500);
  assert.equal(q.process.capabilities, { bounding: [], effective: [], permitted: [], inheritable: [], ambient: [] }, 'no capabilities object: none (runc), never the caller\'s');
});

test('hooks, personality, hostname, sysctl, paths, time offsets, rootfs', () => {
  const { plan: p } = plan((c) => {
    c.hooks = {
      createContainer: [{ path: '/bin/hook' }, { path: '/bin/h2', args: ['h2', '-x'], env: ['A=1'], timeout: 5 }],
      startContainer: [{ path: '/bin/s' }],
      poststart: [{ path: '/bin/p' }],
    };
    c.linux.personality = { domain: 'LINUX32' };
    c.hostname = 'box';
    c.domainname = '';
    c.linux.sysctl = { 'net.ipv4.ip_forward': '1' };
    c.linux.maskedPaths = ['/proc/kcore'];
    c.linux.readonlyPaths = ['/proc/sys'];
    c.linux.timeOffsets = { boottime: { secs: -5 } };
    c.root.readonly = true;
  });
  assert.equal(p.createContainerHooks, [
    { path: '/bin/hook', args: ['/bin/hook'], env: [], timeout: 0 },
    { path: '/bin/h2', args: ['h2', '-x'], env: ['A=1'], timeout: 5 },
  ]);
  assert.equal(p.startContainerHooks, [{ path: '/bin/s', args: ['/bin/s'], env: [], timeout: 0 }]);
  assert.is(p.syncRuntimeHooks, false, 'no prestart/createRuntime hooks');
  assert.is(plan((c) => (c.hooks = { createRuntime: [{ path: '/x' }] })).plan.syncRuntimeHooks, true);
  assert.is(p.personality, 8);
  assert.is(plan((c) => (c.linux.personality = { domain: 'LINUX' })).plan.personality, 0);
  assert.is(plan().plan.personality, -1);
  assert.is(p.hostname, 'box');
  assert.is(p.domainname, null);
  assert.equal(p.sysctl, [{ key: 'net.ipv4.ip_forward', value: '1' }]);
  assert.equal([p.maskedPaths, p.readonlyPaths], [['/proc/kcore'], ['/proc/sys']]);
  assert.equal(p.timeOffsets, { boottime: { secs: -5, nanosecs: 0 } });
  assert.is(p.rootfs, path.join(tmp, 'rootfs'));
  assert.is(p.rootfsReadonly, true);
  assert.equal([p.execFifo, p.statePrefix, p.stateSuffix, p.mode, p.id], ['/run/x/exec.fifo', '{"pid":', '}', 'create', 'c1']);
});

test('exec plan: the container namespaces to join (user first) and the process resolved', () => {
  const warnings: string[] = [];
  const config = spec((c) => (c.linux.namespaces = [{ type: 'pid' }, { type: 'network', path: '/proc/1/ns/net' }, { type: 'user' }, { type: 'mount' }]));
  const p = buildExecPlan({
    id: 'c1',
    initPid: 1234,
    initStartTime: 99,
    process: { args: ['ls'], cwd: '/tmp', env: ['A=B'], capabilities: { bounding: ['CAP_KILL'] } },
    config,
    consoleSocket: '/run/sock',
    preserveFds: 2,
    waitForExit: true,
    seccomp: null,
    warn: (m) => warnings.push(m),
  });
  assertValidPlan(p, 'exec plan');
  assert.equal(p.joinNamespaces, ['user', 'pid', 'network', 'mount']);
  assert.is(p.initPid, 1234);
  assert.is(p.initStartTime, 99);
  assert.equal([p.process.args, p.process.cwd, p.process.env, p.process.preserveFds, p.process.umask], [['ls'], '/tmp', ['A=B'], 2, 0o022]);
  assert.equal(p.process.capabilities!.bounding, [5]);
  assert.throws(() => buildExecPlan({ id: 'c', initPid: 1, initStartTime: 1, process: { args: [], cwd: '/' }, config, consoleSocket: '', preserveFds: 0, waitForExit: false, seccomp: null, warn: () => {} }), /args must not be empty/);
  assert.throws(() => buildExecPlan({ id: 'c', initPid: 1, initStartTime: 1, process: { args: ['x'], cwd: 'rel' }, config, consoleSocket: '', preserveFds: 0, waitForExit: false, seccomp: null, warn: () => {} }), /cwd "rel" is not an absolute path/);
});

test('the plan is plain JSON (one line on the sync socket)', () => {
  const p = plan((c) => (c.mounts = [{ destination: '/data', source: 'data', options: ['rbind'] }])).plan;
  assert.equal(JSON.parse(JSON.stringify(p)), p);
  assert.not.match(JSON.stringify(p), '\n');
});

test.run();
