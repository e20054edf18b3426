import type { CommandModule } from 'yargs';
import { action, type GlobalArgs } from '../context';

interface DeleteArgs extends GlobalArgs {
  id: string;
  force: boolean;
}

const command: CommandModule<any, any> = {
  command: 'delete <id>',
  describe: 'delete a created or stopped container (with -f also a running one)',
  builder: (y) =>
    y
      .positional('id', { type: 'string', demandOption: true })
      .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'kill the container first if it is running' }),
  handler: action<DeleteArgs>(async (argv, ctx) => {
    const { deleteContainer } = await import('../../container/delete');
    await deleteContainer(ctx, argv.id, argv.force);
  }),
};
export default command;
