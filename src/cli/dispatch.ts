/**
 * Which command runs, with which argv: the command table, yargs' full configuration (help,
 * errors, anything unusual), and the fast path (argv.ts) over the whole table.
 */
import type { Argv } from 'yargs';
import { type Command, commandDef, commandIndex, commandNames, fastArgv as fastArgvOf, type FastParse, GLOBAL_OPTIONS } from './argv';
import createCmd from './commands/create';
import deleteCmd from './commands/delete';
import eventsCmd from './commands/events';
import execCmd from './commands/exec';
import featuresCmd from './commands/features';
import killCmd from './commands/kill';
import listCmd from './commands/list';
import { pauseCmd, resumeCmd } from './commands/pause';
import psCmd from './commands/ps';
import runCmd from './commands/run';
import specCmd from './commands/spec';
import startCmd from './commands/start';
import stateCmd from './commands/state';
import updateCmd from './commands/update';

export { commandNames, commandWord, GLOBAL_OPTIONS } from './argv';

/** In yargs' registration order (the order of `--help`). */
export const COMMANDS: Command[] = [createCmd, startCmd, runCmd, stateCmd, listCmd, killCmd, deleteCmd, specCmd, execCmd, psCmd, featuresCmd, pauseCmd, resumeCmd, updateCmd, eventsCmd];

/** yargs reads a lone "-" as a positional; runc (and containerd) pass `--resources -` for stdin. */
export function joinDashValues(args: string[]): string[] {
  // Only `update` has such an option; an exec'd command line must stay as it is.
  if (!args.includes('update') || args.includes('exec')) return args;
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if ((args[i] === '--resources' || args[i] === '-r') && args[i + 1] === '-') {
      out.push('--resources=-');
      i++;
    } else out.push(args[i]);
  }
  return out;
}

/** The commands whose words after the container id are not tsrun's: exec's command, ps's arguments for ps(1). */
const PROTECTED = new Set([execCmd, psCmd]);

/**
 * The command line yargs (or the fast path) parses: exec's and ps's trailing words kept whole.
 * runc stops reading flags at their container id (SkipArgReorder), so everything after it
 * belongs to the command or to ps(1), dashes included (`exec ID sh -c …`, `ps ID -ef`); a `--`
 * after the id keeps yargs off them. The options that take a value, whose value is never the id,
 * are the command's and the global ones as the builders define them (commandDef).
 */
export function protectArgs(word: string | undefined, args: string[]): string[] {
  const c = word === undefined ? undefined : COMMANDS.find((x) => commandNames(x).includes(word));
  if (!c || !PROTECTED.has(c)) return args;
  const def = commandDef(c);
  if (!def) throw new Error(`tsrun: the options of ${word} cannot be read from its builder`);
  for (let i = commandIndex(args) + 1; i < args.length; i++) {
    const a = args[i];
    if (a === '--') return args;
    if (a.startsWith('-')) {
      const o = def.byFlag.get(a);
      if (o && o.type !== 'boolean') i++;
      continue;
    }
    return [...args.slice(0, i + 1), '--', ...args.slice(i + 1)];
  }
  return args;
}

/**
 * The full yargs parser, exactly as tsrun has always configured it. `commands` may replace the
 * table (tests wrap the handlers).
 */
export async function yargsParser(args: string[], commands: Command[] = COMMANDS): Promise<Argv> {
  // Loaded only when a command line needs it: the common calls never evaluate yargs.
  const { default: yargs } = (await import('yargs/yargs')) as unknown as { default: (args: string[]) => Argv };
  let parser = yargs(args)
    .scriptName('tsrun')
    .usage('tsrun [global options] <command> [command options] <container-id> ...\n\nA runc-compatible OCI container runtime.');
  for (const [name, opts] of GLOBAL_OPTIONS) parser = parser.option(name, opts);
  for (const c of commands) parser = parser.command(c);
  return (
    parser
      // runc's flags --no-pivot, --no-new-keyring, --no-new-privs are options of their own, not
      // negations of --pivot and friends.
      // Repeatable flags (-e, -g, --cap) take one value each time, as runc's do.
      .parserConfiguration({ 'boolean-negation': false, 'populate--': true, 'greedy-arrays': false })
      .demandCommand(1, 'a command is required (see --help)')
      .strict()
      .version(false)
      .help('help')
      .alias('help', 'h')
      .wrap(Math.min(110, process.stdout.columns || 100))
      .fail((msg, err) => {
        process.stderr.write(`${msg ?? err?.message}\n`);
        process.exit(1);
      })
  );
}

/** argv.ts's fast path over the whole command table (or `commands`). */
export function fastArgv(args: string[], commands: Command[] = COMMANDS): FastParse | null {
  return fastArgvOf(args, commands);
}
