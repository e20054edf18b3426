import type { Argv, CommandModule } from 'yargs';
import type { RuntimeContext } from '../../container/context';
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
  cgroup: string[];
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
      .option('ignore-paused', { type: 'boolean', default: false, describe: 'allow exec in a paused container' })
      .option('cgroup', { type: 'string', array: true, default: [], describe: 'run in an existing sub-cgroup: [<controller>[,<controller>]:]<path> (repeatable)' }) as unknown as Argv<ExecArgs>,
  handler: action<ExecArgs>(async (argv, ctx) => {
    try {
      return await execCommand(argv, ctx);
    } catch (e) {
      // runc: every exec failure before the process runs exits 255 (fatalWithCode(err, 255)),
      // whatever it was — an unknown or paused container, a bad flag, a pid file it cannot write.
      if (e && typeof e === 'object') (e as { exitCode?: number }).exitCode = 255;
      throw e;
    }
  }),
};

async function execCommand(argv: ExecArgs, ctx: RuntimeContext): Promise<number> {
  const { processFromFlags } = await import('../../container/exec');
  const { execProcess } = await import('../foreground');
  const { loadContainer } = await import('../../container/state');
  let proc;
  if (argv.process) {
    const { loadProcessFile } = await import('../../bundle/load');
    proc = loadProcessFile(argv.process);
  } else {
    // runc's default: the container's own process, with what the flags change.
    const saved = loadContainer(argv.root, argv.id);
    proc = processFromFlags(saved.config.process!, {
      // protectArgs (dispatch.ts) put the command after `--`, where yargs leaves it untouched.
      args: [...(argv.command ?? []), ...((argv as unknown as { '--'?: string[] })['--'] ?? [])].map(String),
      tty: argv.tty,
      cwd: argv.cwd,
      env: argv.env,
      user: argv.user,
      additionalGids: argv['additional-gids'],
      noNewPrivs: argv['no-new-privs'],
      apparmor: argv.apparmor,
      processLabel: argv['process-label'],
      cap: argv.cap,
    });
  }
  // Either way execProcess fills what the process leaves out from the container's
  // (capabilities, no_new_privs, rlimits, labels, oom_score_adj), as runc does.
  return execProcess(ctx, {
    id: argv.id,
    process: proc,
    consoleSocket: argv['console-socket'],
    detach: argv.detach,
    pidFile: argv['pid-file'],
    preserveFds: argv['preserve-fds'],
    ignorePaused: argv['ignore-paused'],
    cgroup: argv.cgroup,
  });
}
export default command;
