/**
 * Privileges a bundle or an exec process does not mention. Absent must mean the least, never
 * "whatever the runtime has" (tsrun runs as root with every capability):
 *  - no process.capabilities, or one set of it absent: no capability there (runc: none at all);
 *  - `exec --process FILE` leaving capabilities, noNewPrivileges, rlimits out: the container's,
 *    not the runtime's (runc newInitConfig / finalizeNamespace), and oom_score_adj always the
 *    container's;
 *  - ids outside 0..2^31-1: refused — 4294967295 is (uid_t)-1, "unchanged" to setresuid, so it
 *    would leave the process root.
 * Every attack has a positive control that opens the hole on purpose through an ordinary bundle
 * setting or flag and must see the breach, so a blind probe cannot pass.
 *
 * RUNTIME=/usr/sbin/runc runs the container tests against runc; the checks of tsrun's own wording
 * (the JSON pointer in the message) and the tests of tsrun's planner are then left out.
 */
import * as fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { processFile, tsrunDetached, withSandbox, type Result, type Sandbox } from './helpers';
import { ROOTLESS_SUBID } from '../helpers/tsrun';

/** Another runtime under test (RUNTIME=/usr/sbin/runc): only runtime-agnostic checks. */
const OTHER_RUNTIME = !!process.env.RUNTIME;

const CAP_SYS_ADMIN = 21n;
const CAP_KILL = 5n;
const SETS = ['bounding', 'effective', 'permitted', 'inheritable', 'ambient'] as const;
const LINE: Record<(typeof SETS)[number], string> = { bounding: 'Bnd', effective: 'Eff', permitted: 'Prm', inheritable: 'Inh', ambient: 'Amb' };
const PROBE = ['grep', '-E', '^(Cap|Uid|Gid|Groups|NoNewPrivs)', '/proc/self/status'];
const MAX = 4294967295;

interface Status {
  caps: Record<string, bigint>;
  uid: number[];
  gid: number[];
  groups: number[];
  noNewPrivs: number;
}

function status(out: string): Status {
  const caps: Record<string, bigint> = {};
  for (const m of out.matchAll(/^Cap(\w+):\s+([0-9a-f]+)$/gm)) caps[m[1]] = BigInt(`0x${m[2]}`);
  for (const l of Object.values(LINE)) assert.ok(l in caps, `no Cap${l} line in: ${out}`);
  const ids = (name: string) => (out.match(new RegExp(`^${name}:(.*)$`, 'm'))?.[1] ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
  return { caps, uid: ids('Uid'), gid: ids('Gid'), groups: ids('Groups'), noNewPrivs: Number(ids('NoNewPrivs')[0]) };
}

const has = (set: bigint, cap: bigint) => ((set >> cap) & 1n) === 1n;
const hex = (c: Record<string, bigint>) => Object.entries(c).map(([k, v]) => `Cap${k}=${v.toString(16)}`).join(' ');

/** run -d of a `sleep` container with id `id` (the sandbox's config as it is now). */
function running(s: Sandbox, id = s.id): void {
  const r = tsrunDetached(s, ['run', '-d', '-b', s.bundle, id], '', id);
  assert.is(r.status, 0, `run -d ${id}: ${r.stderr}`);
}

function initPid(s: Sandbox, id: string): number {
  const st = s.state(id);
  assert.ok(st.pid > 0, `no pid in state: ${JSON.stringify(st)}`);
  return st.pid;
}

/** The host's view of a process's capability sets (the container init: what the container has). */
function hostCaps(pid: number): Record<string, bigint> {
  return status(fs.readFileSync(`/proc/${pid}/status`, 'utf8')).caps;
}

function deleteAll(s: Sandbox, ...ids: string[]): void {
  for (const id of ids) {
    const d = s.tsrun(['delete', '-f', id]);
    assert.is(d.status, 0, `delete -f ${id}: ${d.stderr}`);
  }
  assert.equal(s.leftovers(), []);
}

function runProbe(s: Sandbox, id = s.id): Status {
  const r = s.tsrun(['run', '-b', s.bundle, id]);
  assert.is(r.status, 0, `run: ${r.stderr}`);
  return status(r.stdout);
}

/**
 * A create that must be refused: non-zero status, the message names `field` (tsrun's wording
 * only), nothing left behind. If it was not refused, the container is started so the failure
 * says which uid the process really got.
 */
function assertCreateRefused(s: Sandbox, field: RegExp, what: string): void {
  const r = tsrunDetached(s, ['create', '-b', s.bundle, s.id]);
  if (r.status === 0) {
    const started = s.tsrun(['start', s.id]);
    const out = fs.existsSync(r.out) ? fs.readFileSync(r.out, 'utf8') : '';
    assert.unreachable(`${what}: create was not refused (start: ${started.status}); the process ran with: ${out.replace(/\s+/g, ' ')}`);
  }
  assert.ok(r.status !== null && r.status !== 0, `${what}: status ${r.status}`);
  if (!OTHER_RUNTIME) assert.match(r.stderr, field, `${what}: the message does not name the field: ${r.stderr}`);
  assert.not.match(r.stderr, /Uid:/, `${what}: the process ran`);
  assert.equal(s.leftovers(), [], what);
  // Nothing to delete: the runtime must not have kept any state.
  assert.is(s.tsrun(['state', s.id]).status !== 0, true, `${what}: state of a refused container exists`);
}

// ---------------------------------------------------------------------------------------------
// Capabilities absent in config.json

withSandbox(test, 'no process.capabilities: every capability set is empty (run, exec, exec --process)', PROBE, (s) => {
  delete s.config.process.capabilities;
  s.writeConfig();
  const c = runProbe(s).caps;
  for (const l of Object.values(LINE)) assert.is(c[l], 0n, `Cap${l} of the container process: ${hex(c)}`);

  s.config.process.args = ['sleep', '60'];
  s.writeConfig();
  const id = `${s.id}-x`;
  running(s, id);
  assert.equal(hostCaps(initPid(s, id)), { Inh: 0n, Prm: 0n, Eff: 0n, Bnd: 0n, Amb: 0n }, 'the container init has capabilities');
  const e = s.tsrun(['exec', id, ...PROBE]);
  assert.is(e.status, 0, `exec: ${e.stderr}`);
  const ec = status(e.stdout).caps;
  for (const l of Object.values(LINE)) assert.is(ec[l], 0n, `Cap${l} of exec: ${hex(ec)}`);
  const p = s.tsrun(['exec', '--process', processFile(s, PROBE), id]);
  assert.is(p.status, 0, `exec --process: ${p.stderr}`);
  const pc = status(p.stdout).caps;
  for (const l of Object.values(LINE)) assert.is(pc[l], 0n, `Cap${l} of exec --process: ${hex(pc)}`);
  deleteAll(s, id);
});

withSandbox(test, 'control: CAP_SYS_ADMIN listed in every set shows in every Cap line', PROBE, (s) => {
  s.config.process.capabilities = Object.fromEntries(SETS.map((k) => [k, ['CAP_SYS_ADMIN']]));
  s.writeConfig();
  const c = runProbe(s).caps;
  for (const l of Object.values(LINE)) assert.ok(has(c[l], CAP_SYS_ADMIN), `Cap${l} lacks CAP_SYS_ADMIN: ${hex(c)}`);
  assert.equal(s.leftovers(), []);
});

withSandbox(test, 'one capability set absent: that set is empty (bounding, inheritable, ambient; control: listed, it is there)', PROBE, (s) => {
  // Root: each of these sets is visible as such after execve. (The kernel refuses inheritable and
  // ambient capabilities outside the bounding set, so none with bounding absent.)
  const cases: { absent: (typeof SETS)[number]; others: (typeof SETS)[number][] }[] = [
    { absent: 'bounding', others: ['effective', 'permitted'] },
    { absent: 'inheritable', others: ['bounding', 'effective', 'permitted'] },
    { absent: 'ambient', others: ['bounding', 'effective', 'permitted', 'inheritable'] },
  ];
  let n = 0;
  for (const { absent, others } of cases) {
    for (const control of [false, true]) {
      const sets = control ? [...others, absent] : others;
      s.config.process.capabilities = Object.fromEntries(sets.map((k) => [k, ['CAP_SYS_ADMIN', 'CAP_KILL']]));
      s.writeConfig();
      const c = runProbe(s, `${s.id}-${++n}`).caps;
      const l = LINE[absent];
      if (control) assert.ok(has(c[l], CAP_SYS_ADMIN) && has(c[l], CAP_KILL), `control: ${absent} listed but Cap${l}: ${hex(c)}`);
      else assert.is(c[l], 0n, `${absent} absent but Cap${l}: ${hex(c)}`);
    }
  }
  assert.equal(s.leftovers(), []);
});

withSandbox(test, 'permitted absent: nothing can be raised into ambient for uid 1000 (control: listed, uid 1000 keeps CAP_SYS_ADMIN)', PROBE, (s) => {
  // After execve a non-root process has exactly its ambient set, and ambient needs permitted: an
  // absent permitted set that meant "the runtime's" would show CAP_SYS_ADMIN here.
  s.mapSubordinateIds();
  s.config.process.user = { uid: 1000, gid: 1000 };
  s.config.process.capabilities = { bounding: ['CAP_SYS_ADMIN'], effective: ['CAP_SYS_ADMIN'], inheritable: ['CAP_SYS_ADMIN'], ambient: ['CAP_SYS_ADMIN'] };
  s.writeConfig();
  const r = s.tsrun(['run', '-b', s.bundle, `${s.id}-a`]);
  // runc and tsrun refuse (raising an ambient capability that is not permitted: EPERM); running
  // without it would do as well. Running with it is the breach.
  if (r.status === 0) {
    const c = status(r.stdout).caps;
    assert.ok(!has(c.Prm, CAP_SYS_ADMIN) && !has(c.Amb, CAP_SYS_ADMIN) && !has(c.Eff, CAP_SYS_ADMIN), `permitted absent but: ${hex(c)}`);
  } else {
    assert.not.match(r.stdout, /Cap/, 'the process ran although the run failed');
  }
  s.config.process.capabilities.permitted = ['CAP_SYS_ADMIN'];
  s.writeConfig();
  const ctl = runProbe(s, `${s.id}-b`);
  assert.equal(ctl.uid[0], 1000);
  assert.ok(has(ctl.caps.Eff, CAP_SYS_ADMIN) && has(ctl.caps.Amb, CAP_SYS_ADMIN), `control: ${hex(ctl.caps)}`);
  assert.equal(s.leftovers(), []);
});

// ---------------------------------------------------------------------------------------------
// exec: what the exec process leaves out is the container's

withSandbox(test, 'exec --process without capabilities: exactly the container\'s sets (control: a file listing CAP_SYS_ADMIN gets it)', ['sleep', '60'], (s) => {
  running(s);
  const mine = hostCaps(initPid(s, s.id));
  assert.ok(mine.Bnd !== 0n && !has(mine.Bnd, CAP_SYS_ADMIN), `unexpected container capabilities: ${hex(mine)}`);
  const e = s.tsrun(['exec', '--process', processFile(s, PROBE, (p) => delete p.capabilities), s.id]);
  assert.is(e.status, 0, `exec --process: ${e.stderr}`);
  const got = status(e.stdout).caps;
  assert.equal(got, mine, `exec: ${hex(got)}, container: ${hex(mine)}`);

  const ctl = s.tsrun(['exec', '--process', processFile(s, PROBE, (p) => {
    for (const k of ['bounding', 'effective', 'permitted'] as const) p.capabilities[k] = [...p.capabilities[k], 'CAP_SYS_ADMIN'];
  }), s.id]);
  assert.is(ctl.status, 0, `control exec: ${ctl.stderr}`);
  const c = status(ctl.stdout).caps;
  assert.ok(has(c.Eff, CAP_SYS_ADMIN) && has(c.Bnd, CAP_SYS_ADMIN), `control: the process file's CAP_SYS_ADMIN is missing: ${hex(c)}`);
  assert.not.equal(c, mine, 'control: the probe cannot tell a wider set');
  deleteAll(s, s.id);
});

// runc 1.1.5 fails this one: its newProcess always sets NoNewPrivileges (&p.NoNewPrivileges), so
// an absent field overrides the container's true with false.
withSandbox(test, 'exec --process without noNewPrivileges in a noNewPrivileges container: NoNewPrivs 1 (control: explicit false gives 0)', ['sleep', '60'], (s) => {
  assert.is(s.config.process.noNewPrivileges, true, 'the example config sets noNewPrivileges');
  running(s);
  const e = s.tsrun(['exec', '--process', processFile(s, PROBE, (p) => delete p.noNewPrivileges), s.id]);
  assert.is(e.status, 0, `exec --process: ${e.stderr}`);
  assert.is(status(e.stdout).noNewPrivs, 1, 'no_new_privs dropped by an exec that did not mention it');
  const ctl = s.tsrun(['exec', '--process', processFile(s, PROBE, (p) => (p.noNewPrivileges = false)), s.id]);
  assert.is(ctl.status, 0, `control exec: ${ctl.stderr}`);
  assert.is(status(ctl.stdout).noNewPrivs, 0, 'control: an explicit noNewPrivileges false must show NoNewPrivs 0');
  deleteAll(s, s.id);
});

// runc 1.1.5 fails this one: newInitConfig falls back to config.Rlimits, which its specconv never
// fills, so the exec gets runc's own limits.
withSandbox(test, 'exec --process without rlimits: the container\'s limits (control: the file\'s own limit applies)', ['sleep', '60'], (s) => {
  s.config.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 321, hard: 654 }];
  s.writeConfig();
  running(s);
  const LIMITS = ['sh', '-c', 'echo "$(ulimit -Sn) $(ulimit -Hn)"'];
  const e = s.tsrun(['exec', '--process', processFile(s, LIMITS, (p) => delete p.rlimits), s.id]);
  assert.is(e.status, 0, `exec --process: ${e.stderr}`);
  assert.is(e.stdout.trim(), '321 654', 'the exec got the runtime\'s limits, not the container\'s');
  const ctl = s.tsrun(['exec', '--process', processFile(s, LIMITS, (p) => (p.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 2000, hard: 3000 }])), s.id]);
  assert.is(ctl.status, 0, `control exec: ${ctl.stderr}`);
  assert.is(ctl.stdout.trim(), '2000 3000', 'control: the process file\'s rlimits');
  deleteAll(s, s.id);
});

withSandbox(test, 'exec --process cannot choose its oom_score_adj: the container\'s applies (control: a config\'s 100 shows)', ['cat', '/proc/self/oom_score_adj'], (s) => {
  // Values above the runtime's 0 only: lowering needs CAP_SYS_RESOURCE, which this test host's
  // bounding set lacks (runc and tsrun both fail there). The exec asking for a value of its own
  // below the container's is what must not work.
  // Control: an ordinary config setting oom_score_adj; the probe must see the value.
  s.config.process.oomScoreAdj = 100;
  s.writeConfig();
  const ctl = s.tsrun(['run', '-b', s.bundle, `${s.id}-ctl`]);
  assert.is(ctl.status, 0, `control run: ${ctl.stderr}`);
  assert.is(ctl.stdout.trim(), '100', 'control: the probe does not see a configured oom_score_adj');
  s.config.process.oomScoreAdj = 500;
  s.config.process.args = ['sleep', '60'];
  s.writeConfig();
  running(s);
  const OOM = ['cat', '/proc/self/oom_score_adj'];
  for (const [what, change] of [
    ['asks for 100', (p: any) => (p.oomScoreAdj = 100)],
    ['leaves it out', (p: any) => delete p.oomScoreAdj],
  ] as const) {
    const e = s.tsrun(['exec', '--process', processFile(s, OOM, change), s.id]);
    assert.is(e.status, 0, `exec --process (${what}): ${e.stderr}`);
    assert.is(e.stdout.trim(), '500', `an exec that ${what} does not get the container's oom_score_adj`);
  }
  deleteAll(s, s.id);
});

// ---------------------------------------------------------------------------------------------
// ids out of range in config.json

withSandbox(test, 'control: uid/gid/additionalGids 1000 run as 1000 (rootless: without additionalGids, which runc refuses there)', PROBE, (s) => {
  s.mapSubordinateIds();
  s.config.process.user = { uid: 1000, gid: 1001, ...(s.user ? {} : { additionalGids: [1002] }) };
  s.writeConfig();
  const st = runProbe(s);
  assert.equal([st.uid, st.gid, st.groups], [[1000, 1000, 1000, 1000], [1001, 1001, 1001, 1001], s.user ? [] : [1002]]);
  assert.equal(s.leftovers(), []);
});

for (const [name, user, field] of [
  ['uid 4294967295', { uid: MAX, gid: 0 }, /\/process\/user\/uid/],
  ['gid 4294967295', { uid: 0, gid: MAX }, /\/process\/user\/gid/],
  ['additionalGids [4294967295]', { uid: 0, gid: 0, additionalGids: [MAX] }, /\/process\/user\/additionalGids\/0/],
  ['uid 2147483648', { uid: 2147483648, gid: 0 }, /\/process\/user\/uid/],
] as const) {
  withSandbox(test, `${name}: create refused, nothing left`, PROBE, (s) => {
    s.config.process.user = user;
    s.writeConfig();
    assertCreateRefused(s, field, name);
  });
}

const USERNS_PROBE = ['sh', '-c', 'cat /proc/self/uid_map /proc/self/gid_map; id -u'];

/** A user namespace with the given mappings (the sandbox dir opened to the mapped root). */
function userns(s: Sandbox, uid: object, gid: object): void {
  fs.chmodSync(s.dir, 0o755);
  s.config.linux.namespaces = [...s.config.linux.namespaces.filter((n: { type: string }) => n.type !== 'user'), { type: 'user' }];
  s.config.linux.uidMappings = [uid];
  s.config.linux.gidMappings = [gid];
  s.writeConfig();
}

withSandbox(test, 'control: a user namespace mapping 0 → 100000 (65536 ids; rootless: the user\'s subordinate ids) is applied', USERNS_PROBE, (s) => {
  const host = s.user ? ROOTLESS_SUBID : 100000;
  userns(s, { containerID: 0, hostID: host, size: 65536 }, { containerID: 0, hostID: host, size: 65536 });
  const r = s.tsrun(['run', '-b', s.bundle, s.id]);
  assert.is(r.status, 0, `run: ${r.stderr}`);
  assert.match(r.stdout, new RegExp(`^\\s*0\\s+${host}\\s+65536\\s*$`, 'm'), r.stdout);
  assert.equal(s.leftovers(), []);
});

for (const [name, uid, gid, field] of [
  ['uid mapping hostID 4294967295', { containerID: 0, hostID: MAX, size: 1 }, { containerID: 0, hostID: 100000, size: 65536 }, /\/linux\/uidMappings\/0\/hostID/],
  ['uid mapping containerID 4294967295', { containerID: MAX, hostID: 100000, size: 1 }, { containerID: 0, hostID: 100000, size: 65536 }, /\/linux\/uidMappings\/0\/containerID/],
  ['gid mapping hostID 4294967295', { containerID: 0, hostID: 100000, size: 65536 }, { containerID: 0, hostID: MAX, size: 1 }, /\/linux\/gidMappings\/0\/hostID/],
  ['uid mapping size 0', { containerID: 0, hostID: 100000, size: 0 }, { containerID: 0, hostID: 100000, size: 65536 }, /\/linux\/uidMappings\/0\/size/],
  ['uid mapping size 4294967295', { containerID: 0, hostID: 100000, size: MAX }, { containerID: 0, hostID: 100000, size: 65536 }, /\/linux\/uidMappings\/0/],
  // A range that reaches (u32)-1: the kernel refuses the map (it overflows); tsrun says so up front.
  ['gid mapping reaching 4294967295', { containerID: 0, hostID: 100000, size: 65536 }, { containerID: 0, hostID: 4294900000, size: 67296 }, /\/linux\/gidMappings\/0/],
] as const) {
  withSandbox(test, `${name}: create refused, nothing left`, USERNS_PROBE, (s) => {
    userns(s, uid, gid);
    assertCreateRefused(s, field, name);
  });
}

// runc 1.1.5 accepts these: chown(node, -1, -1) leaves the node root's instead of the owner asked for.
withSandbox(test, 'linux.devices uid/gid 4294967295: create refused (control: uid 1000 owns the node)', ['stat', '-c', '%u %g', '/dev/tsrun-null'], (s) => {
  const dev = { path: '/dev/tsrun-null', type: 'c', major: 1, minor: 3, fileMode: 0o666, uid: 1000, gid: 1001 };
  s.config.linux.devices = [dev];
  s.writeConfig();
  if (s.user) {
    // Rootless, devices are binds of the host's node of that path (runc's rule): no such node here,
    // and a bind keeps the host's owner. The control is that the refusals below are of the ids.
    const ctl = s.tsrun(['run', '-b', s.bundle, `${s.id}-ctl`]);
    assert.match(ctl.stderr, /bind mount device \/dev\/tsrun-null: no such file or directory/, `control run: ${ctl.stderr}`);
  } else {
    const ctl = s.tsrun(['run', '-b', s.bundle, `${s.id}-ctl`]);
    assert.is(ctl.status, 0, `control run: ${ctl.stderr}`);
    assert.is(ctl.stdout.trim(), '1000 1001', 'control: the device owner is not visible to the probe');
  }
  for (const [k, field] of [['uid', /\/linux\/devices\/0\/uid/], ['gid', /\/linux\/devices\/0\/gid/]] as const) {
    s.config.linux.devices = [{ ...dev, [k]: MAX }];
    s.writeConfig();
    assertCreateRefused(s, field, `device ${k} 4294967295`);
  }
});

// ---------------------------------------------------------------------------------------------
// ids out of range on the exec command line and in exec --process

function assertExecRefused(r: Result, what: string): void {
  assert.ok(r.status !== 0 && r.status !== null, `${what}: status ${r.status}`);
  assert.not.match(r.stdout, /Uid:/, `${what}: the process ran: ${r.stdout}`);
  // runc: exec failures exit 255 ("exec failed: ..."); tsrun does the same for these.
  assert.is(r.status, 255, `${what}: status ${r.status}: ${r.stderr}`);
  if (!OTHER_RUNTIME) assert.match(r.stderr, /^exec failed: .*range 0-2147483647/m, `${what}: ${r.stderr}`);
}

withSandbox(test, 'exec --user 4294967295:4294967295 and --additional-gids 4294967295 refused (control: 1000:1000 and -g 1002 apply)', ['sleep', '60'], (s) => {
  s.mapSubordinateIds();
  running(s);
  // Rootless: runc refuses additional groups there, so the control has none.
  const ctl = s.tsrun(['exec', '--user', '1000:1000', ...(s.user ? [] : ['--additional-gids', '1002']), s.id, ...PROBE]);
  assert.is(ctl.status, 0, `control exec: ${ctl.stderr}`);
  const st = status(ctl.stdout);
  assert.equal([st.uid[0], st.gid[0], st.groups], [1000, 1000, s.user ? [] : [1002]], `control: ${ctl.stdout}`);
  assertExecRefused(s.tsrun(['exec', '--user', `${MAX}:${MAX}`, s.id, ...PROBE]), '--user 4294967295:4294967295');
  assertExecRefused(s.tsrun(['exec', '--user', `${MAX}`, s.id, ...PROBE]), '--user 4294967295');
  assertExecRefused(s.tsrun(['exec', '--user', `0:${MAX}`, s.id, ...PROBE]), '--user 0:4294967295');
  assertExecRefused(s.tsrun(['exec', '--user', '1000:1000', '--additional-gids', `${MAX}`, s.id, ...PROBE]), '--additional-gids 4294967295');
  deleteAll(s, s.id);
});

withSandbox(test, 'exec --process with uid/gid/additionalGids 4294967295 refused (control: uid 1000 applies)', ['sleep', '60'], (s) => {
  s.mapSubordinateIds();
  running(s);
  const ctl = s.tsrun(['exec', '--process', processFile(s, PROBE, (p) => (p.user = { uid: 1000, gid: 1000 })), s.id]);
  assert.is(ctl.status, 0, `control exec: ${ctl.stderr}`);
  assert.is(status(ctl.stdout).uid[0], 1000);
  for (const [name, user, field] of [
    ['uid', { uid: MAX, gid: 0 }, /\/user\/uid/],
    ['gid', { uid: 0, gid: MAX }, /\/user\/gid/],
    ['additionalGids', { uid: 0, gid: 0, additionalGids: [MAX] }, /\/user\/additionalGids\/0/],
  ] as const) {
    const r = s.tsrun(['exec', '--process', processFile(s, PROBE, (p) => (p.user = user)), s.id]);
    assert.ok(r.status !== 0 && r.status !== null, `process file ${name} 4294967295: status ${r.status}`);
    assert.not.match(r.stdout, /Uid:/, `process file ${name} 4294967295: the process ran: ${r.stdout}`);
    if (!OTHER_RUNTIME) assert.match(r.stderr, field, r.stderr);
  }
  deleteAll(s, s.id);
});

// ---------------------------------------------------------------------------------------------
// tsrun's planner (no container; not run against another runtime)

if (!OTHER_RUNTIME) {
  const { buildExecPlan, planProcess } = require('../../src/plan/plan') as typeof import('../../src/plan/plan');
  const { execProcessSpec, PRIVILEGE_DEFAULTS } = require('../../src/plan/defaults') as typeof import('../../src/plan/defaults');
  const { processFromFlags } = require('../../src/container/exec') as typeof import('../../src/container/exec');
  const plan = (p: object) => planProcess({ args: ['x'], cwd: '/', ...p }, { seccomp: null, preserveFds: 0, warn: () => {} });
  const none = { bounding: [], effective: [], permitted: [], inheritable: [], ambient: [] };

  test('plan: no capabilities object, or an empty one, is five empty sets (never null); each absent set is empty', () => {
    assert.equal(plan({}).capabilities, none);
    assert.equal(plan({ capabilities: {} }).capabilities, none);
    for (const absent of SETS) {
      const caps = Object.fromEntries(SETS.filter((k) => k !== absent).map((k) => [k, ['CAP_KILL']]));
      const got = plan({ capabilities: caps }).capabilities as unknown as Record<string, number[]>;
      for (const k of SETS) assert.equal(got[k], k === absent ? [] : [Number(CAP_KILL)], `${absent} absent: ${k}`);
    }
    const e = buildExecPlan({ id: 'c', initPid: 1, initStartTime: 1, process: { args: ['x'], cwd: '/' }, config: { ociVersion: '1.2.0', process: { args: ['y'], cwd: '/' } }, consoleSocket: '', preserveFds: 0, waitForExit: true, seccomp: null, warn: () => {} });
    assert.equal(e.process.capabilities, none, 'exec plan of a container without capabilities');
  });

  test('plan: every privilege default comes from the table', () => {
    const p = plan({});
    assert.equal(
      [p.uid, p.gid, p.additionalGids, p.umask, p.rlimits, p.oomScoreAdj, p.noNewPrivileges, p.apparmorProfile, p.selinuxLabel],
      [0, 0, [], 0o022, [], null, false, '', ''],
    );
    assert.is(PRIVILEGE_DEFAULTS['/process/user/umask'].absent, 0o022);
  });

  test('exec inheritance: capabilities, noNewPrivileges, labels, rlimits from the container when the exec leaves them out', () => {
    const container = {
      args: ['sleep'],
      cwd: '/',
      capabilities: { bounding: ['CAP_KILL'], effective: ['CAP_KILL'] },
      noNewPrivileges: true,
      apparmorProfile: 'ctr-profile',
      selinuxLabel: 'ctr_t',
      rlimits: [{ type: 'RLIMIT_NOFILE', soft: 10, hard: 20 }],
      oomScoreAdj: 50,
    };
    const warnings: string[] = [];
    const bare = execProcessSpec({ args: ['x'], cwd: '/', apparmorProfile: '', rlimits: [], oomScoreAdj: -900 }, container, (m) => warnings.push(m));
    assert.equal(bare.capabilities, container.capabilities);
    assert.is(bare.noNewPrivileges, true);
    assert.equal([bare.apparmorProfile, bare.selinuxLabel], ['ctr-profile', 'ctr_t']);
    assert.equal(bare.rlimits, container.rlimits);
    assert.is(bare.oomScoreAdj, 50);
    assert.is(warnings.length, 1, 'the ignored oomScoreAdj is reported');
    const own = execProcessSpec(
      { args: ['x'], cwd: '/', capabilities: { bounding: ['CAP_CHOWN'] }, noNewPrivileges: false, apparmorProfile: 'mine', selinuxLabel: 'mine_t', rlimits: [{ type: 'RLIMIT_CORE', soft: 0, hard: 0 }] },
      container,
    );
    assert.equal(own.capabilities, { bounding: ['CAP_CHOWN'] }, 'the exec\'s own object, absent sets then empty');
    assert.equal([own.noNewPrivileges, own.apparmorProfile, own.selinuxLabel, own.rlimits![0].type], [false, 'mine', 'mine_t', 'RLIMIT_CORE']);
    assert.equal(execProcessSpec(bare, container), bare, 'idempotent');
    const noCaps = execProcessSpec({ args: ['x'], cwd: '/' }, { args: ['y'], cwd: '/' });
    assert.is(noCaps.capabilities, undefined);
    assert.equal(plan(noCaps).capabilities, none);
  });

  test('exec flags: --cap as before; --user and --additional-gids range-checked (exit 255)', () => {
    const base = { args: ['sh'], cwd: '/', user: { uid: 0, gid: 0 }, capabilities: { bounding: ['CAP_KILL'], effective: ['CAP_KILL'], permitted: ['CAP_KILL'], ambient: ['CAP_KILL'] } };
    const flags = { args: ['id'], tty: false, env: [], additionalGids: [], noNewPrivs: false, cap: ['CAP_CHOWN'] };
    const p = processFromFlags(base, flags);
    assert.equal(p.capabilities, { bounding: ['CAP_KILL', 'CAP_CHOWN'], effective: ['CAP_KILL', 'CAP_CHOWN'], permitted: ['CAP_KILL', 'CAP_CHOWN'], ambient: ['CAP_KILL', 'CAP_CHOWN'] });
    assert.is(processFromFlags({ ...base, capabilities: { bounding: [] } }, flags).capabilities!.ambient, undefined, 'no ambient --cap without base ambient');
    assert.equal(base.capabilities.bounding, ['CAP_KILL'], 'the base is not modified');
    assert.equal(processFromFlags(base, { ...flags, user: '2147483647:5' }).user, { uid: 2147483647, gid: 5 });
    for (const user of ['4294967295:4294967295', '4294967295', '0:4294967295', '2147483648', '-1', 'root', '1:2:3']) {
      try {
        processFromFlags(base, { ...flags, user });
        assert.unreachable(`--user ${user} accepted`);
      } catch (e) {
        assert.is((e as { exitCode?: number }).exitCode, 255, `--user ${user}: ${(e as Error).message}`);
      }
    }
    for (const g of [MAX, -1, Number.NaN, 1.5]) {
      assert.throws(() => processFromFlags(base, { ...flags, additionalGids: [g] }), /range 0-2147483647/, `-g ${g}`);
    }
  });
}

test.run();
