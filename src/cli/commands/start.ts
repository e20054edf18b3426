import type { CommandModule } from 'yargs';
import { action, type GlobalArgs } from '../context';

interface IdArgs extends GlobalArgs {
  id: string;
}

const command: CommandModule<any, any> = {
  command: 'start <id>',
  describe: 'start a created container: its init execs the user process',
  builder: (y) => y.positional('id', { type: 'string', demandOption: true }),
  handler: action<IdArgs>(async (argv, ctx) => {
    const { startContainer } = await import('../../container/start');
    await startContainer(ctx, argv.id);
  }),
};
export default command;
