// What every bench measures and how it is told so: the two runtimes (TSRUN_BIN: another tsrun
// launcher instead of bin/tsrun; RUNC: /usr/sbin/runc by default) and numeric command-line options.
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const TSRUN = process.env.TSRUN_BIN ?? path.join(repo, 'bin/tsrun');
export const RUNC = process.env.RUNC ?? '/usr/sbin/runc';

/** The number after `name` on the command line (`--iterations 5`), else `dflt`. */
export function numberArg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
