import type { RuntimeContext } from '../container/context';
import { CliLogger } from './log';

export interface GlobalArgs {
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
  if (argv.rootless && argv.rootless !== 'false' && argv.rootless !== 'auto') {
    throw new Error('--rootless: rootless containers are not supported yet');
  }
  return { root: argv.root, log: cliLogger(argv), systemdCgroup: !!argv['systemd-cgroup'] };
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
      process.stderr.write(msg + '\n');
      code = (e as { exitCode?: number }).exitCode ?? 1;
    }
    process.exitCode = code;
  };
}
