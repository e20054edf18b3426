import type { CommandModule } from 'yargs';
import { action, type GlobalArgs, writeStdout } from '../context';

interface EventsArgs extends GlobalArgs {
  id: string;
  interval: string;
  stats: boolean;
}

/** Go durations as runc's --interval takes them: 5s, 500ms, 1m. */
function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim());
  if (!m) throw new Error(`invalid --interval ${s}`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 's'];
}

const command: CommandModule<any, any> = {
  command: 'events <id>',
  describe: 'stream stats and OOM events of a container as JSON lines',
  builder: (y) =>
    y
      .positional('id', { type: 'string', demandOption: true })
      .option('interval', { type: 'string', default: '5s', describe: 'time between stats events' })
      .option('stats', { type: 'boolean', default: false, describe: 'print one stats event and exit' }),
  handler: action<EventsArgs>(async (argv, ctx) => {
    const { containerEvents } = await import('../../container/events');
    const write = (line: string) => writeStdout(line + '\n');
    await containerEvents(ctx, argv.id, { intervalMs: parseDuration(argv.interval), once: argv.stats, emit: write });
  }),
};
export default command;
