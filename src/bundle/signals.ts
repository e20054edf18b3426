/**
 * Signal names ↔ numbers for Linux on x86_64 and arm64 (both use the generic numbering), so that
 * `kill` accepts what runc accepts: `KILL`, `SIGKILL`, `kill`, `9`, plus the real-time signals
 * as `RTMIN+n` / `RTMAX-n`. Node's os.constants.signals is not used: it lacks the RT signals and
 * its absence of a name would otherwise be silently a different behaviour from runc's.
 */
import type { ErrorKind } from '../container/errors';

export const SIGNALS: Readonly<Record<string, number>> = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGIOT: 6, SIGBUS: 7,
  SIGFPE: 8, SIGKILL: 9, SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14,
  SIGTERM: 15, SIGSTKFLT: 16, SIGCHLD: 17, SIGCLD: 17, SIGCONT: 18, SIGSTOP: 19, SIGTSTP: 20,
  SIGTTIN: 21, SIGTTOU: 22, SIGURG: 23, SIGXCPU: 24, SIGXFSZ: 25, SIGVTALRM: 26, SIGPROF: 27,
  SIGWINCH: 28, SIGIO: 29, SIGPOLL: 29, SIGPWR: 30, SIGSYS: 31,
};

/** glibc reserves 32 and 33 for itself; SIGRTMIN as user space sees it is 34. */
export const SIGRTMIN = 34;
export const SIGRTMAX = 64;

export class SignalError extends Error {
  readonly kind: ErrorKind = 'InvalidArgument';
}

/**
 * Parses a signal as runc's kill does: a decimal number, or a name with or without the SIG
 * prefix, in any case. Throws `invalid signal: X` for anything else.
 */
export function parseSignal(s: string): number {
  const raw = String(s).trim();
  const bad = () => new SignalError(`invalid signal: ${s}`);
  if (/^\d+$/.test(raw)) {
    const n = Number(raw);
    // 0 is kill(2)'s "is it alive" probe, which runc passes through as well.
    if (n > SIGRTMAX) throw bad();
    return n;
  }
  let name = raw.toUpperCase();
  if (!name.startsWith('SIG')) name = `SIG${name}`;
  const known = SIGNALS[name];
  if (known !== undefined) return known;
  const rt = /^SIGRT(MIN|MAX)(?:([+-])(\d+))?$/.exec(name);
  if (rt) {
    const base = rt[1] === 'MIN' ? SIGRTMIN : SIGRTMAX;
    const off = rt[3] === undefined ? 0 : Number(rt[3]) * (rt[2] === '+' ? 1 : -1);
    const n = base + off;
    if (n >= SIGRTMIN && n <= SIGRTMAX) return n;
  }
  throw bad();
}

/** The canonical name of a signal number (`SIGKILL`, `SIGRTMIN+3`), or undefined. */
export function signalName(n: number): string | undefined {
  for (const [name, num] of Object.entries(SIGNALS)) if (num === n) return name;
  if (n === SIGRTMIN) return 'SIGRTMIN';
  if (n === SIGRTMAX) return 'SIGRTMAX';
  if (n > SIGRTMIN && n < SIGRTMAX) return `SIGRTMIN+${n - SIGRTMIN}`;
  return undefined;
}
