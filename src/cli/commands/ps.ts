import type { CommandModule } from 'yargs';
import { action, type GlobalArgs, writeStdout } from '../context';

interface PsArgs extends GlobalArgs {
  id: string;
  format: 'table' | 'json';
  psArgs: string[];
}

const command: CommandModule<any, any> = {
  command: 'ps <id> [psArgs..]',
  describe: 'list the processes of a container (host pids); extra arguments go to ps(1), default -ef',
  builder: (y) =>
    y
      .positional('id', { type: 'string', demandOption: true })
      .positional('psArgs', { type: 'string', array: true, default: [] })
      .option('format', { alias: 'f', choices: ['table', 'json'] as const, default: 'table' as const }),
  handler: action<PsArgs>(async (argv, ctx) => {
    const { containerPids } = await import('../../container/pids');
    const { RuntimeError } = await import('../../container/errors');
    const { spawnSync } = await import('node:child_process');
    const pids = containerPids(ctx, argv.id);
    if (argv.format === 'json') {
      writeStdout(JSON.stringify(pids.length ? pids : null) + '\n');
      return;
    }
    const extra = [...argv.psArgs, ...((argv as unknown as { '--'?: string[] })['--'] ?? [])].map(String);
    const psArgs = extra.length ? extra : ['-ef'];
    const r = spawnSync('ps', psArgs, { encoding: 'utf8' });
    if (r.error || r.status !== 0) throw new RuntimeError(`ps ${psArgs.join(' ')}: ${r.error?.message ?? r.stderr.trim()}`);
    const lines = r.stdout.split('\n');
    const header = lines[0];
    const pidCol = header.trim().split(/\s+/).indexOf('PID');
    if (pidCol < 0) throw new RuntimeError("couldn't find PID field in ps output");
    const wanted = new Set(pids);
    const out = [header];
    for (const line of lines.slice(1)) {
      const pid = Number(line.trim().split(/\s+/)[pidCol]);
      if (wanted.has(pid)) out.push(line);
    }
    writeStdout(out.join('\n') + '\n');
  }),
};
export default command;
