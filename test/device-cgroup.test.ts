/**
 * The device cgroup is enforced: a config that denies a device (here /dev/kmsg, char 1:11, bind
 * mounted from the host or created through linux.devices) cannot write it, from the container's
 * first instruction on, and `update` moves between rule sets without a moment where more is
 * allowed than either set. Every refusal has a positive control: the same probe with the device
 * allowed must see the write succeed (a probe that cannot see a breach proves nothing).
 *
 * A successful write puts one harmless line, "tsrun-device-test", in the host's kernel log.
 *
 * Runtime-agnostic: `RUNTIME=/usr/sbin/runc npm test -- device-cgroup` runs it against runc. runc
 * 1.1 ignores linux.resources.devices in `update` (update.go sets SkipDevices): against runc the
 * update tests check that the rules stay what create set, and say so.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { detectLayout } from '../src/cgroups';
import { DEFAULT_ALLOWED_DEVICES, DeviceEmulator, containerDeviceRules, type DeviceRule } from '../src/cgroups/devices';
import { Sandbox, TSRUN, selected, sleep, waitFor } from './helpers/tsrun';

const layout = detectLayout();
const onV1 = layout !== 'v2';
/** runc 1.1 leaves device rules alone on update; tsrun applies them. */
const UPDATE_APPLIES_DEVICES = !/runc/.test(path.basename(TSRUN));
const hostHasKmsg = fs.existsSync('/dev/kmsg');

const DENY_ALL = [{ allow: false, access: 'rwm' }];
const KMSG = { type: 'c', major: 1, minor: 11 };
const ALLOW_KMSG = [...DENY_ALL, { allow: true, ...KMSG, access: 'rwm' }];
const rule = (allow: boolean, type: 'a' | 'b' | 'c', major = -1, minor = -1, access = 'rwm'): DeviceRule => ({ allow, type, major, minor, access });
const KMSG_BIND = { destination: '/dev/kmsg', type: 'bind', source: '/dev/kmsg', options: ['bind'] };

/** One line per device: "kmsg=written" or "kmsg=refused: <the shell's error>", same for null. */
const PROBE =
  'if { echo tsrun-device-test > /dev/kmsg; } 2>/tmp/kerr; then echo kmsg=written; else echo "kmsg=refused: $(cat /tmp/kerr)"; fi; ' +
  'if { echo x > /dev/null; } 2>/tmp/nerr; then echo null=written; else echo "null=refused: $(cat /tmp/nerr)"; fi';

function lines(out: string): Record<string, string> {
  const o: Record<string, string> = {};
  for (const l of out.split('\n')) {
    const m = /^(kmsg|null)=(.*)$/.exec(l.trim());
    if (m) o[m[1]] = m[2];
  }
  return o;
}

function assertWritten(out: string, dev: 'kmsg' | 'null', why: string): void {
  const got = lines(out)[dev];
  assert.is(got, 'written', `${why}: /dev/${dev} should be writable; probe said ${JSON.stringify(got)} (output ${JSON.stringify(out)})`);
}

function assertRefused(out: string, dev: 'kmsg' | 'null', why: string): void {
  const got = lines(out)[dev] ?? '';
  assert.ok(got.startsWith('refused') && got.includes('Operation not permitted'), `${why}: /dev/${dev} should be refused with EPERM; probe said ${JSON.stringify(got)} (output ${JSON.stringify(out)})`);
}

const withSandbox = (name: string, args: string[], body: (s: Sandbox) => Promise<void> | void) =>
  test(name, async () => {
    if (!selected(name)) return;
    if (!hostHasKmsg) {
      console.log(`    ${name}: SKIPPED: no /dev/kmsg on this host`);
      return;
    }
    const s = new Sandbox(args, 'devcg');
    try {
      await body(s);
      // Delete what is still there (detached containers), then nothing may be left.
      for (const name of fs.existsSync(s.root) ? fs.readdirSync(s.root) : []) {
        if (!name.startsWith('.')) assert.is(s.tsrun(['delete', '-f', name]).status, 0, `delete ${name}`);
      }
      await waitFor(() => s.leftovers().length === 0, 10_000, 'no leftovers').catch(() => {});
      assert.equal(s.leftovers(), []);
    } finally {
      s.cleanup();
    }
  });

function configure(s: Sandbox, devices: unknown[] | undefined, opts: { bind?: boolean; linuxDevice?: boolean } = { bind: true }): void {
  if (devices) s.config.linux.resources = { devices };
  if (opts.bind) s.config.mounts.push(KMSG_BIND);
  if (opts.linuxDevice) s.config.linux.devices = [{ path: '/dev/kmsg', ...KMSG, fileMode: 0o600, uid: 0, gid: 0 }];
  s.writeConfig();
}

function run(s: Sandbox): string {
  const r = s.tsrun(['run', '-b', s.bundle, s.id], { timeout: 60_000 });
  assert.is(r.status, 0, `run: ${r.stderr}`);
  return r.stdout;
}

function runDetached(s: Sandbox): void {
  const r = s.tsrun(['run', '-d', '-b', s.bundle, s.id], { timeout: 60_000 });
  assert.is(r.status, 0, `run -d: ${r.stderr}`);
}

function execProbe(s: Sandbox): string {
  const r = s.tsrun(['exec', s.id, 'sh', '-c', PROBE], { timeout: 30_000 });
  assert.is(r.status, 0, `exec: ${r.stderr}`);
  return r.stdout;
}

function update(s: Sandbox, resources: unknown): void {
  const file = path.join(s.dir, `update-${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(file, JSON.stringify(resources));
  const r = s.tsrun(['update', '--resources', file, s.id], { timeout: 30_000 });
  assert.is(r.status, 0, `update: ${r.stderr}`);
}

/** The v1 devices.list of the container's init (v1/hybrid hosts). */
function devicesList(s: Sandbox): string[] {
  const pid = s.state().pid;
  const line = fs
    .readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .split('\n')
    .find((l) => l.split(':')[1]?.split(',').includes('devices'));
  assert.ok(line, `init ${pid} is not in a devices cgroup`);
  const rel = line!.split(':').slice(2).join(':');
  return fs.readFileSync(path.join('/sys/fs/cgroup/devices', rel, 'devices.list'), 'utf8').trim().split('\n');
}

// ---- create / run -------------------------------------------------------------------------------

withSandbox('positive control: deny-all then allow c 1:11: the container writes the bind-mounted /dev/kmsg', ['sh', '-c', PROBE], (s) => {
  configure(s, ALLOW_KMSG);
  const out = run(s);
  assertWritten(out, 'kmsg', 'allowed by the config');
  assertWritten(out, 'null', 'default rule');
});

withSandbox('deny-all: the first instruction of the container cannot write /dev/kmsg (EPERM), /dev/null still works', ['sh', '-c', PROBE], (s) => {
  configure(s, DENY_ALL);
  const out = run(s);
  assertRefused(out, 'kmsg', 'deny-all config');
  assertWritten(out, 'null', 'runc appends its default allow rules after the config');
});

withSandbox('no linux.resources at all: the default rules still deny /dev/kmsg', ['sh', '-c', PROBE], (s) => {
  configure(s, undefined);
  const out = run(s);
  assertRefused(out, 'kmsg', 'default rules only');
  assertWritten(out, 'null', 'default rule');
});

withSandbox('created, not started: the devices cgroup already holds the rules (none allowing c 1:11); start then runs under them', ['sh', '-c', PROBE], async (s) => {
  if (!onV1) {
    console.log('    (v2 host: the v1 devices.list check does not apply; the eBPF case is in cgroups-v2-container)');
    return;
  }
  configure(s, DENY_ALL);
  const r = s.tsrun(['create', '-b', s.bundle, s.id], { timeout: 60_000 });
  assert.is(r.status, 0, `create: ${r.stderr}`);
  const list = devicesList(s);
  assert.not.ok(list.includes('a *:* rwm'), `still allow-all: ${list.join(', ')}`);
  assert.ok(list.includes('c 1:3 rwm'), `/dev/null (default rule) missing: ${list.join(', ')}`);
  assert.not.ok(list.some((l) => /^[ac] (1|\*):(11|\*) [rwm]*[rw]/.test(l)), `a rule reaches c 1:11: ${list.join(', ')}`);
  assert.is(s.tsrun(['start', s.id]).status, 0);
  await waitFor(() => s.state().status === 'stopped', 20_000, 'container exit');
});

withSandbox('positive control for the list check: with allow c 1:11 the created container\'s devices.list has it', ['sleep', '100'], (s) => {
  if (!onV1) return;
  configure(s, ALLOW_KMSG);
  const r = s.tsrun(['create', '-b', s.bundle, s.id], { timeout: 60_000 });
  assert.is(r.status, 0, `create: ${r.stderr}`);
  assert.ok(devicesList(s).includes('c 1:11 rwm'), devicesList(s).join(', '));
});

withSandbox('linux.devices /dev/kmsg with deny-all: the node exists but cannot be written (runc does not allow linux.devices in the device cgroup)', ['sh', '-c', `ls -l /dev/kmsg | cut -c1; ${PROBE}`], (s) => {
  configure(s, DENY_ALL, { linuxDevice: true });
  const out = run(s);
  assert.match(out, /^c$/m, 'the device node was created');
  assertRefused(out, 'kmsg', 'only resources.devices grants access');
  assertWritten(out, 'null', 'default rule');
});

withSandbox('positive control: linux.devices /dev/kmsg plus an allow rule: the node is writable', ['sh', '-c', PROBE], (s) => {
  configure(s, ALLOW_KMSG, { linuxDevice: true });
  assertWritten(run(s), 'kmsg', 'allowed by resources.devices');
});

withSandbox('a deny that would punch a hole in a wildcard allow (silently ignored by cgroup v1) is refused, as runc does', ['sh', '-c', PROBE], (s) => {
  configure(s, [...DENY_ALL, { allow: true, type: 'c', access: 'rwm' }, { allow: false, ...KMSG, access: 'rwm' }]);
  const r = s.tsrun(['run', '-b', s.bundle, s.id], { timeout: 60_000 });
  assert.is.not(r.status, 0, `the container ran: ${r.stdout}`);
  assert.not.match(r.stdout, 'kmsg=written');
  assert.match(r.stderr, /punch/);
});

// ---- update -------------------------------------------------------------------------------------

withSandbox('update from allowing to deny-all: the write to /dev/kmsg then fails with EPERM', ['sleep', '300'], (s) => {
  configure(s, ALLOW_KMSG);
  runDetached(s);
  assertWritten(execProbe(s), 'kmsg', 'positive control before the update');
  update(s, { devices: DENY_ALL });
  const out = execProbe(s);
  if (UPDATE_APPLIES_DEVICES) assertRefused(out, 'kmsg', 'after update to deny-all');
  else assertWritten(out, 'kmsg', 'runc 1.1 ignores devices on update: unchanged');
  assertWritten(out, 'null', 'default rule');
});

withSandbox('update from deny-all to allowing c 1:11: the write then succeeds', ['sleep', '300'], (s) => {
  configure(s, DENY_ALL);
  runDetached(s);
  assertRefused(execProbe(s), 'kmsg', 'before the update');
  update(s, { devices: ALLOW_KMSG });
  const out = execProbe(s);
  if (UPDATE_APPLIES_DEVICES) assertWritten(out, 'kmsg', 'after update to allow');
  else assertRefused(out, 'kmsg', 'runc 1.1 ignores devices on update: unchanged');
  assertWritten(out, 'null', 'default rule');
});

withSandbox('update without devices (pids, memory) leaves the deny rules in force', ['sleep', '300'], (s) => {
  configure(s, DENY_ALL);
  runDetached(s);
  update(s, { pids: { limit: 200 } });
  update(s, { memory: { limit: 256 * 1024 * 1024 } });
  const out = execProbe(s);
  assertRefused(out, 'kmsg', 'after updates of other resources');
  assertWritten(out, 'null', 'default rule');
});

withSandbox('update of a paused container to a deny-list: the rules change, the container stays paused until resume', ['sleep', '300'], async (s) => {
  configure(s, DENY_ALL);
  runDetached(s);
  assert.is(s.tsrun(['pause', s.id]).status, 0);
  update(s, { devices: [{ allow: true, access: 'rwm' }, { allow: false, ...KMSG, access: 'rwm' }] });
  assert.is(s.state().status, 'paused', 'the update thawed a paused container');
  if (onV1 && UPDATE_APPLIES_DEVICES) assert.equal(devicesList(s), ['a *:* rwm']);
  assert.is(s.tsrun(['resume', s.id]).status, 0);
  await waitFor(() => s.state().status === 'running', 10_000, 'running after resume');
  assertRefused(execProbe(s), 'kmsg', 'denied by the deny-list (and by the original rules)');
});

/**
 * A loop in the container tries /dev/kmsg and /dev/null without pause while updates switch
 * between rule sets that all deny /dev/kmsg and all allow /dev/null: allow-lists that differ
 * elsewhere, and a deny-list one (reaching it needs cgroup v1's allow-all reset, a window that
 * tsrun closes by freezing the container). Neither a /dev/kmsg write nor a /dev/null refusal may
 * be seen. Positive control at the end: /dev/kmsg is opened on purpose and the loop must see it.
 */
withSandbox('transition: a container writing /dev/kmsg in a loop never gets through while updates switch rule sets', ['sh', '-c', 'exec sh /loop.sh'], async (s) => {
  const tmp = path.join(s.bundle, 'rootfs/tmp');
  fs.writeFileSync(path.join(tmp, 'phase'), 'updating\n');
  fs.writeFileSync(
    path.join(s.bundle, 'rootfs/loop.sh'),
    [
      'i=0',
      'while [ ! -e /tmp/stop ]; do',
      '  if { echo tsrun-device-test > /dev/kmsg; } 2>/dev/null; then read p < /tmp/phase; echo "kmsg-written phase=$p" >> /tmp/log; break; fi',
      '  if ! { echo x > /dev/null; } 2>/dev/null; then echo null-refused >> /tmp/log; fi',
      '  i=$((i + 1))',
      '  if [ $((i % 200)) = 0 ]; then echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; fi',
      'done',
      'echo loop-done >> /tmp/log',
      'sleep 300',
      '',
    ].join('\n'),
  );
  const A = [...DENY_ALL, { allow: true, type: 'c', major: 1, minor: 12, access: 'rw' }];
  const B = [...DENY_ALL, { allow: true, type: 'c', major: 1, minor: 12, access: 'r' }, { allow: true, type: 'c', major: 1, minor: 14, access: 'rw' }];
  const C = [{ allow: true, access: 'rwm' }, { allow: false, ...KMSG, access: 'rwm' }];
  configure(s, A);
  runDetached(s);
  // The loop replaces the file by a rename: a read sees an old or a new count, never an empty one.
  const count = () => (fs.existsSync(path.join(tmp, 'count')) ? Number(fs.readFileSync(path.join(tmp, 'count'), 'utf8').trim()) : 0);
  const log = () => (fs.existsSync(path.join(tmp, 'log')) ? fs.readFileSync(path.join(tmp, 'log'), 'utf8') : '');
  await waitFor(() => count() > 0, 20_000, 'the loop to run');
  const before = count();
  if (!UPDATE_APPLIES_DEVICES) console.log('    (runc 1.1 ignores devices on update: the transitions below do not happen)');
  const sets = [B, A, C, A, B, C, B];
  for (let round = 0; round < 6; round++) {
    for (const set of sets) update(s, { devices: set });
  }
  update(s, { devices: A });
  const after = count();
  assert.ok(after > before, `the loop did not run during the updates (${before} → ${after})`);
  assert.not.match(log(), 'kmsg-written', `/dev/kmsg was written during the updates:\n${log()}`);
  assert.not.match(log(), 'null-refused', `/dev/null was refused during the updates (a deny-all moment):\n${log()}`);
  // Positive control: open /dev/kmsg on purpose; the loop must notice.
  fs.writeFileSync(path.join(tmp, 'phase'), 'open\n');
  if (onV1) {
    const pid = s.state().pid;
    const line = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => l.split(':')[1]?.split(',').includes('devices'))!;
    fs.writeFileSync(path.join('/sys/fs/cgroup/devices', line.split(':').slice(2).join(':'), 'devices.allow'), 'c 1:11 w');
  } else if (UPDATE_APPLIES_DEVICES) {
    update(s, { devices: ALLOW_KMSG });
  } else {
    fs.writeFileSync(path.join(tmp, 'stop'), '');
    console.log('    (no runtime-independent way to open the device here: positive control skipped)');
    return;
  }
  await waitFor(() => log().includes('kmsg-written phase=open'), 10_000, 'the loop to see /dev/kmsg once allowed').catch(() => {
    assert.unreachable(`positive control: the loop never saw /dev/kmsg allowed:\n${log()}`);
  });
  await sleep(10);
});

// ---- the eBPF device filter (cgroup v2; this hybrid host has a cgroup2 mount too) --------------

function cgroup2Mount(): string | null {
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const dash = f.indexOf('-');
    if (dash > 0 && f[dash + 1] === 'cgroup2') return f[4];
  }
  return null;
}

test('eBPF filter: a deny-list rule "deny c 1:5 w" refuses an O_RDWR open too (cgroup v1 semantics); positive control: a rule on another device does not', () => {
  if (!UPDATE_APPLIES_DEVICES) return; // the addon is tsrun's: nothing of the runtime under test
  const root = cgroup2Mount();
  if (!root) {
    console.log('    SKIPPED: no cgroup2 mount on this host');
    return;
  }
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const n = require('../src/native/addon').native();
  const dir = path.join(root, `tsrun-devcg-test-${process.pid}`);
  fs.mkdirSync(dir);
  const probe = () =>
    spawnSync('sh', ['-c', `echo $$ > ${dir}/cgroup.procs && exec sh -c '(printf x > /dev/zero) 2>&- && echo wronly=ok || echo wronly=no; (exec 3<>/dev/zero) 2>&- && echo rdwr=ok || echo rdwr=no; (exec 3</dev/zero) 2>&- && echo rdonly=ok || echo rdonly=no'`], { encoding: 'utf8' }).stdout.trim().split('\n');
  const ALL: DeviceRule = rule(true, 'a');
  try {
    n.loadDeviceFilter(dir, [ALL, rule(false, 'c', 1, 7, 'w')]);
    assert.equal(probe(), ['wronly=ok', 'rdwr=ok', 'rdonly=ok'], 'positive control: /dev/zero not denied');
    n.loadDeviceFilter(dir, [ALL, rule(false, 'c', 1, 5, 'w')]);
    assert.equal(probe(), ['wronly=no', 'rdwr=no', 'rdonly=ok']);
  } finally {
    for (let i = 0; i < 50 && fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').trim(); i++) spawnSync('sleep', ['0.05']);
    fs.rmdirSync(dir);
  }
  assert.not.ok(fs.existsSync(dir));
});

// ---- the v1 transition itself (no container): every intermediate state of the kernel ----------

const PROBES: [type: 'b' | 'c', major: number, minor: number][] = [
  ['c', 1, 3],
  ['c', 1, 11],
  ['c', 1, 12],
  ['c', 1, 14],
  ['c', 136, 4],
  ['c', 4, 64],
  ['b', 8, 0],
];
const ACCESSES = ['r', 'w', 'm', 'rw', 'rwm'];

/** For every device and access: allowed in `state` implies allowed in `a` or in `b`. */
function within(state: DeviceEmulator, a: DeviceEmulator, b: DeviceEmulator): string | null {
  for (const [t, maj, min] of PROBES) {
    for (const acc of ACCESSES) {
      if (state.allows(t, maj, min, acc) && !a.allows(t, maj, min, acc) && !b.allows(t, maj, min, acc)) return `${t} ${maj}:${min} ${acc}`;
    }
  }
  return null;
}

const RULE_SETS: Record<string, DeviceRule[]> = {
  'deny-all': containerDeviceRules([{ allow: false, access: 'rwm' }]),
  'allow kmsg': containerDeviceRules(ALLOW_KMSG as never),
  'allow 1:12 rw': containerDeviceRules([{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 12, access: 'rw' }]),
  'allow 1:12 r + 1:14': containerDeviceRules([{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 12, access: 'r' }, { allow: true, type: 'c', major: 1, minor: 14, access: 'rw' }]),
  'deny-list without kmsg': containerDeviceRules([{ allow: true, access: 'rwm' }, { allow: false, type: 'c', major: 1, minor: 11, access: 'rwm' }]),
  'allow-all': containerDeviceRules([{ allow: true, access: 'rwm' }]),
};

test('v1 transitions: without a freeze, no intermediate state allows more than the old or the new rules', () => {
  for (const [fromName, from] of Object.entries(RULE_SETS)) {
    for (const [toName, to] of Object.entries(RULE_SETS)) {
      const cur = DeviceEmulator.fromRules(from);
      const target = DeviceEmulator.fromRules(to);
      // What the kernel reports: a deny-list shows as "a *:* rwm" only.
      const kernel = DeviceEmulator.fromList(cur.list().join('\n'));
      const steps = kernel.transition(target);
      const state = kernel.clone();
      const needsFreeze = steps.some((r) => r.type === 'a');
      for (const step of steps) {
        state.apply(step, false);
        if (!needsFreeze) {
          const bad = within(state, cur, target);
          assert.is(bad, null, `${fromName} → ${toName}: after "${step.allow ? 'allow' : 'deny'} ${step.type} ${step.major}:${step.minor} ${step.access}" ${bad} is allowed`);
        }
      }
      if (!target.isDenyList()) assert.ok(state.equals(target), `${fromName} → ${toName}: the end state is not the target`);
      else assert.ok(state.isDenyList(), `${fromName} → ${toName}: the end state is not a deny-list`);
      // Only a move to or from a deny-list may need the all-at-once reset (and a frozen cgroup).
      if (!cur.isDenyList() && !target.isDenyList()) assert.not.ok(needsFreeze, `${fromName} → ${toName}: an "a" reset between two allow-lists`);
    }
  }
});

test('positive control for the transition check: the old "deny a, then every rule" sequence is caught', () => {
  const from = DeviceEmulator.fromRules(RULE_SETS['deny-list without kmsg']);
  const to = DeviceEmulator.fromRules(RULE_SETS['deny-list without kmsg']);
  const state = DeviceEmulator.fromList('a *:* rwm');
  let caught: string | null = null;
  for (const step of [rule(false, 'a'), ...RULE_SETS['deny-list without kmsg']]) {
    state.apply(step, false);
    caught ??= within(state, from, to);
  }
  assert.is(caught, 'c 1:11 r');
});

test('emulator: runc\'s defaults are appended after the config (deny-all keeps /dev/null), punching a hole in a wildcard is refused', () => {
  const e = DeviceEmulator.fromRules(RULE_SETS['deny-all']);
  assert.ok(e.allows('c', 1, 3, 'rw'));
  assert.not.ok(e.allows('c', 1, 11, 'w'));
  assert.ok(e.allows('c', 1, 11, 'm'), 'mknod of anything (runc\'s c *:* m)');
  assert.is(DEFAULT_ALLOWED_DEVICES.length, 11);
  assert.throws(() => DeviceEmulator.fromRules(containerDeviceRules([{ allow: false, access: 'rwm' }, { allow: true, type: 'c', access: 'rwm' }, { allow: false, type: 'c', major: 1, minor: 11, access: 'rwm' }])), /punch a hole/);
  assert.equal(DeviceEmulator.fromList('c 1:3 rwm\nc *:* m\nb *:* m').list().sort(), ['b *:* m', 'c *:* m', 'c 1:3 rwm']);
});

test.run();
