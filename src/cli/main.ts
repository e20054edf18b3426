/**
 * tsrun's command line: runc's commands, flags and output formats, so that containerd (go-runc),
 * dockerd (--add-runtime) and people used to runc can drive it unchanged.
 */
import type { Argv } from 'yargs';
import createCmd from './commands/create';
import deleteCmd from './commands/delete';
import execCmd, { protectExecCommand } from './commands/exec';
import featuresCmd from './commands/features';
import killCmd from './commands/kill';
import eventsCmd from './commands/events';
import listCmd from './commands/list';
import { pauseCmd, resumeCmd } from './commands/pause';
import psCmd, { protectPsArgs } from './commands/ps';
import runCmd from './commands/run';
import startCmd from './commands/start';
import specCmd from './commands/spec';
import stateCmd from './commands/state';
import updateCmd from './commands/update';

declare const __TSRUN_VERSION__: string;
declare const __TSRUN_COMMIT__: string;
const VERSION = typeof __TSRUN_VERSION__ === 'string' ? __TSRUN_VERSION__ : '0.0.0-dev';
const COMMIT = typeof __TSRUN_COMMIT__ === 'string' ? __TSRUN_COMMIT__ : 'unknown';
export const SPEC_VERSION = '1.2.0';

function versionText(): string {
  return `tsrun version ${VERSION}\ncommit: ${COMMIT}\nspec: ${SPEC_VERSION}`;
}

/** yargs reads a lone "-" as a positional; runc (and containerd) pass `--resources -` for stdin. */
function joinDashValues(args: string[]): string[] {
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

const COMMANDS = [createCmd, startCmd, runCmd, stateCmd, listCmd, killCmd, deleteCmd, specCmd, execCmd, psCmd, featuresCmd, pauseCmd, resumeCmd, updateCmd, eventsCmd];
const GLOBAL_VALUE_OPTIONS = new Set(['--root', '--log', '--log-format', '--rootless']);

/** The first word that is not a global option (or its value): the command, if any. */
function commandWord(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') return args[i + 1];
    if (a.startsWith('-')) {
      if (GLOBAL_VALUE_OPTIONS.has(a)) i++;
      continue;
    }
    return a;
  }
  return undefined;
}

export async function main(rawArgs: string[]): Promise<void> {
  const args = joinDashValues(rawArgs);
  // An unknown command is an error even with -h (yargs would print the general help and exit 0).
  const word = commandWord(args);
  const known = COMMANDS.map((c) => String(c.command).split(' ')[0]);
  if (word !== undefined && !known.includes(word)) {
    process.stderr.write(`unknown command ${JSON.stringify(word)} (see tsrun --help)\n`);
    process.exitCode = 1;
    return;
  }
  // runc prints its version with -v/--version and exits, whatever else is on the line.
  if (args.includes('-v') || args.includes('--version')) {
    process.stdout.write(versionText() + '\n');
    return;
  }
  // yargs is required only now: `--version` (and every start) does not pay for evaluating it first.
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const yargs = require('yargs/yargs') as (args: string[]) => Argv;
  const parser = yargs(word === 'ps' ? protectPsArgs(args) : protectExecCommand(args))
    .scriptName('tsrun')
    .usage('tsrun [global options] <command> [command options] <container-id> ...\n\nA runc-compatible OCI container runtime.')
    .option('root', { type: 'string', default: '/run/tsrun', describe: 'directory for container state (tmpfs recommended)', global: true })
    .option('log', { type: 'string', describe: 'append log records to this file (default: stderr)', global: true })
    .option('log-format', { choices: ['text', 'json'] as const, default: 'text' as const, describe: 'format of the log records', global: true })
    .option('debug', { type: 'boolean', default: false, describe: 'log debug records', global: true })
    .option('systemd-cgroup', { type: 'boolean', default: false, describe: 'use the systemd cgroup driver (not supported yet)', global: true })
    .option('rootless', { type: 'string', describe: 'rootless mode: true|false|auto (only false/auto supported yet)', global: true })
    .command(createCmd)
    .command(startCmd)
    .command(runCmd)
    .command(stateCmd)
    .command(listCmd)
    .command(killCmd)
    .command(deleteCmd)
    .command(specCmd)
    .command(execCmd)
    .command(psCmd)
    .command(featuresCmd)
    .command(pauseCmd)
    .command(resumeCmd)
    .command(updateCmd)
    .command(eventsCmd)
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
    });
  await parser.parseAsync();
}

main(process.argv.slice(2)).catch((e) => {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exitCode = 1;
});
