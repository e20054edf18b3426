/**
 * TSRUN_TRACE=<file>: each tsrun process appends one JSON line to <file> when it exits, with the
 * timestamps of its phases, for `npm run bench` to tell where a call's time goes:
 *
 *   {"pid":…,"argv":[…],"timeOrigin":<epoch ms of the process start>,"marks":[[label, ms], …]}
 *
 * `ms` counts from timeOrigin (performance.now()). Marks come from the CLI (launcher, main,
 * parsed, action, action end, exit) and, while tracing only, from probes (trace-probes.ts) on the
 * Node APIs the runtime calls: module loads, the config read, cgroup file operations, the init's
 * spawn and its sync-socket messages, the exec fifo. Without TSRUN_TRACE nothing is installed and
 * mark() is one comparison.
 */
import * as fs from 'node:fs';

export type Mark = [label: string, ms: number];

const file = process.env.TSRUN_TRACE || '';
export const tracing = file !== '';
export const marks: Mark[] = [];

export function mark(label: string): void {
  if (tracing) marks.push([label, performance.now()]);
}

let installed = false;

/** Called once, before the command runs: the probes and the record written at exit. */
export async function startTrace(): Promise<void> {
  if (!tracing || installed) return;
  installed = true;
  const launched = (globalThis as { __tsrunLaunch?: number }).__tsrunLaunch;
  if (typeof launched === 'number') marks.unshift(['launcher', launched]);
  const { installProbes } = await import('./trace-probes');
  installProbes(marks);
  process.on('exit', () => {
    mark('exit');
    const line = JSON.stringify({ pid: process.pid, argv: process.argv.slice(2), timeOrigin: performance.timeOrigin, marks }) + '\n';
    try {
      fs.appendFileSync(file, line);
    } catch {}
  });
}
