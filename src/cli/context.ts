import * as fs from 'node:fs';
import type { RuntimeContext } from '../container/context';
import { defaultStateRoot, parseRootlessFlag, rootlessCgroups } from '../container/rootless';
import { CliLogger } from './log';
import { mark } from './trace';

export interface GlobalArgs {
  /** Absent: runc's default (/run/tsrun, or $XDG_RUNTIME_DIR/tsrun when rootless); set by runtimeContext. */
  root: string;
  log?: string;
  'log-format': 'text' | 'json';
  debug: boolean;
  'systemd-cgroup': boolean;
  rootless?: string;
}

let logger: CliLogger | null = null;

export function cliLogger(argv: GlobalArgs): CliLogger {
  if (!logger) logger = new CliLogger(argv.log, argv['log-format'] ?? 'text', !!argv.debug);
  return logger;
}

export function runtimeContext(argv: GlobalArgs): RuntimeContext {
  const flag = parseRootlessFlag(argv.rootless);
  // runc's rule: no --root and rootless (euid != 0) with $XDG_RUNTIME_DIR: state goes there.
  if (argv.root === undefined || argv.root === '') argv.root = defaultStateRoot();
  return { root: argv.root, log: cliLogger(argv), systemdCgroup: !!argv['systemd-cgroup'], rootlessCgroups: rootlessCgroups(flag) };
}

/**
 * Runs a command body: an exception becomes runc's one-line error (stderr, and the log file when
 * there is one) and exit status 1 (or the error's own status).
 */
export function action<A extends GlobalArgs>(body: (argv: A, ctx: RuntimeContext) => Promise<number | void> | number | void) {
  // yargs hands over an untyped argv; the command's builder defines its real shape (A).
  return async (raw: unknown): Promise<void> => {
    const argv = raw as A;
    let code = 0;
    // runc's --debug: debug-level records (to --log, or stderr) for every command, exec included.
    const command = String((raw as { _?: unknown[] })._?.[0] ?? '');
    const debug = (m: string) => cliLogger(argv).debug(`${command}: ${m}`);
    mark('action');
    try {
      const ctx = runtimeContext(argv);
      debug(`root ${argv.root}, args ${JSON.stringify(process.argv.slice(2))}`);
      const r = await body(argv, ctx);
      code = typeof r === 'number' ? r : 0;
      debug(`done, exit status ${code}`);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      const log = cliLogger(argv);
      // One plain line on stderr for people and scripts; the log file (containerd reads its last
      // error record) gets the formatted record too.
      if (log.toFile) log.error(msg);
      writeStderr(msg + '\n');
      code = (e as { exitCode?: number }).exitCode ?? 1;
    }
    mark('action end');
    process.exitCode = code;
  };
}

/**
 * Output on fd 1 (2) as process.stdout.write (stderr) gives it: synchronous for files, pipes and
 * terminals on Linux; without setting up process.stdout, whose stream costs ~5 ms to load (20 ms
 * on Bun). Anything unusual (EAGAIN on a non-blocking pipe, EPIPE…) goes to the stream, and so
 * does everything after it on that fd: a later direct write must not overtake what the stream
 * still buffers (events streams lines for as long as the container runs).
 */
const viaStream = new Set<number>();
function writeFd(fd: 1 | 2, text: string): void {
  const stream = () => (fd === 1 ? process.stdout : process.stderr);
  if (viaStream.has(fd)) {
    stream().write(text);
    return;
  }
  const buf = Buffer.from(text);
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off);
    } catch {
      viaStream.add(fd);
      stream().write(buf.subarray(off));
      return;
    }
  }
}

export const writeStdout = (text: string): void => writeFd(1, text);
export const writeStderr = (text: string): void => writeFd(2, text);
