import type { Argv, CommandModule } from 'yargs';
import { action } from '../context';
import { createFlags, createOptionsOf, type CreateArgs } from './create';

interface RunArgs extends CreateArgs {
  detach: boolean;
  keep: boolean;
}

const command: CommandModule<any, any> = {
  command: 'run <id>',
  describe: 'create and start a container; without -d, wait and exit with its status (128+signal if killed)',
  builder: (y) =>
    createFlags(y)
      .option('detach', { alias: 'd', type: 'boolean', default: false, describe: 'do not wait for the container to exit' })
      .option('keep', { type: 'boolean', default: false, describe: 'do not delete the container after it exits' }) as unknown as Argv<RunArgs>,
  handler: action<RunArgs>(async (argv, ctx) => {
    const { runContainer } = await import('../foreground');
    return runContainer(ctx, { ...createOptionsOf(argv), detach: argv.detach, keep: argv.keep });
  }),
};
export default command;
