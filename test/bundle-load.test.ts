/**
 * config.json / process.json loading: the schema violations and the rules across fields, each
 * with the exact message a user sees. No containers are run: these tests only read files.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const REPO = path.resolve(__dirname, '..');
if (!fs.existsSync(path.join(REPO, 'dist/schemas/validators.js'))) {
  const r = spawnSync(process.execPath, [path.join(REPO, 'scripts/build-schemas.mjs')], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('scripts/build-schemas.mjs failed');
}
// After the build: load.ts requires the generated validators on first use.
import { loadBundleConfig, loadProcessFile, parseBundleConfig, SpecError, stateProblems } from '../src/bundle/load';
import type { Spec } from '../src/bundle/types';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-bundle-load-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;

/** A fresh bundle with a rootfs directory and a minimal valid config (runc-like). */
function bundle(mutate?: (c: any) => void, raw?: string): string {
  const dir = path.join(tmp, `b${n++}`);
  fs.mkdirSync(path.join(dir, 'rootfs'), { recursive: true });
  const c: any = {
    ociVersion: '1.2.0',
    process: { user: { uid: 0, gid: 0 }, args: ['sh'], env: ['PATH=/bin'], cwd: '/' },
    root: { path: 'rootfs' },
    hostname: 'h',
    mounts: [{ destination: '/proc', type: 'proc', source: 'proc' }],
    linux: { namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }] },
  };
  mutate?.(c);
  fs.writeFileSync(path.join(dir, 'config.json'), raw ?? JSON.stringify(c));
  return dir;
}

function problems(dir: string): string[] {
  try {
    loadBundleConfig(dir);
  } catch (e) {
    assert.instance(e, SpecError);
    return (e as SpecError).problems;
  }
  assert.unreachable('expected a SpecError');
  return [];
}

function onlyProblem(mutate: (c: any) => void): string {
  const p = problems(bundle(mutate));
  assert.is(p.length, 1, `one problem expected, got: ${p.join(' | ')}`);
  return p[0];
}

test('a minimal config loads', () => {
  const spec = loadBundleConfig(bundle());
  assert.is(spec.process!.args![0], 'sh');
});

// Needs Debian's runc to generate its example (never needed at run time): counted as skipped, and
// said so, where it is not installed.
if (!fs.existsSync('/usr/sbin/runc')) console.log("  runc spec's example: /usr/sbin/runc not installed: SKIPPED");
(fs.existsSync('/usr/sbin/runc') ? test : test.skip)("runc spec's example config validates", () => {
  const dir = path.join(tmp, 'runc-spec');
  fs.mkdirSync(path.join(dir, 'rootfs'), { recursive: true });
  const r = spawnSync('/usr/sbin/runc', ['spec'], { cwd: dir });
  assert.is(r.status, 0, String(r.stderr));
  const spec = loadBundleConfig(dir);
  assert.is(spec.ociVersion, '1.0.2-dev');
  assert.equal(spec.process!.capabilities!.bounding, ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE']);
  // And its rootless variant (user namespace + mappings) as well.
  fs.rmSync(path.join(dir, 'config.json'));
  assert.is(spawnSync('/usr/sbin/runc', ['spec', '--rootless'], { cwd: dir }).status, 0);
  assert.ok(loadBundleConfig(dir).linux!.uidMappings!.length > 0);
});

test('missing config.json: runc\'s open error', () => {
  const dir = path.join(tmp, 'empty');
  fs.mkdirSync(dir);
  assert.equal(problems(dir), [`open ${dir}/config.json: no such file or directory`]);
});

test('malformed JSON: the file and the position', () => {
  const p = problems(bundle(undefined, '{"ociVersion": "1.2.0", '));
  assert.is(p.length, 1);
  assert.match(p[0], /^config\.json: invalid JSON: .*at position 24 \(line 1 column 25\)$/);
});

test('JSON nested deeper than the parser\'s stack: a clear error, no crash', () => {
  const depth = 300_000;
  for (const deep of ['['.repeat(depth) + ']'.repeat(depth), '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)]) {
    assert.equal(problems(bundle(undefined, `{"ociVersion": "1.2.0", "x": ${deep}}`)), ['config.json: invalid JSON: nested too deeply']);
  }
  // Control: the same shape shallow enough parses, and only the schema has something to say.
  const shallow = problems(bundle(undefined, `{"ociVersion": "1.2.0", "x": ${'['.repeat(50)}${']'.repeat(50)}}`));
  assert.ok(shallow.length > 0 && !shallow.some((m) => m.includes('invalid JSON')), shallow.join('; '));
});

test('schema: wrong type', () => {
  assert.is(onlyProblem((c) => (c.process.args = 'sh')), 'config.json: /process/args must be array');
});

test('schema: missing required properties, at the root and deeper', () => {
  assert.is(onlyProblem((c) => delete c.ociVersion), "config.json: / must have required property 'ociVersion'");
  assert.is(onlyProblem((c) => delete c.process.cwd), "config.json: /process must have required property 'cwd'");
  assert.is(onlyProblem((c) => (c.process.args = [])), 'config.json: /process/args must NOT have fewer than 1 items');
});

test('schema: ociVersion must be 1.0.x-1.2.x', () => {
  assert.is(onlyProblem((c) => (c.ociVersion = '1.3.0')), 'config.json: /ociVersion must be a 1.0.x, 1.1.x or 1.2.x version');
  assert.is(onlyProblem((c) => (c.ociVersion = '0.9.0')), 'config.json: /ociVersion must be a 1.0.x, 1.1.x or 1.2.x version');
  for (const ok of ['1.0.0', '1.1.0', '1.2.1', '1.0.2-dev', '1.2.0+build.1']) loadBundleConfig(bundle((c) => (c.ociVersion = ok)));
});

test('schema: enums list the allowed values', () => {
  assert.is(
    onlyProblem((c) => c.linux.namespaces.push({ type: 'net' })),
    'config.json: /linux/namespaces/5/type must be equal to one of the allowed values ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")',
  );
  assert.is(
    onlyProblem((c) => (c.linux.rootfsPropagation = 'bogus')),
    'config.json: /linux/rootfsPropagation must be equal to one of the allowed values ("", "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable")',
  );
  assert.match(onlyProblem((c) => (c.linux.personality = { domain: 'LINUX64' })), /^config\.json: \/linux\/personality\/domain must be equal to one of the allowed values \("LINUX", "LINUX32"\)$/);
  assert.match(onlyProblem((c) => (c.linux.timeOffsets = { realtime: { secs: 1 } })), /^config\.json: \/linux\/timeOffsets property name "realtime" must be equal to one of the allowed values/);
});

test('schema: seccomp actions, operators, flags and architectures', () => {
  const sc = (extra: any) => (c: any) => {
    c.linux.seccomp = { defaultAction: 'SCMP_ACT_ERRNO', architectures: ['SCMP_ARCH_X86_64'], syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }], ...extra };
  };
  loadBundleConfig(bundle(sc({ flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW', 'SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'] })));
  assert.match(onlyProblem(sc({ defaultAction: 'SCMP_ACT_NOPE' })), /^config\.json: \/linux\/seccomp\/defaultAction must be equal to one of the allowed values \("SCMP_ACT_KILL", /);
  assert.match(onlyProblem(sc({ flags: ['SECCOMP_FILTER_FLAG_X'] })), /^config\.json: \/linux\/seccomp\/flags\/0 must be equal to one of the allowed values/);
  assert.match(onlyProblem(sc({ architectures: ['x86_64'] })), /^config\.json: \/linux\/seccomp\/architectures\/0 must be equal/);
  assert.match(
    onlyProblem(sc({ syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'SCMP_CMP_XX' }] }] })),
    /^config\.json: \/linux\/seccomp\/syscalls\/0\/args\/0\/op must be equal to one of the allowed values \("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"\)$/,
  );
  assert.is(onlyProblem(sc({ syscalls: [{ names: ['read'], action: 'SCMP_ACT_NOTIFY' }] })), 'config.json: /linux/seccomp/listenerPath: required when SCMP_ACT_NOTIFY is used');
});

test('schema: devices need major/minor except fifos; resources are typed', () => {
  assert.equal(problems(bundle((c) => (c.linux.devices = [{ type: 'c', path: '/dev/x' }]))), [
    "config.json: /linux/devices/0 must have required property 'major'",
    "config.json: /linux/devices/0 must have required property 'minor'",
  ]);
  loadBundleConfig(bundle((c) => (c.linux.devices = [{ type: 'p', path: '/dev/fifo' }])));
  assert.is(onlyProblem((c) => (c.linux.resources = { pids: { limit: '5' } })), 'config.json: /linux/resources/pids/limit must be integer');
  assert.is(onlyProblem((c) => (c.linux.resources = { hugepageLimits: [{ pageSize: '2M', limit: 1 }] })), 'config.json: /linux/resources/hugepageLimits/0/pageSize must match pattern "^[1-9][0-9]*[KMG]B$"');
  assert.is(onlyProblem((c) => (c.linux.resources = { unified: { 'memory.max': 5 } })), 'config.json: /linux/resources/unified/memory.max must be string');
  assert.is(onlyProblem((c) => (c.linux.resources = { devices: [{ allow: true, access: 5 }] })), 'config.json: /linux/resources/devices/0/access must be string');
  loadBundleConfig(
    bundle((c) => {
      c.linux.resources = {
        devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rw' }],
        memory: { limit: 1 << 30, swap: -1, disableOOMKiller: false },
        cpu: { shares: 1024, quota: 50000, period: 100000, cpus: '0-1', idle: 0 },
        blockIO: { weight: 500, throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1000 }] },
        hugepageLimits: [{ pageSize: '2MB', limit: 0 }],
        network: { classID: 1, priorities: [{ name: 'eth0', priority: 1 }] },
        pids: { limit: 100 },
        rdma: { mlx5_0: { hcaHandles: 3 } },
        unified: { 'memory.high': 'max' },
      };
    }),
  );
});

test('schema: several violations are all listed, each with its pointer', () => {
  const p = problems(
    bundle((c) => {
      c.process.args = 'sh';
      c.mounts[0].destination = 5;
      c.process.user.uid = -1;
      c.annotations = { a: 1 };
    }),
  );
  assert.equal(p, [
    'config.json: /process/args must be array',
    'config.json: /process/user/uid must be >= 0',
    'config.json: /mounts/0/destination must be string',
    'config.json: /annotations/a must be string',
  ]);
});

test('relative paths: mount destination, cwd, hook path', () => {
  assert.is(onlyProblem((c) => (c.mounts[0].destination = 'proc')), 'config.json: /mounts/0/destination: "proc" is not an absolute path');
  assert.is(onlyProblem((c) => (c.process.cwd = 'home')), 'config.json: /process/cwd: "home" is not an absolute path');
  assert.is(onlyProblem((c) => (c.hooks = { prestart: [{ path: 'bin/hook' }] })), 'config.json: /hooks/prestart/0/path: "bin/hook" is not an absolute path');
});

test('user namespace and id mappings go together', () => {
  const map = [{ containerID: 0, hostID: 100000, size: 65536 }];
  assert.equal(problems(bundle((c) => c.linux.namespaces.push({ type: 'user' }))), [
    'config.json: /linux/uidMappings: a new user namespace needs uid mappings',
    'config.json: /linux/gidMappings: a new user namespace needs gid mappings',
  ]);
  assert.is(onlyProblem((c) => (c.linux.uidMappings = map)), 'config.json: /linux/uidMappings: uid mappings need a user namespace (none in /linux/namespaces)');
  loadBundleConfig(bundle((c) => (c.linux.namespaces.push({ type: 'user' }), (c.linux.uidMappings = map), (c.linux.gidMappings = map))));
  // A joined user namespace brings its own mappings.
  loadBundleConfig(bundle((c) => c.linux.namespaces.push({ type: 'user', path: '/proc/self/ns/user' })));
});

test('id-mapped mounts: runc 1.2\'s rules (bind only, both mappings or a user namespace, ranges)', () => {
  const map = [{ containerID: 0, hostID: 100000, size: 65536 }];
  const bind = (extra: object) => (c: any) => c.mounts.push({ destination: '/x', source: '/tmp', options: ['rbind'], ...extra });
  assert.is(onlyProblem((c) => c.mounts.push({ destination: '/x', type: 'tmpfs', source: 'tmpfs', options: ['idmap'] })), 'config.json: /mounts/1: id-mapped mounts are only supported for bind-mounts');
  assert.is(onlyProblem((c) => c.mounts.push({ destination: '/x', type: 'tmpfs', source: 'tmpfs', uidMappings: map, gidMappings: map })), 'config.json: /mounts/1: id-mapped mounts are only supported for bind-mounts');
  assert.is(onlyProblem(bind({ options: ['rbind', 'ridmap'] })), 'config.json: /mounts/1: id-mapped mounts must have both uid and gid mappings specified (or a user namespace in /linux/namespaces)');
  assert.is(onlyProblem(bind({ uidMappings: map })), 'config.json: /mounts/1: id-mapped mounts must have both uid and gid mappings specified');
  assert.is(onlyProblem(bind({ uidMappings: map, gidMappings: [] })), 'config.json: /mounts/1: id-mapped mounts must have both uid and gid mappings specified');
  assert.is(onlyProblem(bind({ uidMappings: map, gidMappings: [{ containerID: 0, hostID: 4294967290, size: 10 }] })), 'config.json: /mounts/1/gidMappings/0: hostID 4294967290 + size 10 ends at 4294967299, above 4294967294');
  // Controls: with their own mappings, with or without a user namespace; without, in one.
  loadBundleConfig(bundle(bind({ uidMappings: map, gidMappings: map })));
  loadBundleConfig(bundle(bind({ options: ['bind', 'idmap'], uidMappings: map, gidMappings: map })));
  loadBundleConfig(bundle((c) => (bind({ options: ['rbind', 'ridmap'] })(c), c.linux.namespaces.push({ type: 'user' }), (c.linux.uidMappings = map), (c.linux.gidMappings = map))));
  loadBundleConfig(bundle((c) => (bind({ options: ['rbind', 'idmap'] })(c), c.linux.namespaces.push({ type: 'user', path: '/proc/self/ns/user' }))));
});

test('namespace paths: missing, not nsfs, wrong type, duplicates', () => {
  const regular = path.join(tmp, 'not-a-ns');
  fs.writeFileSync(regular, '');
  assert.is(onlyProblem((c) => (c.linux.namespaces[1].path = '/nonexistent/ns')), 'config.json: /linux/namespaces/1/path: open /nonexistent/ns: no such file or directory');
  assert.is(onlyProblem((c) => (c.linux.namespaces[1].path = regular)), `config.json: /linux/namespaces/1/path: ${regular} is not a namespace file (not on nsfs)`);
  assert.is(onlyProblem((c) => (c.linux.namespaces[1].path = '/proc/self/ns/ipc')), 'config.json: /linux/namespaces/1/path: /proc/self/ns/ipc is a ipc namespace, not net');
  assert.is(onlyProblem((c) => c.linux.namespaces.push({ type: 'pid' })), 'config.json: /linux/namespaces/5/type: duplicate namespace "pid"');
  loadBundleConfig(bundle((c) => (c.linux.namespaces[1].path = `/proc/${process.pid}/ns/net`)));
});

test('time offsets need a new time namespace', () => {
  const off = { monotonic: { secs: 10, nanosecs: 0 } };
  assert.is(onlyProblem((c) => (c.linux.timeOffsets = off)), 'config.json: /linux/timeOffsets: time offsets need a time namespace (none in /linux/namespaces)');
  if (fs.existsSync('/proc/self/ns/time')) {
    assert.is(
      onlyProblem((c) => ((c.linux.timeOffsets = off), c.linux.namespaces.push({ type: 'time', path: '/proc/self/ns/time' }))),
      'config.json: /linux/timeOffsets: time offsets cannot be set on a joined time namespace',
    );
  }
  loadBundleConfig(bundle((c) => ((c.linux.timeOffsets = off), c.linux.namespaces.push({ type: 'time' }))));
});

test('sysctl: only keys of namespaces the container owns, as runc checks', () => {
  const without = (t: string) => (c: any) => (c.linux.namespaces = c.linux.namespaces.filter((n: any) => n.type !== t));
  const withSysctl = (kv: Record<string, string>, also?: (c: any) => void) => (c: any) => ((c.linux.sysctl = kv), also?.(c));
  loadBundleConfig(bundle(withSysctl({ 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '1', 'fs.mqueue.msg_max': '10', 'kernel.domainname': 'x', 'net/ipv4/tcp_syncookies': '1' })));
  assert.is(onlyProblem(withSysctl({ 'net.ipv4.ip_forward': '1' }, without('network'))), 'config.json: /linux/sysctl/net.ipv4.ip_forward: sysctl "net.ipv4.ip_forward" is not allowed in the host\'s network namespace');
  assert.is(
    onlyProblem(withSysctl({ 'net.ipv4.ip_forward': '1' }, (c) => (c.linux.namespaces[1].path = '/proc/self/ns/net'))),
    'config.json: /linux/sysctl/net.ipv4.ip_forward: sysctl "net.ipv4.ip_forward" is not allowed in the host\'s network namespace (joined by path)',
  );
  assert.is(onlyProblem(withSysctl({ 'kernel.shmmax': '1' }, without('ipc'))), 'config.json: /linux/sysctl/kernel.shmmax: sysctl "kernel.shmmax" is not allowed in the host\'s ipc namespace');
  assert.is(onlyProblem(withSysctl({ 'fs.mqueue.msg_max': '1' }, without('ipc'))), 'config.json: /linux/sysctl/fs.mqueue.msg_max: sysctl "fs.mqueue.msg_max" is not allowed in the host\'s ipc namespace');
  assert.is(onlyProblem(withSysctl({ 'kernel.hostname': 'x' })), 'config.json: /linux/sysctl/kernel.hostname: sysctl "kernel.hostname" conflicts with the "hostname" field; set that instead');
  assert.is(onlyProblem(withSysctl({ 'vm.swappiness': '1' })), 'config.json: /linux/sysctl/vm.swappiness: sysctl "vm.swappiness" is not in a separate kernel namespace');
  assert.is(onlyProblem(withSysctl({ 'net/ipv4/ip_forward': '1' }, without('network'))), 'config.json: /linux/sysctl/net~1ipv4~1ip_forward: sysctl "net/ipv4/ip_forward" is not allowed in the host\'s network namespace');
});

test('hostname needs a uts namespace', () => {
  assert.is(onlyProblem((c) => (c.linux.namespaces = c.linux.namespaces.filter((n: any) => n.type !== 'uts'))), 'config.json: /hostname: setting the hostname needs a uts namespace (none in /linux/namespaces)');
});

test('cgroupsPath must stay inside the hierarchy', () => {
  assert.is(onlyProblem((c) => (c.linux.cgroupsPath = '/a/../../b')), 'config.json: /linux/cgroupsPath: "/a/../../b" must not contain ".." (it would leave the cgroup hierarchy)');
  loadBundleConfig(bundle((c) => (c.linux.cgroupsPath = '/tsrun/x')));
  loadBundleConfig(bundle((c) => (c.linux.cgroupsPath = 'relative/x')));
});

test('rootfs: missing and not a directory, in runc\'s words', () => {
  const dir = bundle();
  fs.rmSync(path.join(dir, 'rootfs'), { recursive: true });
  assert.equal(problems(dir), [`rootfs (${dir}/rootfs) does not exist`]);
  fs.writeFileSync(path.join(dir, 'rootfs'), '');
  assert.equal(problems(dir), [`rootfs (${dir}/rootfs) is not a directory`]);
  assert.is(onlyProblem((c) => delete c.root), "config.json: /root: required (the container's root filesystem)");
});

test('rlimits: u64 values kept exact, unknown and duplicate types, soft above hard', () => {
  const dir = bundle(undefined, JSON.stringify({ ociVersion: '1.2.0', root: { path: 'rootfs' }, process: { args: ['x'], cwd: '/', rlimits: [{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 1 }] } }).replace('"hard":1', '"hard":18446744073709551615'));
  const spec = loadBundleConfig(dir);
  assert.equal(spec.process!.rlimits![0], { type: 'RLIMIT_NOFILE', soft: 1024, hard: '18446744073709551615' });
  const tooBig = bundle(undefined, fs.readFileSync(path.join(dir, 'config.json'), 'utf8').replace('18446744073709551615', '18446744073709551616'));
  assert.equal(problems(tooBig), ['config.json: /process/rlimits/0/hard must be <= 18446744073709551615']);
  assert.is(onlyProblem((c) => (c.process.rlimits = [{ type: 'RLIMIT_FOO', soft: 1, hard: 1 }])), 'config.json: /process/rlimits/0/type: unknown rlimit "RLIMIT_FOO"');
  assert.is(
    onlyProblem((c) => (c.process.rlimits = [{ type: 'RLIMIT_CORE', soft: 1, hard: 1 }, { type: 'RLIMIT_CORE', soft: 1, hard: 1 }])),
    'config.json: /process/rlimits/1/type: duplicate rlimit RLIMIT_CORE',
  );
  assert.is(onlyProblem((c) => (c.process.rlimits = [{ type: 'RLIMIT_CORE', soft: 2, hard: 1 }])), 'config.json: /process/rlimits/0: soft limit 2 is above hard limit 1');
});

test('parseBundleConfig reports schema problems before semantic ones (no half-checked config)', () => {
  const text = JSON.stringify({ ociVersion: '1.2.0', root: { path: 'nope' }, process: { args: 'x', cwd: 'rel' } });
  try {
    parseBundleConfig(text, tmp);
    assert.unreachable();
  } catch (e) {
    assert.equal((e as SpecError).problems, ['config.json: /process/args must be array']);
  }
});

test('loadProcessFile: valid, schema and semantic problems, missing file', () => {
  const f = path.join(tmp, 'process.json');
  fs.writeFileSync(f, JSON.stringify({ args: ['ls'], cwd: '/', user: { uid: 1, gid: 1 }, capabilities: { bounding: ['CAP_KILL'] } }));
  const proc = loadProcessFile(f);
  assert.equal(proc.args, ['ls']);
  fs.writeFileSync(f, JSON.stringify({ args: [], cwd: 'x', terminal: 'yes' }));
  assert.throws(() => loadProcessFile(f), (e: SpecError) => e.message === 'process.json: /terminal must be boolean\nprocess.json: /args must NOT have fewer than 1 items');
  fs.writeFileSync(f, JSON.stringify({ args: ['ls'], cwd: 'x' }));
  assert.throws(() => loadProcessFile(f), (e: SpecError) => e.message === 'process.json: /cwd: "x" is not an absolute path');
  assert.throws(() => loadProcessFile(path.join(tmp, 'nope.json')), (e: SpecError) => e.message === `open ${tmp}/nope.json: no such file or directory`);
});

test('state schema: pid required once created', () => {
  assert.equal(stateProblems({ ociVersion: '1.2.0', id: 'a', status: 'creating', bundle: '/b' }), []);
  assert.equal(stateProblems({ ociVersion: '1.2.0', id: 'a', status: 'running', pid: 5, bundle: '/b', annotations: { k: 'v' } }), []);
  assert.equal(stateProblems({ ociVersion: '1.2.0', id: 'a', status: 'running', bundle: '/b' }), ["/ must have required property 'pid'"]);
  assert.equal(stateProblems({ ociVersion: '1.2.0', id: 'a', status: 'gone', bundle: '/b' }), ['/status must be equal to one of the allowed values ("creating", "created", "running", "stopped", "paused")']);
});

test('validators.js is plain generated code: requiring it is cheap', () => {
  const file = path.join(REPO, 'dist/schemas/validators.js');
  const src = fs.readFileSync(file, 'utf8');
  // Only ajv's tiny runtime helpers, never the compiler.
  for (const m of src.matchAll(/require\("([^"]+)"\)/g)) assert.match(m[1], /^ajv\/dist\/runtime\//);
  const spec: Spec = JSON.parse(JSON.stringify({ ociVersion: '1.2.0' }));
  assert.ok(require(file).validateConfig(spec));
});

// Hostile input (a bundle is the caller's, but a link to /dev/zero must not hang create for
// ever): only a regular file of a bounded size is read, and the refusal names the file. Control:
// the same path as a regular file loads.
test('config.json that is a FIFO, a device link, a directory or too large is refused at once', () => {
  const cases: [string, (file: string) => void, RegExp][] = [
    ['fifo', (f) => spawnSync('mkfifo', [f]), /config\.json: not a regular file \(a FIFO\)/],
    ['link to /dev/zero', (f) => fs.symlinkSync('/dev/zero', f), /config\.json: not a regular file \(a device\)/],
    ['directory', (f) => fs.mkdirSync(f), /config\.json: not a regular file \(a directory\)/],
    ['too large', (f) => fs.writeFileSync(f, Buffer.alloc(64 * 1024 * 1024 + 1, 0x20)), /config\.json: 67108865 bytes is larger than the limit/],
  ];
  for (const [what, make, expected] of cases) {
    const dir = bundle();
    const file = path.join(dir, 'config.json');
    fs.rmSync(file);
    make(file);
    const started = Date.now();
    const e = (() => {
      try {
        loadBundleConfig(dir);
      } catch (err) {
        return err as Error;
      }
      return null;
    })();
    assert.ok(e instanceof SpecError, `${what}: refused`);
    assert.match(e!.message, expected, what);
    assert.ok(Date.now() - started < 1000, `${what}: within a second`);
    fs.rmSync(file, { recursive: true, force: true });
  }
  assert.ok(loadBundleConfig(bundle()), 'control: a regular config.json loads');
});

test.run();
