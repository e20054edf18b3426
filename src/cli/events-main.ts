/**
 * The CLI's entry for `tsrun events`: the same command module, options and handler as in the
 * whole CLI (main.ts), parsed by the same fast path (argv.ts), in a bundle of its own
 * (dist/cli/events.js) that holds only what events runs. `events --stats` is called once per
 * container and poll by monitoring agents, and main.js's start (every command's definition, the
 * dispatch tables) was a fifth of its time (README, "Benchmarks").
 *
 * Anything this entry does not take as a plain `events` command line — another command, -v,
 * --help, an unknown or repeated option — runs the whole CLI instead (globalThis.__tsrunMain,
 * set by the executable's entry, scripts/build.mjs), which then answers as it always did.
 */
import { commandWord, fastArgv } from './argv';
import eventsCmd from './commands/events';
import { writeStderr } from './context';
import { mark, startTrace, tracing } from './trace';

async function eventsMain(args: string[]): Promise<void> {
  mark('main');
  // Only events' options are known here: -v/--version, -h and anything unusual come back null
  // and are main.ts's to answer.
  const fast = commandWord(args) === 'events' ? fastArgv(args, [eventsCmd]) : null;
  if (!fast) {
    // Before any trace is set up: the whole CLI has its own (its own copy of trace.ts).
    const wholeCli = (globalThis as { __tsrunMain?: () => void }).__tsrunMain;
    if (!wholeCli) throw new Error('tsrun: events entry without the whole CLI to hand over to');
    wholeCli();
    return;
  }
  if (tracing) await startTrace();
  // What test/exec-ps.test.ts tells this entry's calls by.
  mark('events entry');
  mark('parsed');
  await fast.handler(fast.argv);
}

eventsMain(process.argv.slice(2)).catch((e) => {
  writeStderr(`${(e as Error).message}\n`);
  process.exitCode = 1;
});
