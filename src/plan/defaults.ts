/**
 * What an absent privilege-related field means, in one table, and how an `exec` process gets the
 * fields it leaves out. Both follow runc 1.1: absent never means "keep what the runtime has"
 * (tsrun runs as root with every capability; whatever it does not set explicitly, the container
 * gets), it means the least the field can give — no capability, no extra group, no label — except
 * where runc itself leaves the runtime's value (rlimits, oom_score_adj, umask of an exec).
 *
 * The planner (src/plan/plan.ts planProcess and buildCreatePlan) reads every absent value from
 * here; src/container/exec.ts runs every exec process through execProcessSpec() first.
 */
import type { Capabilities, Process, Spec } from '../bundle/types';

/** How an exec process gets a field when it leaves it out (runc utils_linux.go newProcess, container_linux.go newInitConfig). */
export type ExecRule =
  /** The exec process's own value, or this table's default when it has none. */
  | 'own'
  /** The exec process's value when the field is present, else the container's. */
  | 'own-if-set'
  /** The exec process's value when non-empty ("" and [] count as absent), else the container's. */
  | 'own-if-non-empty'
  /** Always the container's: an exec cannot choose it (and a value it gives is ignored, with a warning). */
  | 'container';

export interface FieldRule {
  /** The value an absent field stands for (a template: copied before use). */
  absent: unknown;
  exec: ExecRule;
}

/**
 * Every privilege-related field, by JSON pointer in config.json (an exec process file has the
 * /process/... fields at its top level). In order: a parent before its members.
 */
export const PRIVILEGE_DEFAULTS = {
  // runc init_linux.go finalizeNamespace: `caps := &configs.Capabilities{}` — no object, no capabilities at all; exec: newInitConfig takes the process's, else the container's.
  '/process/capabilities': { absent: {}, exec: 'own-if-set' },
  // runc specconv copies each list as is; a nil list is an empty set (capabilities.New); exec: newProcess copies the process's lists, nil ones included.
  '/process/capabilities/bounding': { absent: [], exec: 'own' },
  // as bounding: absent is an empty effective set.
  '/process/capabilities/effective': { absent: [], exec: 'own' },
  // as bounding: absent is an empty permitted set.
  '/process/capabilities/permitted': { absent: [], exec: 'own' },
  // as bounding: absent is an empty inheritable set (CVE-2022-29162: never filled in behind the user's back).
  '/process/capabilities/inheritable': { absent: [], exec: 'own' },
  // as bounding: absent is an empty ambient set.
  '/process/capabilities/ambient': { absent: [], exec: 'own' },
  // Go bool zero value, prctl(PR_SET_NO_NEW_PRIVS) only when true; exec: newInitConfig `if process.NoNewPrivileges != nil` (runc 1.1's newProcess always sets it, so runc turns an absent field into false; tsrun keeps the container's).
  '/process/noNewPrivileges': { absent: false, exec: 'own-if-set' },
  // specs.User is a value, not a pointer: no user is uid 0; exec: newProcess `User: "%d:%d"` from the process alone.
  '/process/user/uid': { absent: 0, exec: 'own' },
  // as uid: gid 0.
  '/process/user/gid': { absent: 0, exec: 'own' },
  // runc setupUser: setgroups(addGroups) with the numeric "uid:gid" form, so none means an empty list (the runtime's groups are dropped).
  '/process/user/additionalGids': { absent: [], exec: 'own' },
  // runc rootfs_linux.go finalizeRootfs: unix.Umask(0o022) when config.Umask is nil (runc 1.1's exec keeps runc's own umask; tsrun gives 0022 there too).
  '/process/user/umask': { absent: 0o022, exec: 'own' },
  // runc setupRlimits applies only the listed ones, the others stay the runtime's; exec: newInitConfig `if len(process.Rlimits) > 0`, else the container's.
  '/process/rlimits': { absent: [], exec: 'own-if-non-empty' },
  // runc bootstrapData writes oom_score_adj only when set (else the runtime's stays); exec: always the container's config.OomScoreAdj (newProcess ignores the process's).
  '/process/oomScoreAdj': { absent: null, exec: 'container' },
  // runc apparmor.ApplyProfile("") does nothing (the runtime's profile stays); exec: newInitConfig `if process.AppArmorProfile != ""`, else the container's.
  '/process/apparmorProfile': { absent: '', exec: 'own-if-non-empty' },
  // runc selinux.SetExecLabel("") does nothing; exec: newInitConfig `if process.Label != ""`, else the container's.
  '/process/selinuxLabel': { absent: '', exec: 'own-if-non-empty' },
  // runc specconv: no Seccomp, no filter; exec: setns_init_linux.go loads the container's config.Seccomp, never one of its own.
  '/linux/seccomp': { absent: null, exec: 'container' },
  // runc specconv copies MaskedPaths as is: absent masks nothing (runc spec's example lists them; the runtime adds none); exec: the container's mounts.
  '/linux/maskedPaths': { absent: [], exec: 'container' },
  // as maskedPaths: absent makes nothing read-only.
  '/linux/readonlyPaths': { absent: [], exec: 'container' },
  // runc createDevices: absent is only the default nodes (null, zero, full, random, urandom, tty; plan.ts DEFAULT_DEVICES) and the /dev/ptmx symlink.
  '/linux/devices': { absent: [], exec: 'container' },
  // runc specconv creates only the listed namespaces: absent is the host's for every type; exec: joins every namespace of the container's init.
  '/linux/namespaces': { absent: [], exec: 'container' },
  // runc specconv: no mappings, no user namespace mapping (a new user namespace then fails validation); exec: the container's user namespace.
  '/linux/uidMappings': { absent: [], exec: 'container' },
  // as uidMappings.
  '/linux/gidMappings': { absent: [], exec: 'container' },
} as const satisfies Record<string, FieldRule>;

export type PrivilegeField = keyof typeof PRIVILEGE_DEFAULTS;

/** The pointer's reference tokens ("/process/user/uid" → ["process", "user", "uid"]). */
function tokens(pointer: string): string[] {
  return pointer.split('/').slice(1);
}

function getAt(obj: unknown, toks: readonly string[]): unknown {
  let cur: any = obj;
  for (const t of toks) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = cur[t];
  }
  return cur;
}

function setAt(obj: any, toks: readonly string[], value: unknown): void {
  let cur = obj;
  for (const t of toks.slice(0, -1)) {
    if (cur[t] === null || typeof cur[t] !== 'object') cur[t] = {};
    cur = cur[t];
  }
  const last = toks[toks.length - 1];
  if (value === undefined) delete cur[last];
  else cur[last] = value;
}

/** The field's value in `spec`, or a fresh copy of what its absence means. */
export function valueOrDefault<T = unknown>(spec: Spec, field: PrivilegeField): T {
  const v = getAt(spec, tokens(field));
  return structuredClone(v === undefined ? PRIVILEGE_DEFAULTS[field].absent : v) as T;
}

/** As valueOrDefault, for a process object alone (config.json's /process, or an exec process). */
export function processValueOrDefault<T = unknown>(proc: Process, field: PrivilegeField & `/process/${string}`): T {
  return valueOrDefault<T>({ ociVersion: '', process: proc }, field);
}

/** Every capability set of a process, absent ones (or an absent object) empty. */
export function capabilitySets(proc: Process): Required<Capabilities> {
  const caps = processValueOrDefault<Capabilities>(proc, '/process/capabilities');
  const set = (name: keyof Capabilities) =>
    processValueOrDefault<string[]>({ ...proc, capabilities: caps }, `/process/capabilities/${name}` as const);
  return { bounding: set('bounding'), effective: set('effective'), permitted: set('permitted'), inheritable: set('inheritable'), ambient: set('ambient') };
}

const isEmpty = (v: unknown) => v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0);

/**
 * The process an exec really runs: `exec` (a process file, or the container's process changed by
 * the exec flags) with what it leaves out taken from the container's process, field by field as
 * the table's exec rules say. Never mutates its arguments. Idempotent.
 */
export function execProcessSpec(exec: Process, container: Process | undefined, warn: (m: string) => void = () => {}): Process {
  const out = structuredClone(exec);
  const base = container ?? ({ cwd: '/' } as Process);
  for (const [field, rule] of Object.entries(PRIVILEGE_DEFAULTS) as [PrivilegeField, FieldRule][]) {
    if (!field.startsWith('/process/')) continue;
    const toks = tokens(field).slice(1);
    const own = getAt(out, toks);
    const theirs = getAt(base, toks);
    switch (rule.exec) {
      case 'own':
        break;
      case 'own-if-set':
        if (own === undefined) setAt(out, toks, structuredClone(theirs));
        break;
      case 'own-if-non-empty':
        if (isEmpty(own)) setAt(out, toks, structuredClone(theirs));
        break;
      case 'container':
        if (own !== undefined && JSON.stringify(own) !== JSON.stringify(theirs)) {
          warn(`exec: process ${field.slice('/process/'.length)} ${JSON.stringify(own)} ignored: an exec gets the container's (${theirs === undefined ? 'none' : JSON.stringify(theirs)}), as with runc`);
        }
        setAt(out, toks, structuredClone(theirs));
        break;
    }
  }
  return out;
}
