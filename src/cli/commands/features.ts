import type { CommandModule } from 'yargs';
import { action, type GlobalArgs } from '../context';

const command: CommandModule<any, any> = {
  command: 'features',
  describe: 'print the runtime-spec features document: what this tsrun supports',
  builder: (y) => y,
  handler: action<GlobalArgs>(async () => {
    const { featuresDocument } = await import('../../container/features');
    process.stdout.write(JSON.stringify(featuresDocument(), null, '    ') + '\n');
  }),
};
export default command;
