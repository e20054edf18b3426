#!/usr/bin/env node
// Growth benchmarks (issue #13), tsrun against runc measured interleaved in one run:
//   - `list` and `list --format json` with BENCH_LIST_SMALL (50) and then BENCH_LIST_N (500)
//     created containers in each runtime's own --root (busybox `sleep 1000`, created, never
//     started: one waiting init each), printed as total and per-container ms so that growth
//     shows;
//   - `events --stats <id>` (one stats JSON, then exit) on a running container with
//     BENCH_EVENTS_PROCS (200) extra processes (`sleep 1000 &` from one sh; counted in its cgroup).
// Target: tsrun ≤ 1.5× runc for both at the large N.
// Usage: node bench/growth.mjs [--iterations N]   RUNC=/usr/sbin/runc by default; TSRUN_BIN=<launcher>.
// Needs root. Refuses to start without enough free memory (a waiting runc init is ~10 MB).
// Cleans up everything (delete --force in both roots, the work dir) on success, failure and
// SIGINT/SIGTERM.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeBundle } from './bundle.mjs';
import { printRatioTable } from './report.mjs';
import { numberArg, RUNC, TSRUN } from './runtimes.mjs';

const ITER = numberArg('--iterations', 11);
const BIG = Number(process.env.BENCH_LIST_N ?? 500);
const SMALL = Math.min(Number(process.env.BENCH_LIST_SMALL ?? 50), BIG);
const PROCS = Number(process.env.BENCH_EVENTS_PROCS ?? 200);
const TARGET = 1.5;

console.log(`bench/growth.mjs: how tsrun's cost grows with the number of containers and processes, against runc
  list, list --format json   with ${SMALL} and ${BIG} created containers per runtime (own --root each), total and per container
  events --stats <id>        one stats event of a running container with ${PROCS} extra processes
  median of ${ITER} samples per cell, tsrun and runc interleaved; target: tsrun ≤ ${TARGET}× runc at ${BIG}
`);

if (process.getuid() !== 0) {
  console.error('bench/growth.mjs needs root (it creates containers)');
  process.exit(2);
}
if (!fs.existsSync(RUNC)) {
  console.error(`${RUNC} not found: apt-get install runc (the benchmark compares against it)`);
  process.exit(2);
}

const runtimes = { tsrun: TSRUN, runc: RUNC };
const tag = `tsgrowth${process.pid}`;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-growth-'));
const roots = { tsrun: path.join(work, 'root-tsrun'), runc: path.join(work, 'root-runc') };
const now = () => Number(process.hrtime.bigint()) / 1e6;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
// Lets a SIGINT/SIGTERM handler run between the synchronous CLI calls.
const tick = () => new Promise((r) => setImmediate(r));
let interrupted = null;

function cli(rt, args, { quiet = false, timeout = 120_000 } = {}) {
  const r = spawnSync(runtimes[rt], ['--root', roots[rt], ...args], {
    encoding: 'utf8', timeout, maxBuffer: 64 << 20,
    // A created container inherits the caller's stdio: `create` gets none (see bench/run.mjs).
    stdio: ['ignore', quiet ? 'ignore' : 'pipe', quiet ? 'ignore' : 'pipe'],
  });
  if (r.status !== 0) throw new Error(`${rt} ${args.join(' ')}: exit ${r.status ?? r.signal} ${r.stderr ?? ''}`);
  return r.stdout;
}

async function cleanup() {
  // delete --force of every container, a few at a time (1000 one by one take minutes).
  const jobs = [];
  for (const rt of Object.keys(runtimes)) {
    for (const id of safeReaddir(roots[rt])) jobs.push([runtimes[rt], ['--root', roots[rt], 'delete', '--force', id]]);
  }
  const worker = async () => {
    for (let j; (j = jobs.shift());) {
      await new Promise((resolve) => {
        const c = spawn(j[0], j[1], { stdio: 'ignore', timeout: 30_000 });
        c.on('error', resolve);
        c.on('exit', resolve);
      });
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  // Anything a runtime failed to kill: found by our tag in its cgroup paths.
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    let cg = '';
    try { cg = fs.readFileSync(`/proc/${e}/cgroup`, 'utf8'); } catch { continue; }
    if (cg.includes(`/${tag}-`)) { try { process.kill(Number(e), 'SIGKILL'); } catch { /* gone */ } }
  }
  for (const h of safeReaddir('/sys/fs/cgroup')) {
    for (const d of safeReaddir(path.join('/sys/fs/cgroup', h)).filter((n) => n.startsWith(`${tag}-`))) {
      try { fs.rmdirSync(path.join('/sys/fs/cgroup', h, d)); } catch { /* busy or gone */ }
    }
  }
  fs.rmSync(work, { recursive: true, force: true });
}
function safeReaddir(p) { try { return fs.readdirSync(p); } catch { return []; } }

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (interrupted) process.exit(130);
    interrupted = sig;
    console.error(`bench/growth.mjs: ${sig}, cleaning up`);
  });
}
const checkInterrupt = async () => {
  await tick();
  if (interrupted) throw new Error(`interrupted by ${interrupted}`);
};

const memAvailable = () => Number(/MemAvailable:\s+(\d+) kB/.exec(fs.readFileSync('/proc/meminfo', 'utf8'))[1]) * 1024;
const rssOf = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
const MiB = 1024 * 1024;

const results = [];
const notes = [];
let exitCode = 0;
try {
  // One bundle for the created containers, one (same rootfs) for the events container.
  const bundle = path.join(work, 'bundle');
  const cfg = makeBundle(bundle, RUNC, ['sh', 'sleep', 'seq', 'true']);
  cfg.process.terminal = false;
  cfg.process.args = ['sleep', '1000'];
  cfg.root.readonly = true;
  fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(cfg));
  const evBundle = path.join(work, 'bundle-events');
  fs.mkdirSync(evBundle);
  const evCfg = structuredClone(cfg);
  evCfg.root.path = path.join(bundle, 'rootfs');
  evCfg.process.args = ['sh', '-c', `for i in $(seq ${PROCS}); do sleep 1000 & done; wait`];
  fs.writeFileSync(path.join(evBundle, 'config.json'), JSON.stringify(evCfg));

  // The cgroup of each container is /<id> (no cgroupsPath in the config): ids carry our tag.
  const id = (rt, i) => `${tag}-${rt}-${i}`;
  const count = { tsrun: 0, runc: 0 };
  const createUpTo = async (n) => {
    const t0 = now();
    while (count.tsrun < n || count.runc < n) {
      for (const rt of Object.keys(runtimes)) {
        if (count[rt] >= n) continue;
        cli(rt, ['create', '--bundle', bundle, id(rt, count[rt])], { quiet: true });
        count[rt]++;
      }
      await checkInterrupt();
    }
    process.stderr.write(`bench: ${n} containers per runtime (${((now() - t0) / 1000).toFixed(1)} s to create)\n`);
  };

  // Memory: measure one waiting init of each, refuse if BIG of each would not fit.
  await createUpTo(1);
  const rss = {};
  for (const rt of Object.keys(runtimes)) rss[rt] = rssOf(JSON.parse(cli(rt, ['state', id(rt, 0)])).pid);
  // Page cache, kernel objects (namespaces, cgroups) and the events container on top: × 1.5 + 1 GiB.
  const need = (rss.tsrun + rss.runc) * BIG * 1.5 + 1024 * MiB;
  const avail = memAvailable();
  console.log(`memory: a waiting init is ${(rss.tsrun / MiB).toFixed(1)} MiB (tsrun), ${(rss.runc / MiB).toFixed(1)} MiB (runc) RSS; ` +
    `${BIG} of each needs ~${(need / 1024 / MiB).toFixed(1)} GiB, ${(avail / 1024 / MiB).toFixed(1)} GiB available`);
  if (avail < need) {
    throw Object.assign(new Error(`not enough free memory for ${BIG} containers per runtime (lower BENCH_LIST_N)`), { refuse: true });
  }

  const measure = async (name, fn, per) => {
    process.stderr.write(`bench: ${name}\n`);
    const samples = { tsrun: [], runc: [] };
    for (let i = 0; i < ITER; i++) {
      for (const rt of Object.keys(runtimes)) samples[rt].push(fn(rt));
      await checkInterrupt();
    }
    const row = { name, tsrun: median(samples.tsrun), runc: median(samples.runc), per };
    results.push(row);
    return row;
  };
  const timeList = (args, n) => (rt) => {
    const t = now();
    const out = cli(rt, ['list', ...args]);
    const d = now() - t;
    const seen = args.length ? JSON.parse(out).length : out.trim().split('\n').length - 1;
    if (seen !== n) throw new Error(`${rt} list ${args.join(' ')}: ${seen} containers, expected ${n}`);
    return d;
  };

  const listRows = {};
  for (const n of [...new Set([SMALL, BIG])]) {
    await createUpTo(n);
    listRows[n] = [
      await measure(`list, ${n} containers`, timeList([], n), n),
      await measure(`list --format json, ${n} containers`, timeList(['--format', 'json'], n), n),
    ];
    for (const r of listRows[n]) r.target = n === BIG ? TARGET : null;
  }

  // Growth itself: the cost of each container added between the small and the large N.
  if (SMALL < BIG) {
    for (let k = 0; k < 2; k++) {
      const [a, b] = [listRows[SMALL][k], listRows[BIG][k]];
      const per = (rt) => (b[rt] - a[rt]) / (BIG - SMALL);
      results.push({ name: `${b.name.replace(/, \d+ containers$/, '')}: per added container, ${SMALL}→${BIG}`, tsrun: per('tsrun'), runc: per('runc'), target: null });
    }
  }

  // events --stats on a container with PROCS extra processes.
  const evId = (rt) => `${tag}-${rt}-events`;
  for (const rt of Object.keys(runtimes)) {
    cli(rt, ['create', '--bundle', evBundle, evId(rt)], { quiet: true });
    cli(rt, ['start', evId(rt)]);
  }
  for (const rt of Object.keys(runtimes)) {
    const pid = JSON.parse(cli(rt, ['state', evId(rt)])).pid;
    const cgLine = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => /^\d+:([^:]*,)?pids(,[^:]*)?:/.test(l) || l.startsWith('0::'));
    const cgPath = cgLine.split(':').slice(2).join(':');
    const procsFile = cgLine.startsWith('0::') ? `/sys/fs/cgroup${cgPath}/cgroup.procs` : `/sys/fs/cgroup/pids${cgPath}/cgroup.procs`;
    let procs = 0;
    for (let k = 0; k < 200; k++) {
      procs = fs.readFileSync(procsFile, 'utf8').trim().split('\n').filter(Boolean).length;
      if (procs >= PROCS + 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    if (procs < PROCS + 1) throw new Error(`${rt}: only ${procs} processes in ${procsFile}, expected ${PROCS + 1}`);
    notes.push(`events container (${rt}): ${procs} processes in ${path.dirname(procsFile)}`);
  }
  const evRow = await measure(`events --stats, ${PROCS + 1} processes`, (rt) => {
    const t = now();
    const out = cli(rt, ['events', '--stats', evId(rt)], { timeout: 30_000 });
    const d = now() - t;
    const ev = JSON.parse(out.trim().split('\n')[0]);
    if (ev.type !== 'stats') throw new Error(`${rt} events --stats: not a stats event: ${out.slice(0, 200)}`);
    const pids = ev.data?.pids?.current;
    if (pids !== undefined && pids < PROCS + 1) throw new Error(`${rt} events --stats: pids.current ${pids}`);
    return d;
  });
  evRow.target = TARGET;
} catch (e) {
  if (e.refuse) {
    console.log(`refused: ${e.message}`);
    exitCode = 0; // a skip, not a failure: the rest of `npm run bench` goes on
  } else {
    console.error(`bench/growth.mjs failed: ${e.stack ?? e}`);
    exitCode = interrupted ? 130 : 1;
  }
} finally {
  process.stderr.write('bench: cleaning up\n');
  const t = now();
  await cleanup();
  process.stderr.write(`bench: cleaned up in ${((now() - t) / 1000).toFixed(1)} s\n`);
}

if (results.length) {
  const runcVersion = execFileSync(RUNC, ['--version'], { encoding: 'utf8' }).split('\n')[0];
  const [l1, l5, l15] = os.loadavg();
  console.log(`\ntsrun vs ${RUNC} (${runcVersion}), median of ${ITER}, interleaved; load average ${l1.toFixed(2)} ${l5.toFixed(2)} ${l15.toFixed(2)} on ${os.cpus().length} CPUs\n`);
  for (const n of notes) console.log(`  ${n}`);
  printRatioTable(results);
}
process.exit(exitCode);
