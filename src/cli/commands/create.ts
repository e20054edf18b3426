import type { Argv, CommandModule } from 'yargs';
import { action, type GlobalArgs } from '../context';

export interface CreateArgs extends GlobalArgs {
  id: string;
  bundle: string;
  'pid-file'?: string;
  'console-socket'?: string;
  'no-pivot': boolean;
  'no-new-keyring': boolean;
  'preserve-fds': number;
}

/** The flags create and run share (runc's). */
export function createFlags<T>(y: Argv<T>) {
  return y
    .positional('id', { type: 'string', describe: 'container id (letters, digits, _ + . -)', demandOption: true })
    .option('bundle', { alias: 'b', type: 'string', default: '.', describe: 'path to the bundle directory (holds config.json)' })
    .option('pid-file', { type: 'string', describe: 'write the container init pid (decimal, no newline) to this file' })
    .option('console-socket', { type: 'string', describe: 'unix socket that receives the pty master (terminal: true)' })
    .option('no-pivot', { type: 'boolean', default: false, describe: 'use MS_MOVE + chroot instead of pivot_root (for ramfs roots)' })
    .option('no-new-keyring', { type: 'boolean', default: false, describe: 'do not create a new session keyring' })
    .option('preserve-fds', { type: 'number', default: 0, describe: 'pass N extra fds (after stdio and LISTEN_FDS) to the container' });
}

/**
 * What the shared flags mean for the container (run passes them on too): read in one place, so
 * that create and run cannot come to read them differently.
 */
export function createOptionsOf(argv: CreateArgs) {
  return {
    id: argv.id,
    bundle: argv.bundle,
    pidFile: argv['pid-file'],
    consoleSocket: argv['console-socket'],
    noPivot: argv['no-pivot'],
    noNewKeyring: argv['no-new-keyring'],
    preserveFds: argv['preserve-fds'],
  };
}

const command: CommandModule<any, any> = {
  command: 'create <id>',
  describe: 'create a container: set it up and leave its init waiting for `start`',
  builder: (y) => createFlags(y) as unknown as Argv<CreateArgs>,
  handler: action<CreateArgs>(async (argv, ctx) => {
    const { createContainer } = await import('../../container/create');
    const { passedFds } = await import('../foreground');
    const { preserveFds, ...opts } = createOptionsOf(argv);
    await createContainer(ctx, { ...opts, passFds: passedFds(preserveFds) });
  }),
};
export default command;
