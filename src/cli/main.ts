/**
 * tsrun's command line: runc's commands, flags and output formats, so that containerd (go-runc),
 * dockerd (--add-runtime) and people used to runc can drive it unchanged.
 *
 * Start-up is most of a CLI call's time, so nothing runs here that the command does not need:
 * the ordinary command lines are parsed by dispatch.ts's fast path (yargs is loaded only for
 * help, errors and unusual spellings), and each command's code is loaded by its handler.
 */
import { writeStderr, writeStdout } from './context';
import { COMMANDS, commandNames, commandWord, fastArgv, joinDashValues, protectArgs, yargsParser } from './dispatch';
import { mark, startTrace, tracing } from './trace';

declare const __TSRUN_VERSION__: string;
declare const __TSRUN_COMMIT__: string;
const VERSION = typeof __TSRUN_VERSION__ === 'string' ? __TSRUN_VERSION__ : '0.0.0-dev';
const COMMIT = typeof __TSRUN_COMMIT__ === 'string' ? __TSRUN_COMMIT__ : 'unknown';
export const SPEC_VERSION = '1.2.0';

function versionText(): string {
  return `tsrun version ${VERSION}\ncommit: ${COMMIT}\nspec: ${SPEC_VERSION}`;
}

export async function main(rawArgs: string[]): Promise<void> {
  mark('main');
  if (tracing) await startTrace();
  const args = joinDashValues(rawArgs);
  // An unknown command is an error even with -h (yargs would print the general help and exit 0).
  const word = commandWord(args);
  if (word !== undefined && !COMMANDS.some((c) => commandNames(c)[0] === word)) {
    writeStderr(`unknown command ${JSON.stringify(word)} (see tsrun --help)\n`);
    process.exitCode = 1;
    return;
  }
  // runc prints its version with -v/--version and exits, whatever else is on the line.
  if (args.includes('-v') || args.includes('--version')) {
    writeStdout(versionText() + '\n');
    return;
  }
  const protectedArgs = protectArgs(word, args);
  const fast = fastArgv(protectedArgs);
  mark('parsed');
  if (fast) {
    await fast.handler(fast.argv);
    return;
  }
  const parser = await yargsParser(protectedArgs);
  mark('yargs loaded');
  await parser.parseAsync();
}

main(process.argv.slice(2)).catch((e) => {
  writeStderr(`${(e as Error).message}\n`);
  process.exitCode = 1;
});
