/**
 * The CLI's fast path (src/cli/argv.ts fastArgv, through dispatch.ts) against yargs: for every command line it
 * accepts, the handler it picks and the argv it builds are the ones yargs gives; the command lines
 * it must leave to yargs (help, errors, unusual spellings) are refused. No container runs here.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { CommandModule } from 'yargs';
import { COMMANDS, commandWord, fastArgv, joinDashValues, protectArgs, yargsParser } from '../src/cli/dispatch';

type Command = CommandModule<any, any>;

/** The commands with their handlers replaced: each records its name and the argv it got. */
let got: { command: string; argv: Record<string, unknown> } | null = null;
const wrapped: Command[] = COMMANDS.map((c) => ({ ...c, handler: (argv: Record<string, unknown>) => void (got = { command: String(c.command), argv }) }));
const names = new Map(wrapped.map((c) => [c.handler, String(c.command)]));

function prepare(line: string[]): string[] {
  const args = joinDashValues(line);
  return protectArgs(commandWord(args), args);
}

async function viaYargs(line: string[]): Promise<{ command: string; argv: Record<string, unknown> }> {
  got = null;
  const parser = (await yargsParser(prepare(line), wrapped)).fail((msg, err) => {
    throw err ?? new Error(msg);
  });
  await parser.parseAsync();
  if (!got) throw new Error(`yargs ran no command for ${line.join(' ')}`);
  return got;
}

/** Keys yargs leaves undefined are simply absent from the fast argv. */
const defined = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

const ACCEPTED: string[][] = [
  ['state', 'c1'],
  ['--root', '/run/x', 'state', 'c1'],
  ['--root=/run/x', 'state', 'c1'],
  ['state', '--root', '/run/x', 'c1'],
  ['--root', '/run/containerd/runc/k8s.io', '--log', '/run/x/log.json', '--log-format', 'json', 'state', 'c1'],
  ['--log-format=json', '--debug', '--systemd-cgroup', 'state', '123'],
  ['--rootless', 'false', 'state', 'c1'],
  ['--root', '123', 'state', '007'],
  ['--root=-', 'state', 'c1'],
  ['--rootless', 'auto', 'start', 'c1'],
  ['create', 'c1'],
  ['create', '--bundle', '/b', '--pid-file', '/b/pid', 'c1'],
  ['--root', '/r', '--log', '/l', '--log-format', 'json', 'create', '--bundle', '/b', '--pid-file', '/p', '--console-socket', '/s', '--no-pivot', '--no-new-keyring', 'c1'],
  ['create', '-b', '/b', '--preserve-fds', '2', 'c1'],
  ['create', '--bundle=/b', '--preserve-fds=0', 'c1'],
  ['create', '--pid-file=/p', '--console-socket=/s', 'c1'],
  ['create', 'c1', '--bundle', '/b'],
  ['run', '--bundle', '/b', 'c1'],
  ['run', '-d', '--keep', '-b', '/b', 'c1'],
  ['run', '--detach', '--bundle', '/b', 'c1'],
  ['start', 'c1'],
  ['delete', 'c1'],
  ['delete', '--force', 'c1'],
  ['delete', '-f', 'c1'],
  ['kill', 'c1'],
  ['kill', 'c1', 'KILL'],
  ['kill', 'c1', '9'],
  ['kill', '--all', 'c1', 'SIGTERM'],
  ['kill', '-a', 'c1'],
  ['list'],
  ['list', '-q'],
  ['list', '--format', 'json'],
  ['list', '-f', 'json'],
  ['list', '--format=table'],
  ['ps-all'],
  ['ps', 'c1'],
  ['ps', '--format', 'json', 'c1'],
  ['ps', '-f', 'json', 'c1'],
  ['ps', 'c1', '-ef'],
  ['ps', 'c1', 'aux', '-o', 'pid'],
  ['exec', 'c1', 'sh'],
  ['exec', 'c1', 'sh', '-c', 'echo hi --help'],
  ['exec', '--process', '/tmp/p.json', '--detach', '--pid-file', '/tmp/pid', 'c1'],
  ['--root', '/r', '--log', '/l', '--log-format', 'json', 'exec', '--process', '/p.json', '--detach', '--pid-file', '/pid', '--console-socket', '/s', 'c1'],
  ['exec', '-e', 'A=1', '-e', 'B=2', '--cwd', '/tmp', '-u', '1000:1000', 'c1', 'id'],
  ['exec', '-g', '1', '-g', '20', '--cap', 'CAP_KILL', '--cap', 'CAP_CHOWN', 'c1', 'id'],
  ['exec', '-t', '--no-new-privs', '--ignore-paused', '--preserve-fds', '1', 'c1', 'sh'],
  ['exec', '--cgroup', 'pids:/sub', 'c1', 'true'],
  ['exec', 'c1'],
  ['events', 'c1'],
  ['events', '--stats', 'c1'],
  ['events', '--interval', '1s', 'c1'],
  ['pause', 'c1'],
  ['resume', 'c1'],
  ['features'],
  ['spec'],
  ['spec', '--bundle', '/b'],
  ['--rootless', 'true', 'spec', '-b', '/b'],
  ['update', '--resources', '-', 'c1'],
  ['update', '-r', '-', 'c1'],
  ['update', '--resources', '/r.json', 'c1'],
  ['update', '--memory', '1m', '--pids-limit', '10', '--cpu-shares', '2', 'c1'],
  ['update', '--cpuset-cpus', '0-1', '--blkio-weight', '100', 'c1'],
];

for (const line of ACCEPTED) {
  test(`fast path = yargs: ${line.join(' ')}`, async () => {
    const fast = fastArgv(prepare(line), wrapped);
    assert.ok(fast, 'the fast path takes it');
    const y = await viaYargs(line);
    assert.is(names.get(fast!.handler as Command['handler']), y.command, 'same command');
    assert.equal(defined(fast!.argv), defined(y.argv));
  });
}

/** Help, errors and spellings the fast path does not know: yargs handles them, as always. */
const REFUSED: string[][] = [
  [],
  ['--debug'],
  ['--help'],
  ['-h'],
  ['state', '-h'],
  ['state', '--help'],
  ['exec', '-h', 'c1'],
  ['help'],
  ['bogus'],
  ['state'],
  ['state', 'a', 'b'],
  ['state', '--bogus', 'c1'],
  ['state', '-x', 'c1'],
  ['--log-format', 'xml', 'state', 'c1'],
  ['--debug', 'true', 'state', 'c1'],
  ['--debug=false', 'state', 'c1'],
  ['--root', 'a', '--root', 'b', 'state', 'c1'],
  ['--root', '', 'state', 'c1'],
  ['--root', '-x', 'state', 'c1'],
  ['--root'],
  ['state', 'c1', '--root'],
  ['state', '--', 'c1'],
  ['state', 'c1', '--'],
  ['list', '-fq'],
  ['list', '--format', 'xml'],
  ['list', 'extra'],
  ['features', 'extra'],
  ['delete', '--force=true', 'c1'],
  ['delete', '-f', '-f', 'c1'],
  ['kill', 'c1', 'KILL', 'extra'],
  ['create', '--bundle'],
  ['create', '--bundle', '/b'],
  ['create', '--preserve-fds', 'x', 'c1'],
  ['create', '--preserve-fds', '-1', 'c1'],
  ['create', '--preserve-fds', '07', 'c1'],
  ['create', '--pidFile', '/p', 'c1'],
  ['exec', '-g', 'x', 'c1', 'id'],
  ['exec', '-e'],
  ['update', '--cpu-quota', '-1', 'c1'],
  ['update', '--memory', '-1', 'c1'],
];

for (const line of REFUSED) {
  test(`left to yargs: ${line.join(' ') || '(nothing)'}`, () => {
    assert.is(fastArgv(prepare(line), wrapped), null);
  });
}

test('every command has a fast path (its builder records)', () => {
  for (const c of COMMANDS) {
    const word = String(c.command).split(' ')[0];
    const line = String(c.command).includes('<id>') ? [word, 'c1'] : [word];
    assert.ok(fastArgv(prepare(line)), word);
  }
});

// Where protectArgs puts `--`: after the container id, whatever options (with their values) come
// before it; never when one comes before the id or the command is not exec or ps.
const PROTECTED: [string[], string[]][] = [
  [['exec', 'c1', 'sh', '-c', 'x'], ['exec', 'c1', '--', 'sh', '-c', 'x']],
  [['--root', '/r', 'exec', '-e', 'A=1', '-t', '--cwd', '/w', '-u', '0', 'c1', 'ls', '-l'], ['--root', '/r', 'exec', '-e', 'A=1', '-t', '--cwd', '/w', '-u', '0', 'c1', '--', 'ls', '-l']],
  [['exec', '-g', '1', '--cap', 'CAP_KILL', '--process', '/p.json', '-d', 'c1'], ['exec', '-g', '1', '--cap', 'CAP_KILL', '--process', '/p.json', '-d', 'c1', '--']],
  [['exec', '--cwd=/w', 'c1', 'id'], ['exec', '--cwd=/w', 'c1', '--', 'id']],
  // runc's flag parsing stopped at the id: a `--` after it is the command's own first word.
  [['exec', 'c1', '--', 'sh'], ['exec', 'c1', '--', '--', 'sh']],
  [['exec', '--', 'c1', 'sh'], ['exec', '--', 'c1', 'sh']],
  [['ps', 'c1', '-ef'], ['ps', 'c1', '--', '-ef']],
  [['ps', '-f', 'json', 'c1', 'aux'], ['ps', '-f', 'json', 'c1', '--', 'aux']],
  // A global option given after the command word takes its value there too.
  [['ps', '--rootless', 'true', 'c1', '-ef'], ['ps', '--rootless', 'true', 'c1', '--', '-ef']],
  [['state', 'exec'], ['state', 'exec']],
  [['run', '-b', '/b', 'ps'], ['run', '-b', '/b', 'ps']],
];

for (const [line, want] of PROTECTED) {
  test(`protectArgs: ${line.join(' ')}`, () => {
    assert.equal(protectArgs(commandWord(line), line), want);
  });
}

test.run();
