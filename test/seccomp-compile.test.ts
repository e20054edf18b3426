// linux.seccomp → BPF (src/seccomp/compile.ts + addon/native/seccomp.cc), proven by loading the
// program in a real process: addon/native/test-helpers/seccomp-run.c (built here with cc) loads it
// like tsrun-init does and then execs a command or makes one raw syscall.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileSeccomp, compileSeccompAsync, listenerState, SeccompError, type LinuxSeccomp } from '../src/seccomp/compile';
import { native } from '../src/native/addon';

const root = path.resolve(__dirname, '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-seccomp-'));
const helper = path.join(tmp, 'seccomp-run');
const built = spawnSync('cc', ['-O2', '-Wall', '-o', helper, path.join(root, 'addon/native/test-helpers/seccomp-run.c')], { encoding: 'utf8' });
if (built.status !== 0) throw new Error(`building seccomp-run: ${built.stderr}`);

// x86_64 numbers (the tests check the native arch first).
const NR = { close: 3, mkdir: 83, getppid: 110, dup2: 33, write: 1, exit_group: 231, clone3: 435 };

const quiet = { warn: (m: string) => assert.unreachable(`unexpected warning: ${m}`) };

let n = 0;
function load(sc: LinuxSeccomp, mode: 'exec' | 'syscall', args: (string | number | bigint)[], flagsOverride?: number) {
  const plan = compileSeccomp(sc, quiet);
  const file = path.join(tmp, `f${n++}.bpf`);
  fs.writeFileSync(file, Buffer.from(plan.bpfBase64, 'base64'));
  const r = spawnSync(helper, [file, String(flagsOverride ?? plan.flags), mode, ...args.map(String)], { encoding: 'utf8' });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

function sys(sc: LinuxSeccomp, nr: number, ...args: (string | number | bigint)[]): string {
  const r = load(sc, 'syscall', [nr, ...args]);
  assert.is(r.status, 0, r.stderr);
  const m = /ret=(-?\d+) errno=(\w+)/.exec(r.stdout);
  if (!m) throw new Error(`helper said ${r.stdout}${r.stderr}`);
  return m[2] === '0' ? `ok ${m[1]}` : m[2];
}

test('native arch is x86_64 (the syscall numbers below are x86_64)', () => {
  assert.is(native().seccompNativeArch(), 'SCMP_ARCH_X86_64');
  assert.is(native().seccompSyscallNumber('mkdir'), NR.mkdir);
  assert.is(native().seccompSyscallNumber('clone3'), NR.clone3);
  assert.is(native().seccompSyscallNumber('no_such_syscall'), -1);
});

test('mkdir denied with EPERM (ERRNO without errnoRet), other syscalls allowed', () => {
  const sc: LinuxSeccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }] };
  const dir = path.join(tmp, 'denied');
  assert.is(sys(sc, NR.mkdir, dir), 'EPERM');
  assert.not.ok(fs.existsSync(dir));
  // The real mkdir(1) (mkdirat) through exec, as a container process would run it.
  const r = load(sc, 'exec', ['mkdir', dir]);
  assert.is.not(r.status, 0);
  assert.match(r.stderr, /Operation not permitted/);
  assert.not.ok(fs.existsSync(dir));
  // Without the filter the same call works (the test can fail).
  assert.is(sys({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['rmdir'], action: 'SCMP_ACT_ERRNO' }] }, NR.mkdir, dir), 'ok 0');
  assert.ok(fs.existsSync(dir));
});

test('errnoRet and defaultErrnoRet', () => {
  assert.is(sys({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['getppid'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }] }, NR.getppid), 'EACCES');
  const allowOutput = [{ names: ['write', 'exit_group', 'exit', 'clone3'], action: 'SCMP_ACT_ALLOW' }];
  assert.is(sys({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 22, syscalls: allowOutput }, NR.getppid), 'EINVAL');
});

test('args: MASKED_EQ (value = mask, valueTwo = expected)', () => {
  const sc: LinuxSeccomp = {
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [{ names: ['close'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, op: 'SCMP_CMP_MASKED_EQ', value: 0xff00, valueTwo: 0x1200 }] }],
  };
  assert.is(sys(sc, NR.close, 0x1234), 'EPERM');
  assert.is(sys(sc, NR.close, 0x12ff), 'EPERM');
  assert.is(sys(sc, NR.close, 0x1334), 'EBADF'); // not matched: reaches the kernel
});

test('args: conditions on different arguments AND, on the same argument OR (separate rules)', () => {
  const and: LinuxSeccomp = {
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [{ names: ['dup2'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, op: 'SCMP_CMP_EQ', value: 1000 }, { index: 1, op: 'SCMP_CMP_EQ', value: 1001 }] }],
  };
  assert.is(sys(and, NR.dup2, 1000, 1001), 'EPERM');
  assert.is(sys(and, NR.dup2, 1000, 1002), 'EBADF');
  const or: LinuxSeccomp = {
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [{ names: ['close'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, op: 'SCMP_CMP_EQ', value: 1000 }, { index: 0, op: 'SCMP_CMP_EQ', value: 1001 }] }],
  };
  assert.is(sys(or, NR.close, 1000), 'EPERM');
  assert.is(sys(or, NR.close, 1001), 'EPERM');
  assert.is(sys(or, NR.close, 1002), 'EBADF');
});

test('args: every operator and full 64-bit values', () => {
  const rule = (op: string, value: number | bigint) => ({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['close'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, op, value }] }] });
  const cases: [string, number, number[], number[]][] = [
    ['SCMP_CMP_NE', 1000, [1001, 999], [1000]],
    ['SCMP_CMP_LT', 1000, [999], [1000, 1001]],
    ['SCMP_CMP_LE', 1000, [999, 1000], [1001]],
    ['SCMP_CMP_EQ', 1000, [1000], [999, 1001]],
    ['SCMP_CMP_GE', 1000, [1000, 1001], [999]],
    ['SCMP_CMP_GT', 1000, [1001], [999, 1000]],
  ];
  for (const [op, v, denied, allowed] of cases) {
    for (const x of denied) assert.is(sys(rule(op, v), NR.close, x), 'EPERM', `${op} ${v}: ${x}`);
    for (const x of allowed) assert.is(sys(rule(op, v), NR.close, x), 'EBADF', `${op} ${v}: ${x}`);
  }
  // Above 2^53: only a bigint keeps this exact; the kernel sees the whole register.
  const big = 0x123456789abcdef0n;
  assert.is(sys(rule('SCMP_CMP_EQ', big), NR.close, '0x123456789abcdef0'), 'EPERM');
  assert.is(sys(rule('SCMP_CMP_EQ', big), NR.close, '0x123456789abcdef1'), 'EBADF');
});

test('unknown syscall names are skipped and reported (once), the rest still applies', () => {
  const seen: string[] = [];
  const sc: LinuxSeccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['no_such_syscall_xyz', 'mkdir', 'no_such_syscall_xyz'], action: 'SCMP_ACT_ERRNO' }] };
  const plan = compileSeccomp(sc, { warn: () => assert.unreachable('debug expected, not warn'), debug: (m) => seen.push(m) });
  assert.equal(seen, ['seccomp: unknown syscall "no_such_syscall_xyz" ignored']);
  assert.ok(plan.bpfBase64.length > 0);
  const warned: string[] = [];
  compileSeccomp(sc, (m) => warned.push(m)); // the (seccomp, warn) form: warn gets it
  assert.is(warned.length, 1);
  const file = path.join(tmp, 'unknown.bpf');
  fs.writeFileSync(file, Buffer.from(plan.bpfBase64, 'base64'));
  const r = spawnSync(helper, [file, '0', 'syscall', String(NR.mkdir), path.join(tmp, 'x')], { encoding: 'utf8' });
  assert.match(r.stdout, /errno=EPERM/);
});

test('the thread-pool compile gives the same program, the same notes and the same errors', async () => {
  const sc: LinuxSeccomp = {
    defaultAction: 'SCMP_ACT_ERRNO',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls: [
      { names: ['read', 'write', 'openat', 'close', 'no_such_syscall_xyz', 'exit_group'], action: 'SCMP_ACT_ALLOW' },
      { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] },
    ],
  };
  const seenSync: string[] = [];
  const seenAsync: string[] = [];
  const sync = compileSeccomp(sc, { warn: (m) => seenSync.push(m) });
  const pending = compileSeccompAsync(sc, { warn: (m) => seenAsync.push(m) });
  assert.ok(pending instanceof Promise);
  const async = await pending;
  assert.equal(async, sync);
  assert.equal(seenAsync, ['seccomp: unknown syscall "no_such_syscall_xyz" ignored']);
  assert.equal(seenAsync, seenSync);
  // A profile the native side refuses rejects with the same SeccompError.
  const bad: LinuxSeccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['write'], action: 'SCMP_ACT_NOTIFY' }], listenerPath: '/x' };
  let syncErr: unknown;
  try {
    compileSeccomp(bad, quiet);
  } catch (e) {
    syncErr = e;
  }
  const asyncErr = await compileSeccompAsync(bad, quiet).then(() => undefined, (e) => e);
  assert.ok(syncErr instanceof SeccompError, String(syncErr));
  assert.ok(asyncErr instanceof SeccompError, String(asyncErr));
  assert.is((asyncErr as Error).message, (syncErr as Error).message);
  // And a build failure in the worker (more instructions than the kernel loads) as well.
  const huge: LinuxSeccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: Array.from({ length: 5000 }, (_, i) => ({ names: ['close'], action: 'SCMP_ACT_ERRNO' as const, args: [{ index: 0, value: i, op: 'SCMP_CMP_EQ' as const }] })) };
  const hugeErr = await compileSeccompAsync(huge, quiet).then(() => undefined, (e) => e);
  assert.ok(hugeErr instanceof SeccompError, String(hugeErr));
  assert.match((hugeErr as Error).message, /more than the kernel's limit of 4096/);
});

test('ENOSYS above the highest syscall the profile names, default errno below it', () => {
  // Highest named: exit_group (231). clone3 (435) is newer than the profile: ENOSYS, so glibc
  // falls back to clone; getppid (110) is old and simply not allowed: the default EPERM.
  const sc: LinuxSeccomp = { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['write', 'exit_group', 'exit', 'mkdir'], action: 'SCMP_ACT_ALLOW' }] };
  assert.is(sys(sc, NR.clone3, 0, 0), 'ENOSYS');
  assert.is(sys(sc, 1000), 'ENOSYS');
  assert.is(sys(sc, NR.getppid), 'EPERM');
  assert.is(sys(sc, NR.exit_group + 1), 'ENOSYS');
  assert.is(sys(sc, NR.exit_group - 1), 'EPERM');
  // KILL default: still ENOSYS for the new syscall instead of a dead process.
  assert.is(sys({ ...sc, defaultAction: 'SCMP_ACT_KILL_PROCESS' }, NR.clone3, 0, 0), 'ENOSYS');
  // No stub when the default errno is already ENOSYS, or for permissive defaults.
  assert.is(sys({ ...sc, defaultErrnoRet: 38 }, NR.getppid), 'ENOSYS');
  const logDefault = compileSeccomp({ defaultAction: 'SCMP_ACT_LOG', syscalls: [{ names: ['getppid'], action: 'SCMP_ACT_ERRNO' }] }, quiet);
  const errDefault = compileSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['getppid'], action: 'SCMP_ACT_ALLOW' }] }, quiet);
  const hasEnosysStub = (b64: string) => Buffer.from(b64, 'base64').subarray(0, 8 * 16).includes(Buffer.from([0x26, 0x00, 0x05, 0x00])); // ret ERRNO(ENOSYS)
  assert.not.ok(hasEnosysStub(logDefault.bpfBase64));
  assert.ok(hasEnosysStub(errDefault.bpfBase64));
  // x32 calls (bit 30) are not x86_64 calls: left to the filter (which kills them; x32 not listed).
  assert.is(load(sc, 'syscall', [0x40000000 + NR.getppid]).signal, 'SIGSYS');
});

test('ENOSYS stub covers every listed architecture (x86, x32 beside x86_64)', () => {
  const plan = compileSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'], syscalls: [{ names: ['read', 'write', 'exit_group'], action: 'SCMP_ACT_ALLOW' }] }, quiet);
  const b = Buffer.from(plan.bpfBase64, 'base64');
  const ks: number[] = [];
  for (let i = 0; i < b.length; i += 8) ks.push(b.readUInt32LE(i + 4));
  assert.ok(ks.includes(0xc000003e), 'AUDIT_ARCH_X86_64');
  assert.ok(ks.includes(0x40000003), 'AUDIT_ARCH_I386');
  // exit_group: 231 on x86_64, 252 on i386, 231|bit30 on x32.
  assert.ok(ks.includes(231) && ks.includes(252) && ks.includes(0x40000000 + 231));
  const x = { defaultAction: 'SCMP_ACT_ERRNO', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'], syscalls: [{ names: ['write', 'exit_group', 'exit'], action: 'SCMP_ACT_ALLOW' }] };
  assert.is(sys(x, NR.clone3, 0, 0), 'ENOSYS');
  assert.is(sys(x, NR.getppid), 'EPERM');
  // An x32 syscall above x32's highest named: ENOSYS now that x32 is in the filter.
  assert.is(sys(x, 0x40000000 + 300), 'ENOSYS');
});

test('actions: KILL_PROCESS and TRAP end in SIGSYS, KILL kills, LOG and TRACE (no tracer) behave', () => {
  const act = (action: string) => load({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['getppid'], action }] }, 'syscall', [NR.getppid]);
  for (const a of ['SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_TRAP']) assert.is(act(a).signal, 'SIGSYS', a);
  assert.is(act('SCMP_ACT_KILL').signal, 'SIGSYS'); // single thread: the whole process goes
  assert.is(act('SCMP_ACT_KILL_THREAD').signal, 'SIGSYS');
  assert.match(act('SCMP_ACT_LOG').stdout, /errno=0/);
  assert.match(act('SCMP_ACT_ALLOW').stdout, /errno=0/); // same as default: rule dropped
  assert.match(act('SCMP_ACT_TRACE').stdout, /errno=ENOSYS/); // no tracer: the kernel says ENOSYS
});

test('flags: names → seccomp(2) numbers, accepted by the kernel; unknown refused', () => {
  const sc = (flags: string[]): LinuxSeccomp => ({ defaultAction: 'SCMP_ACT_ALLOW', flags, syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] });
  assert.is(compileSeccomp(sc(['SECCOMP_FILTER_FLAG_LOG']), quiet).flags, 2);
  assert.is(compileSeccomp(sc(['SECCOMP_FILTER_FLAG_SPEC_ALLOW', 'SECCOMP_FILTER_FLAG_LOG']), quiet).flags, 6);
  assert.is(compileSeccomp(sc(['SECCOMP_FILTER_FLAG_TSYNC']), quiet).flags, 0);
  const r = load(sc(['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW']), 'syscall', [NR.mkdir, path.join(tmp, 'y')]);
  assert.match(r.stdout, /errno=EPERM/, r.stderr);
  assert.throws(() => compileSeccomp(sc(['SECCOMP_FILTER_FLAG_NOPE']), quiet), /^linux\.seccomp\.flags\[0\]: unknown seccomp filter flag "SECCOMP_FILTER_FLAG_NOPE"$/);
  assert.throws(() => compileSeccomp(sc(['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV']), quiet), /WAIT_KILLABLE_RECV needs a SCMP_ACT_NOTIFY rule/);
});

test('NOTIFY: validation with runc wording, listener state, kernel accepts NEW_LISTENER', () => {
  assert.throws(() => compileSeccomp({ defaultAction: 'SCMP_ACT_NOTIFY', listenerPath: '/x' }, quiet), /^SCMP_ACT_NOTIFY cannot be used as default action$/);
  assert.throws(() => compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/x', syscalls: [{ names: ['mkdir', 'write'], action: 'SCMP_ACT_NOTIFY' }] }, quiet), /^SCMP_ACT_NOTIFY cannot be used for the write syscall$/);
  assert.throws(() => compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] }, quiet), /^linux\.seccomp\.listenerPath: must be set when SCMP_ACT_NOTIFY is used/);

  const state = JSON.stringify({ ociVersion: '1.2.0', id: 'c1', status: 'creating', bundle: '/b', annotations: { a: '"pid":1' } });
  const sc: LinuxSeccomp = {
    defaultAction: 'SCMP_ACT_ALLOW',
    listenerPath: '/run/agent.sock',
    listenerMetadata: 'meta "x"',
    flags: ['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'],
    syscalls: [{ names: ['getppid'], action: 'SCMP_ACT_NOTIFY' }],
  };
  const plan = compileSeccomp(sc, { warn: quiet.warn, state });
  assert.is(plan.listenerPath, '/run/agent.sock');
  assert.is(plan.flags, 32);
  const cps = JSON.parse(plan.listenerStatePrefix + '4321' + plan.listenerStateSuffix);
  assert.equal(cps, { ociVersion: '1.2.0', fds: ['seccompFd'], pid: 4321, metadata: 'meta "x"', state: JSON.parse(state) });
  assert.equal(Object.keys(cps), ['ociVersion', 'fds', 'pid', 'metadata', 'state']);
  const noMeta = listenerState(state, undefined);
  assert.not.ok('metadata' in JSON.parse(noMeta.prefix + '1' + noMeta.suffix));
  // The kernel accepts the program with NEW_LISTENER (what tsrun-init adds) and returns a fd;
  // write is still allowed (the helper prints), getppid is never called.
  const r = load(sc, 'syscall', [NR.mkdir, path.join(tmp, 'n')], 8 /* NEW_LISTENER */);
  assert.match(r.stdout, /ret=0 errno=0 listener=\d+/, r.stderr);
  // listenerPath without NOTIFY: not used, with a warning.
  const warned: string[] = [];
  const p2 = compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/x', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] }, (m) => warned.push(m));
  assert.is(p2.listenerPath, '');
  assert.is(warned.length, 1);
});

test('bad input: clear errors naming the field', () => {
  const bad = (sc: unknown, re: RegExp) => assert.throws(() => compileSeccomp(sc as LinuxSeccomp, quiet), re);
  bad({ defaultAction: 'SCMP_ACT_NOPE' }, /^linux\.seccomp\.defaultAction: unknown action "SCMP_ACT_NOPE"$/);
  bad({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: -1 }, /^linux\.seccomp\.defaultErrnoRet: must be an integer from 0 to 65535/);
  bad({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['x86_64'] }, /^linux\.seccomp\.architectures\[0\]: unknown architecture "x86_64"$/);
  bad({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: [], action: 'SCMP_ACT_ERRNO' }] }, /^linux\.seccomp\.syscalls\[0\]\.names: must be a non-empty array/);
  bad({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_X' }] }, /^linux\.seccomp\.syscalls\[0\]\.action: unknown action "SCMP_ACT_X"$/);
  bad({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 6, op: 'SCMP_CMP_EQ', value: 1 }] }] }, /^linux\.seccomp\.syscalls\[0\]\.args\[0\]\.index: must be an integer from 0 to 5/);
  bad({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, op: 'SCMP_CMP_XX', value: 1 }] }] }, /^linux\.seccomp\.syscalls\[0\]\.args\[0\]\.op: unknown operator "SCMP_CMP_XX"$/);
  bad({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, op: 'SCMP_CMP_EQ', value: -1 }] }] }, /^linux\.seccomp\.syscalls\[0\]\.args\[0\]\.value: must be an unsigned 64-bit integer/);
});

test('a large real-world profile compiles into a binary tree under the kernel limit', () => {
  // All syscalls libseccomp knows, allowed with an arg rule on a few: a containerd-sized profile.
  const names = fs.readFileSync('/usr/include/x86_64-linux-gnu/asm/unistd_64.h', 'utf8').match(/__NR_(\w+)/g)!.map((s) => s.slice(5));
  const plan = compileSeccomp({
    defaultAction: 'SCMP_ACT_ERRNO',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls: [
      { names: names.filter((s) => s !== 'personality' && s !== 'clone3'), action: 'SCMP_ACT_ALLOW' },
      { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, op: 'SCMP_CMP_EQ', value: 0 }] },
      { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, op: 'SCMP_CMP_EQ', value: 0xffffffff }] },
    ],
  }, { warn: () => {}, debug: () => {} });
  const insns = Buffer.from(plan.bpfBase64, 'base64').length / 8;
  assert.ok(insns > 100 && insns <= 4096, `${insns} instructions`);
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
test.run();
