/**
 * Capability names ↔ numbers (linux/capability.h). Like runc, names the kernel does not know (or
 * that this table does not know) are skipped with one warning instead of failing the container:
 * a config written for a newer kernel still runs, with the capability absent.
 */
import * as fs from 'node:fs';

export const CAPABILITY_NAMES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER',
  'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

const BY_NAME: ReadonlyMap<string, number> = new Map(CAPABILITY_NAMES.map((n, i) => [n, i]));

/** The number of a capability name (exact, upper case, CAP_ prefix as in the spec), or undefined. */
export function capabilityNumber(name: string): number | undefined {
  return BY_NAME.get(name);
}

let lastCapCache: number | undefined;
/** /proc/sys/kernel/cap_last_cap: capabilities above it do not exist on this kernel. */
export function lastCap(): number {
  if (lastCapCache === undefined) {
    try {
      lastCapCache = Number(fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
    } catch {
      lastCapCache = CAPABILITY_NAMES.length - 1;
    }
  }
  return lastCapCache;
}

/**
 * Names → numbers, in order, duplicates removed. Unknown names, and names of capabilities above
 * `last` (cap_last_cap), go to `unknown` so the caller can warn once for all sets, as runc does
 * ("ignoring unknown or unavailable capabilities: [...]").
 */
export function capabilityNumbers(names: readonly string[] | undefined, unknown: Set<string>, last = lastCap()): number[] {
  const out: number[] = [];
  for (const name of names ?? []) {
    const n = BY_NAME.get(name);
    if (n === undefined || n > last) {
      unknown.add(name);
      continue;
    }
    if (!out.includes(n)) out.push(n);
  }
  return out;
}
