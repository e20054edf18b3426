/**
 * linux.seccomp (runtime-spec) → PlanSeccomp: the classic BPF program, compiled here in the
 * runtime by libseccomp through the addon, so the container init only calls seccomp(2) with it.
 *
 * runc is the reference: SCMP_ACT_ERRNO/TRACE without errnoRet mean EPERM; a rule whose action
 * equals the default is dropped; syscall names libseccomp does not know are skipped (reported
 * through `debug`, else `warn`); two conditions on one argument become separate rules (OR), other
 * conditions are ANDed; syscalls numbered above the highest one the profile names (per
 * architecture) return ENOSYS unless the default action is ALLOW/LOG/TRACE or the default errno is
 * already ENOSYS (so glibc falls back from clone3 to clone). The native architecture is always in
 * the filter (libseccomp's behaviour) and also gets an ENOSYS section, which runc only gives the
 * listed architectures.
 *
 * Every error names the offending field and the whole profile is checked before anything is
 * compiled.
 */
import type { PlanSeccomp } from '../native/init-plan';

import type { SeccompAction } from '../bundle/types';
import { U64_MAX } from '../bundle/u64';
import type { ErrorKind } from '../container/errors';
// The action names are the spec's; the argument types below differ on purpose (bigint values).
export type { SeccompAction };

export interface LinuxSeccompArg {
  index: number;
  /** uint64; a bigint keeps values above 2^53 exact. */
  value: number | bigint;
  valueTwo?: number | bigint;
  op: string;
}

export interface LinuxSyscall {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: LinuxSeccompArg[];
}

/** runtime-spec config.json linux.seccomp. */
export interface LinuxSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  flags?: string[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: LinuxSyscall[];
}

export interface CompileOptions {
  /** The container's OCI state JSON, embedded in the ContainerProcessState sent to the listener. */
  state?: string;
  warn: (m: string) => void;
  /** Low-importance messages (unknown syscall names, as runc logs them at debug level). */
  debug?: (m: string) => void;
  /** SCMP_ARCH_* to build for instead of this machine's architecture (tests, cross-checks). */
  arch?: string;
}

export class SeccompError extends Error {
  readonly kind: ErrorKind = 'InvalidArgument';
}

export const ACTIONS: readonly string[] = [
  'SCMP_ACT_KILL',
  'SCMP_ACT_KILL_PROCESS',
  'SCMP_ACT_KILL_THREAD',
  'SCMP_ACT_TRAP',
  'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE',
  'SCMP_ACT_ALLOW',
  'SCMP_ACT_LOG',
  'SCMP_ACT_NOTIFY',
];

export const OPERATORS: readonly string[] = ['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ'];

export const ARCHITECTURES: readonly string[] = [
  'SCMP_ARCH_X86',
  'SCMP_ARCH_X86_64',
  'SCMP_ARCH_X32',
  'SCMP_ARCH_ARM',
  'SCMP_ARCH_AARCH64',
  'SCMP_ARCH_MIPS',
  'SCMP_ARCH_MIPS64',
  'SCMP_ARCH_MIPS64N32',
  'SCMP_ARCH_MIPSEL',
  'SCMP_ARCH_MIPSEL64',
  'SCMP_ARCH_MIPSEL64N32',
  'SCMP_ARCH_PPC',
  'SCMP_ARCH_PPC64',
  'SCMP_ARCH_PPC64LE',
  'SCMP_ARCH_S390',
  'SCMP_ARCH_S390X',
  'SCMP_ARCH_PARISC',
  'SCMP_ARCH_PARISC64',
  'SCMP_ARCH_RISCV64',
];

/** seccomp(2) SECCOMP_FILTER_FLAG_* values (linux/seccomp.h). */
export const FILTER_FLAGS: Readonly<Record<string, number>> = {
  // The init is single-threaded when it loads the filter, so there is nothing to synchronise;
  // runc ignores this flag too. Passing it would also make the kernel refuse NEW_LISTENER
  // (TSYNC + NEW_LISTENER needs TSYNC_ESRCH).
  SECCOMP_FILTER_FLAG_TSYNC: 0,
  SECCOMP_FILTER_FLAG_LOG: 1 << 1,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 1 << 2,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: 1 << 5,
};


function fail(msg: string): never {
  throw new SeccompError(msg);
}

function errnoField(v: unknown, field: string): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffff) fail(`${field}: must be an integer from 0 to 65535, got ${JSON.stringify(v)}`);
}

function u64(v: unknown, field: string): bigint {
  if (typeof v === 'bigint') {
    if (v < 0n || v > U64_MAX) fail(`${field}: must be an unsigned 64-bit integer, got ${v}`);
    return v;
  }
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) {
    // JSON.parse already rounded anything above 2^53; BigInt(v) is the value we were given.
    if (v > Number(U64_MAX)) fail(`${field}: must be an unsigned 64-bit integer, got ${v}`);
    return BigInt(v);
  }
  fail(`${field}: must be an unsigned 64-bit integer, got ${JSON.stringify(v)}`);
}

/** Checks the whole profile (field names in the messages) and returns the native input. */
export function validateSeccomp(sc: LinuxSeccomp): {
  profile: { defaultAction: string; defaultErrnoRet?: number; architectures: string[]; syscalls: { names: string[]; action: string; errnoRet?: number; args: { index: number; value: bigint; valueTwo: bigint; op: string }[] }[] };
  flags: number;
  notify: boolean;
} {
  const base = 'linux.seccomp';
  if (typeof sc !== 'object' || sc === null) fail(`${base}: must be an object`);
  if (!ACTIONS.includes(sc.defaultAction)) fail(`${base}.defaultAction: unknown action ${JSON.stringify(sc.defaultAction)}`);
  // runc's wording: the init's own write of the listener fd would be trapped by the filter.
  if (sc.defaultAction === 'SCMP_ACT_NOTIFY') fail('SCMP_ACT_NOTIFY cannot be used as default action');
  errnoField(sc.defaultErrnoRet, `${base}.defaultErrnoRet`);

  const architectures = sc.architectures ?? [];
  if (!Array.isArray(architectures)) fail(`${base}.architectures: must be an array`);
  architectures.forEach((a, i) => {
    if (!ARCHITECTURES.includes(a)) fail(`${base}.architectures[${i}]: unknown architecture ${JSON.stringify(a)}`);
  });

  let notify = false;
  const syscalls = sc.syscalls ?? [];
  if (!Array.isArray(syscalls)) fail(`${base}.syscalls: must be an array`);
  const outSyscalls = syscalls.map((s, i) => {
    const f = `${base}.syscalls[${i}]`;
    if (typeof s !== 'object' || s === null) fail(`${f}: must be an object`);
    if (!Array.isArray(s.names) || s.names.length === 0) fail(`${f}.names: must be a non-empty array of syscall names`);
    s.names.forEach((n, j) => {
      if (typeof n !== 'string' || n === '') fail(`${f}.names[${j}]: must be a non-empty string`);
    });
    if (!ACTIONS.includes(s.action)) fail(`${f}.action: unknown action ${JSON.stringify(s.action)}`);
    errnoField(s.errnoRet, `${f}.errnoRet`);
    if (s.action === 'SCMP_ACT_NOTIFY') {
      notify = true;
      if (s.names.includes('write')) fail('SCMP_ACT_NOTIFY cannot be used for the write syscall');
    }
    const args = s.args ?? [];
    if (!Array.isArray(args)) fail(`${f}.args: must be an array`);
    return {
      names: s.names,
      action: s.action,
      errnoRet: s.errnoRet,
      args: args.map((a, j) => {
        const af = `${f}.args[${j}]`;
        if (typeof a !== 'object' || a === null) fail(`${af}: must be an object`);
        if (!Number.isInteger(a.index) || a.index < 0 || a.index > 5) fail(`${af}.index: must be an integer from 0 to 5, got ${JSON.stringify(a.index)}`);
        if (!OPERATORS.includes(a.op)) fail(`${af}.op: unknown operator ${JSON.stringify(a.op)}`);
        return { index: a.index, value: u64(a.value, `${af}.value`), valueTwo: a.valueTwo === undefined ? 0n : u64(a.valueTwo, `${af}.valueTwo`), op: a.op };
      }),
    };
  });

  let flags = 0;
  (sc.flags ?? []).forEach((name, i) => {
    if (!(name in FILTER_FLAGS)) fail(`${base}.flags[${i}]: unknown seccomp filter flag ${JSON.stringify(name)}`);
    flags |= FILTER_FLAGS[name];
  });
  // The kernel only accepts it together with SECCOMP_FILTER_FLAG_NEW_LISTENER (a NOTIFY rule).
  if (flags & FILTER_FLAGS.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV && !notify) {
    fail(`${base}.flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs a SCMP_ACT_NOTIFY rule`);
  }
  if (notify && !sc.listenerPath) fail(`${base}.listenerPath: must be set when SCMP_ACT_NOTIFY is used (seccomp listenerPath is not set)`);
  if (sc.listenerPath !== undefined && typeof sc.listenerPath !== 'string') fail(`${base}.listenerPath: must be a string`);
  if (sc.listenerMetadata !== undefined && typeof sc.listenerMetadata !== 'string') fail(`${base}.listenerMetadata: must be a string`);

  return {
    profile: { defaultAction: sc.defaultAction, defaultErrnoRet: sc.defaultErrnoRet, architectures, syscalls: outSyscalls },
    flags,
    notify,
  };
}

/**
 * The ContainerProcessState (runtime-spec) the init sends to the seccomp agent with the listener
 * fd, split around the pid that only the init knows: prefix + pid + suffix.
 */
export function listenerState(stateJson: string, metadata: string | undefined): { prefix: string; suffix: string } {
  let state: { ociVersion?: unknown };
  try {
    state = JSON.parse(stateJson);
  } catch (e) {
    throw new SeccompError(`seccomp: the container state is not JSON: ${(e as Error).message}`);
  }
  const ociVersion = typeof state.ociVersion === 'string' ? state.ociVersion : '1.2.0';
  // Built by hand rather than split from one JSON.stringify so no field value can collide with a
  // pid marker. Key order as runc's (specs.ContainerProcessState); metadata omitted when empty.
  const prefix = `{"ociVersion":${JSON.stringify(ociVersion)},"fds":["seccompFd"],"pid":`;
  const suffix = `${metadata ? `,"metadata":${JSON.stringify(metadata)}` : ''},"state":${JSON.stringify(state)}}`;
  return { prefix, suffix };
}

function nativeAddon(): ReturnType<typeof import('../native/addon').native> {
  // Loaded only now: a container without seccomp never loads libseccomp.
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { native } = require('../native/addon') as typeof import('../native/addon');
  return native();
}

function seccompError(e: unknown): SeccompError {
  const msg = (e as Error).message;
  return new SeccompError(msg.startsWith('seccomp') || msg.startsWith('SCMP_') ? msg : `seccomp: ${msg}`);
}

/** What surrounds the BPF in the plan: unknown syscalls noted once each, the listener's state. */
function planSeccomp(sc: LinuxSeccomp, o: CompileOptions, flags: number, notify: boolean, bpf: Buffer, unknown: string[]): PlanSeccomp {
  const note = o.debug ?? o.warn;
  for (const name of new Set(unknown)) note(`seccomp: unknown syscall ${JSON.stringify(name)} ignored`);
  let listenerPath = '';
  let listenerStatePrefix = '';
  let listenerStateSuffix = '';
  if (notify) {
    listenerPath = sc.listenerPath as string;
    ({ prefix: listenerStatePrefix, suffix: listenerStateSuffix } = listenerState(o.state ?? '{}', sc.listenerMetadata));
  } else if (sc.listenerPath) {
    // runc only contacts the agent when there is a listener fd, i.e. a NOTIFY rule.
    o.warn('seccomp: listenerPath is set but no syscall uses SCMP_ACT_NOTIFY; the listener is not contacted');
  }
  return { bpfBase64: bpf.toString('base64'), flags, listenerPath, listenerStatePrefix, listenerStateSuffix };
}

/** Compiles linux.seccomp for the init. Throws SeccompError naming the field on bad input. */
export function compileSeccomp(sc: LinuxSeccomp, opts: CompileOptions | ((m: string) => void)): PlanSeccomp {
  const o: CompileOptions = typeof opts === 'function' ? { warn: opts } : opts;
  const { profile, flags, notify } = validateSeccomp(sc);
  const unknown: string[] = [];
  let bpf: Buffer;
  try {
    bpf = nativeAddon().seccompCompile(profile, o.arch ?? '', (name) => unknown.push(name));
  } catch (e) {
    throw seccompError(e);
  }
  return planSeccomp(sc, o, flags, notify, bpf, unknown);
}

/**
 * compileSeccomp with libseccomp's work on libuv's thread pool, so that the event loop of a
 * process driving many containers (the shim) is not held while a large profile compiles.
 */
export async function compileSeccompAsync(sc: LinuxSeccomp, opts: CompileOptions): Promise<PlanSeccomp> {
  const { profile, flags, notify } = validateSeccomp(sc);
  let built: { bpf: Buffer; unknown: string[] };
  try {
    built = await nativeAddon().seccompCompileAsync(profile, opts.arch ?? '');
  } catch (e) {
    throw seccompError(e);
  }
  return planSeccomp(sc, opts, flags, notify, built.bpf, built.unknown);
}
