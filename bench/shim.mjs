#!/usr/bin/env node
// The containerd path, tsrun's shim side by side with runc's (containerd-shim-runc-v2 running
// Debian's runc), through one private containerd (conformance/daemons/lib: its own root, state
// and sockets, removed afterwards):
//   - `ctr run --rm <image> /bin/true`, the two shims interleaved, median of N each, and the ratio;
//   - memory: the summed PSS of the shim processes while 20 containers run, each with its
//     default grouping (one group per container) and all 20 in one group; for tsrun the
//     stage-0 processes of tsrun-init that wait for each container's exit are counted too.
//
//   node bench/shim.mjs [--runs N] [--containers N]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Env, ensurePackages } from '../conformance/daemons/lib/daemons.mjs';
import { buildImage, CTR_IMAGE_REF } from '../conformance/daemons/lib/image.mjs';
import { run, sleep } from '../conformance/daemons/lib/proc.mjs';
import { numberArg } from './runtimes.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = numberArg('--runs', 9);
const CONTAINERS = numberArg('--containers', 20);
const SHIMS = {
  tsrun: path.join(root, 'bin/containerd-shim-tsrun-v2'),
  runc: '/usr/bin/containerd-shim-runc-v2',
};

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pss = (pid) => {
  try {
    return Number(/^Pss:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
};
const procs = () => fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number);
const cmdline = (pid) => {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
};
const comm = (pid) => {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
};
const ppid = (pid) => {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return 0;
  }
};

async function main() {
  const inst = await ensurePackages((m) => console.error(m));
  if (!inst.ok) {
    console.log(`shim bench: NOT RUN: ${inst.reason}`);
    return;
  }
  for (const [name, bin] of Object.entries(SHIMS)) {
    if (!fs.existsSync(bin)) {
      console.log(`shim bench: NOT RUN: ${name} shim ${bin} missing`);
      return;
    }
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsb-'));
  const tag = `tsrunbench${process.pid}`;
  const env = new Env({ tmp, tag, runtime: path.join(root, 'bin/tsrun'), shim: SHIMS.tsrun, log: (m) => console.error(m) });
  let done = false;
  const cleanup = async () => {
    if (done) return;
    done = true;
    await env.cleanup();
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => cleanup().then(() => process.exit(130)));
  try {
    await env.startContainerd();
    const img = await buildImage(path.join(tmp, 'image'));
    const imp = await env.ctr(['image', 'import', img.archive], { timeoutMs: 60000 });
    if (imp.code !== 0) throw new Error(`ctr image import: ${imp.stderr}`);

    // Latency, interleaved: a slower moment of the machine hits both shims alike.
    const times = { tsrun: [], runc: [] };
    let n = 0;
    for (let i = 0; i < RUNS + 1; i++) {
      for (const [name, bin] of Object.entries(SHIMS)) {
        const id = `b${++n}`;
        const t0 = performance.now();
        const r = await env.ctr(['run', '--rm', '--runtime', bin, CTR_IMAGE_REF, id, '/bin/true'], { timeoutMs: 60000 });
        const ms = performance.now() - t0;
        if (r.code !== 0) throw new Error(`ctr run --rm through ${name}: ${r.stderr}`);
        if (i > 0) times[name].push(ms); // the first round warms the page cache
      }
    }
    const mt = median(times.tsrun);
    const mr = median(times.runc);
    console.log(`ctr run --rm /bin/true: tsrun shim ${mt.toFixed(0)} ms, runc shim ${mr.toFixed(0)} ms (medians of ${RUNS}): ${(mt / mr).toFixed(2)}x  [target <= 1.0x, goal 0.8x]`);

    // Memory with CONTAINERS running containers, per grouping.
    for (const grouping of ['default grouping', 'one group']) {
      const row = {};
      for (const [name, bin] of Object.entries(SHIMS)) {
        const ids = [];
        for (let i = 0; i < CONTAINERS; i++) {
          const id = `m${++n}`;
          ids.push(id);
          const extra = grouping === 'one group' ? ['--annotation', `io.containerd.runc.v2.group=${tag}-g`] : [];
          const r = await env.ctr(['run', '-d', '--null-io', '--runtime', bin, ...extra, CTR_IMAGE_REF, id, 'sleep', '1000'], { timeoutMs: 60000 });
          if (r.code !== 0) throw new Error(`ctr run -d through ${name}: ${r.stderr}`);
        }
        await sleep(500);
        const shims = procs().filter((p) => {
          const a = cmdline(p);
          // The daemon runs bin/.containerd-shim-tsrun-v2 (the binary is its native front door).
          return a.some((x) => path.basename(x).replace(/^\.|\.js$/g, '') === path.basename(bin)) && a.includes(env.ctrdSock);
        });
        const stage0 = procs().filter((p) => comm(p).startsWith('memfd:tsrun-ini') && shims.includes(ppid(p)));
        const kb = shims.reduce((s, p) => s + pss(p), 0) + stage0.reduce((s, p) => s + pss(p), 0);
        row[name] = kb;
        console.log(`  ${grouping}, ${CONTAINERS} containers, ${name}: ${shims.length} shim process(es)${stage0.length ? ` + ${stage0.length} stage-0` : ''}, PSS ${(kb / 1024).toFixed(1)} MiB (${(kb / CONTAINERS / 1024).toFixed(2)} MiB per container)`);
        for (const id of ids) await env.ctr(['task', 'kill', '-s', 'SIGKILL', id], { timeoutMs: 10000 });
        await sleep(500);
        for (const id of ids) {
          await env.ctr(['task', 'rm', '-f', id], { timeoutMs: 15000 });
          await env.ctr(['container', 'rm', id], { timeoutMs: 15000 });
        }
      }
      console.log(`memory (${grouping}): tsrun/runc ${(row.tsrun / row.runc).toFixed(2)}x  [target <= 2.0x for the default grouping]`);
    }
  } finally {
    await cleanup();
  }
}

main().catch(async (e) => {
  console.error(`shim bench failed: ${e.stack ?? e}`);
  process.exitCode = 1;
});
