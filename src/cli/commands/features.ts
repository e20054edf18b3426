import type { CommandModule } from 'yargs';
import { action, writeStdout, type GlobalArgs } from '../context';

const command: CommandModule<any, any> = {
  command: 'features',
  describe: 'print the runtime-spec features document: what this tsrun supports',
  builder: (y) => y,
  handler: action<GlobalArgs>(async () => {
    const { featuresDocument } = await import('../../container/features');
    writeStdout(JSON.stringify(featuresDocument(), null, '    ') + '\n');
  }),
};
export default command;
