import type { CommandModule } from 'yargs';
import { action, writeStdout, type GlobalArgs } from '../context';

interface IdArgs extends GlobalArgs {
  id: string;
}

const command: CommandModule<any, any> = {
  command: 'state <id>',
  describe: 'print the OCI state of a container as JSON',
  builder: (y) => y.positional('id', { type: 'string', demandOption: true }),
  handler: action<IdArgs>(async (argv, ctx) => {
    const { containerState } = await import('../../container/state');
    // runc prints the state indented with two spaces.
    writeStdout(JSON.stringify(containerState(ctx, argv.id), null, 2) + '\n');
  }),
};
export default command;
