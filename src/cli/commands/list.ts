import type { CommandModule } from 'yargs';
import { action, writeStdout, type GlobalArgs } from '../context';

interface ListArgs extends GlobalArgs {
  format: 'table' | 'json';
  quiet: boolean;
}

/** Go's tabwriter as runc configures it: minwidth 12, padding 3, space padding. */
function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(12, ...rows.map((r) => r[c].length + 3)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('')).join('\n') + '\n';
}

const command: CommandModule<any, any> = {
  command: 'list',
  aliases: ['ps-all'],
  describe: 'list containers',
  builder: (y) =>
    y
      .option('format', { alias: 'f', choices: ['table', 'json'] as const, default: 'table' as const })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'print only ids' }),
  handler: action<ListArgs>(async (argv, ctx) => {
    const { listContainers } = await import('../../container/state');
    // runc's OWNER: the user owning the container's state dir (the rootless user, or root).
    const { ownerOf } = await import('../../container/rootless');
    const list = listContainers(ctx).map((c) => ({ ...c, owner: c.owner || ownerOf(ctx.root, c.id) }));
    if (argv.quiet) {
      writeStdout(list.map((c) => c.id + '\n').join(''));
    } else if (argv.format === 'json') {
      writeStdout(JSON.stringify(list.length ? list : null) + '\n');
    } else {
      const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER']];
      for (const c of list) rows.push([c.id, String(c.pid), c.status, c.bundle, c.created, c.owner]);
      writeStdout(table(rows));
    }
  }),
};
export default command;
