import type { Argv, CommandModule } from 'yargs';
import { action, type GlobalArgs } from '../context';

interface ExecArgs extends GlobalArgs {
  id: string;
  command: string[];
  process?: string;
  'console-socket'?: string;
  cwd?: string;
  env: string[];
  tty: boolean;
  user?: string;
  'additional-gids': number[];
  detach: boolean;
  'pid-file'?: string;
  'process-label'?: string;
  apparmor?: string;
  'no-new-privs': boolean;
  cap: string[];
  'preserve-fds': number;
  'ignore-paused': boolean;
}

/**
 * Options of exec that take a value: runc stops parsing flags at the container id (its exec has
 * SkipArgReorder), so everything after the id is the command, even `-c` or `--help`.
 */
const VALUE_OPTIONS = new Set([
  '--root', '--log', '--log-format', '--rootless',
  '--process', '-p', '--console-socket', '--cwd', '--env', '-e', '--user', '-u', '--additional-gids', '-g',
  '--pid-file', '--process-label', '--apparmor', '--cap', '-c', '--preserve-fds',
]);

/** Puts `--` after the container id of an exec command line so that yargs leaves the command alone. */
export function protectExecCommand(args: string[]): string[] {
  const at = args.indexOf('exec');
  if (at < 0) return args;
  for (let i = 0; i < at; i++) if (!args[i].startsWith('-') && !VALUE_OPTIONS.has(args[i - 1])) return args; // not the command
  for (let i = at + 1; i < args.length; i++) {
    const a = args[i];
    if (a === '--') return args;
    if (a.startsWith('-')) {
      if (VALUE_OPTIONS.has(a)) i++;
      continue;
    }
    return [...args.slice(0, i + 1), '--', ...args.slice(i + 1)];
  }
  return args;
}

const command: CommandModule<any, any> = {
  command: 'exec <id> [command..]',
  describe: 'run a new process inside a running container',
  builder: (y) =>
    y
      .positional('id', { type: 'string', demandOption: true })
      .positional('command', { type: 'string', array: true, default: [] })
      .option('process', { alias: 'p', type: 'string', describe: 'a runtime-spec Process JSON file (other process flags are ignored)' })
      .option('console-socket', { type: 'string', describe: 'unix socket that receives the pty master' })
      .option('cwd', { type: 'string', describe: 'working directory in the container' })
      .option('env', { alias: 'e', type: 'string', array: true, default: [], describe: 'set an environment variable (KEY=VALUE)' })
      .option('tty', { alias: 't', type: 'boolean', default: false, describe: 'allocate a pseudo-TTY' })
      .option('user', { alias: 'u', type: 'string', describe: 'uid[:gid]' })
      .option('additional-gids', { alias: 'g', type: 'number', array: true, default: [], describe: 'additional gids' })
      .option('detach', { alias: 'd', type: 'boolean', default: false, describe: 'do not wait for the process' })
      .option('pid-file', { type: 'string', describe: 'write the process pid (decimal, no newline) to this file' })
      .option('process-label', { type: 'string', describe: 'SELinux label of the process' })
      .option('apparmor', { type: 'string', describe: 'AppArmor profile of the process' })
      .option('no-new-privs', { type: 'boolean', default: false, describe: 'set no_new_privs' })
      .option('cap', { alias: 'c', type: 'string', array: true, default: [], describe: 'add a capability' })
      .option('preserve-fds', { type: 'number', default: 0, describe: 'pass N extra fds to the process' })
      .option('ignore-paused', { type: 'boolean', default: false, describe: 'allow exec in a paused container' }) as unknown as Argv<ExecArgs>,
  handler: action<ExecArgs>(async (argv, ctx) => {
    const { execProcess } = await import('../../container/exec');
    const { loadContainer } = await import('../../container/lifecycle');
    const { RuntimeError } = await import('../../container/errors');
    let proc;
    if (argv.process) {
      const { loadProcessFile } = await import('../../spec/load');
      proc = loadProcessFile(argv.process);
    } else {
      // runc's default: the container's own process, with what the flags change.
      const saved = loadContainer(argv.root, argv.id);
      const base = saved.config.process!;
      // protectExecCommand put the command after `--`, where yargs leaves it untouched.
      const args = [...(argv.command ?? []), ...((argv as unknown as { '--'?: string[] })['--'] ?? [])].map(String);
      if (args.length === 0) throw new RuntimeError('exec args cannot be empty');
      proc = structuredClone(base);
      proc.args = args;
      proc.terminal = argv.tty;
      if (argv.cwd) proc.cwd = argv.cwd;
      proc.env = [...(base.env ?? []), ...argv.env];
      if (argv.user) {
        const [u, g] = argv.user.split(':');
        if (!/^\d+$/.test(u) || (g !== undefined && !/^\d+$/.test(g))) throw new RuntimeError(`invalid --user ${argv.user}: only numeric uid[:gid] is supported`);
        proc.user = { ...proc.user, uid: Number(u), gid: g !== undefined ? Number(g) : proc.user?.gid ?? 0 };
      }
      if (argv['additional-gids'].length) proc.user = { ...proc.user!, additionalGids: argv['additional-gids'] };
      if (argv['no-new-privs']) proc.noNewPrivileges = true;
      if (argv.apparmor) proc.apparmorProfile = argv.apparmor;
      if (argv['process-label']) proc.selinuxLabel = argv['process-label'];
      if (argv.cap.length) {
        const caps = proc.capabilities ?? {};
        // runc adds --cap to bounding, effective and permitted (never inheritable: CVE-2022-29162),
        // and to ambient only when the base process already has ambient capabilities.
        for (const set of ['bounding', 'effective', 'permitted'] as const) caps[set] = [...new Set([...(caps[set] ?? []), ...argv.cap])];
        if (caps.ambient?.length) caps.ambient = [...new Set([...caps.ambient, ...argv.cap])];
        proc.capabilities = caps;
      }
    }
    return execProcess(ctx, {
      id: argv.id,
      process: proc,
      consoleSocket: argv['console-socket'],
      detach: argv.detach,
      pidFile: argv['pid-file'],
      preserveFds: argv['preserve-fds'],
      ignorePaused: argv['ignore-paused'],
    });
  }),
};
export default command;
