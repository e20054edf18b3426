import type { CommandModule } from 'yargs';
import { action, type GlobalArgs } from '../context';

interface KillArgs extends GlobalArgs {
  id: string;
  signal: string;
  all: boolean;
}

const command: CommandModule<any, any> = {
  command: 'kill <id> [signal]',
  describe: 'send a signal (name with or without SIG, or number; default SIGTERM) to the container init',
  builder: (y) =>
    y
      .positional('id', { type: 'string', demandOption: true })
      .positional('signal', { type: 'string', default: 'SIGTERM' })
      .option('all', { alias: 'a', type: 'boolean', default: false, describe: 'send the signal to every process of the container' }),
  handler: action<KillArgs>(async (argv, ctx) => {
    const { parseSignal } = await import('../../bundle/signals');
    const { killContainer } = await import('../../container/kill');
    await killContainer(ctx, argv.id, parseSignal(String(argv.signal)), argv.all);
  }),
};
export default command;
