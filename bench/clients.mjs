#!/usr/bin/env node
// Through the real clients (issue #13), tsrun against runc, interleaved in one run:
//   - `docker run --rm <image> true`, end to end in the client         target ≤ 1.3× runc
//   - 20 parallel `docker run -d <image> sleep 1000`: from the first client's start until all
//     20 clients returned (each returns once its container is started; checked to be running
//     with `docker inspect` afterwards, untimed), then removed              target ≤ 1.5× runc
//   - `podman run --rm <image> true` (podman --runtime <abs path>)      target ≤ 1.3× runc
// One private containerd + dockerd with both runtimes in daemon.json `runtimes` (`--runtime
// tsrun` vs `--runtime ref-runc`), one private podman storage driven with either --runtime; all
// set up as conformance/daemons does (conformance/daemons/lib: private roots and sockets under
// one temp dir, cgroupfs driver, no network, podman's ulimits under the host's hard limits), and
// all of it stopped and removed at the end, on failure and on SIGINT/SIGTERM too.
// Usage: node bench/clients.mjs [--iterations N] [--parallel N]   needs root;
//   RUNC=/usr/sbin/runc by default; TSRUN_BIN=<launcher> measures another tsrun launcher.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Env, ensurePackages } from '../conformance/daemons/lib/daemons.mjs';
import { Podman, PODMAN_IMAGE_REF } from '../conformance/daemons/lib/podman.mjs';
import { buildImage, IMAGE_REF } from '../conformance/daemons/lib/image.mjs';
import { run, readText, short } from '../conformance/daemons/lib/proc.mjs';
import { printRatioTable } from './report.mjs';
import { numberArg, RUNC as RUNC_BIN, TSRUN as TSRUN_BIN } from './runtimes.mjs';

// Absolute: they go into the daemons' configuration (dockerd's runtimes, podman's runtime), where a
// path relative to this process's working directory would not mean the same.
const TSRUN = path.resolve(TSRUN_BIN);
const RUNC = path.resolve(RUNC_BIN);
const ITER = numberArg('--iterations', 9);
const PAR = numberArg('--parallel', 20);
const PAR_ITER = Math.max(3, Math.ceil(ITER / 2));
const DOCKER_RT = { tsrun: 'tsrun', runc: 'ref-runc' };

console.log(`bench/clients.mjs: tsrun against runc through the real clients (private daemons, both runtimes in each)
  docker run --rm <image> true        the docker client's wall time, median of ${ITER}; target ≤ 1.3× runc
  ${PAR} parallel docker run -d         until all ${PAR} clients returned (containers started), median of ${PAR_ITER}; target ≤ 1.5×
  podman run --rm <image> true        the podman client's wall time (conmon, --runtime <abs path>), median of ${ITER}; target ≤ 1.3×
  samples interleaved tsrun, runc, tsrun, …; image: one busybox layer (conformance/daemons/lib/image.mjs)
`);

if (process.getuid() !== 0) {
  console.error('bench/clients.mjs needs root (it starts containerd, dockerd and podman containers)');
  process.exit(2);
}
for (const p of [TSRUN, RUNC, '/bin/busybox']) {
  if (!fs.existsSync(p)) { console.error(`${p} not found`); process.exit(2); }
}

const log = (m) => console.error(`# ${m}`);

// conformance/daemons' Env, with a dockerd that knows both runtimes (and neither as default).
class BenchEnv extends Env {
  dockerConfig() {
    return { runtimes: { [DOCKER_RT.tsrun]: { path: TSRUN }, [DOCKER_RT.runc]: { path: RUNC } } };
  }
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsb-')); // short: dockerd puts sockets under it
const tag = `tsrunbench${process.pid}`;
const env = new BenchEnv({ tmp, tag, runtime: TSRUN, shim: null, log });
// One podman storage (one dir), two Podman objects: each passes its own --runtime.
const pods = { tsrun: new Podman({ tmp, tag, runtime: TSRUN, log }), runc: new Podman({ tmp, tag, runtime: RUNC, log }) };

let cleaning = null;
const cleanupOnce = () => (cleaning ??= (async () => {
  log('cleaning up: containers, daemons, mounts, cgroups, temp dir');
  for (const p of Object.values(pods)) {
    try { await p.cleanup(); } catch (e) { log(`podman cleanup failed: ${e.stack}`); }
  }
  await env.cleanup();
  if (fs.existsSync(tmp)) log(`left behind: ${tmp}`);
})().catch((e) => log(`cleanup failed: ${e.stack}`)));
let interrupted = null;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, async () => {
    if (interrupted) process.exit(130);
    interrupted = sig;
    log(`${sig}: stopping the daemons and removing what this run created`);
    await cleanupOnce();
    process.exit(130);
  });
}

const now = () => Number(process.hrtime.bigint()) / 1e6;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const check = (r, what) => {
  if (r.timedOut || r.code !== 0) throw new Error(`${what}: exit ${r.code}${r.timedOut ? ' (timed out)' : ''}: ${short(r.stderr || r.stdout)}`);
  return r;
};
const results = [];
async function measure(name, target, iter, fn) {
  log(`bench: ${name}`);
  const samples = { tsrun: [], runc: [] };
  for (let i = 0; i < iter; i++) {
    for (const rt of ['tsrun', 'runc']) {
      if (interrupted) throw new Error(`interrupted by ${interrupted}`);
      samples[rt].push(await fn(rt, i));
    }
  }
  results.push({ name, target, tsrun: median(samples.tsrun), runc: median(samples.runc), samples });
}

let exitCode = 0;
let versions = [];
const load = { before: os.loadavg() };
try {
  const inst = await ensurePackages(log);
  if (!inst.ok) throw new Error(inst.reason);
  const t0 = now();
  const img = await buildImage(path.join(tmp, 'image'));
  await env.startContainerd();
  await env.startDockerd();
  check(await env.docker(['load', '-i', img.archive], { timeoutMs: 60000 }), 'docker load');
  await pods.tsrun.start(img.archive);
  pods.runc.started = true; // the same storage, loaded above
  // podman passes --log-format json --log … to the runtimes this names (start() named only one).
  const conf = fs.readFileSync(pods.tsrun.conf, 'utf8').replace(/^runtime_supports_json = .*$/m, `runtime_supports_json = ${JSON.stringify(['tsrun', 'runc', path.basename(TSRUN), path.basename(RUNC)].filter((v, i, a) => a.indexOf(v) === i))}`);
  fs.writeFileSync(pods.tsrun.conf, conf);
  versions = [
    (await run(['containerd', '--version'])).stdout.trim(),
    `dockerd ${(await env.docker(['version', '--format', '{{.Server.Version}} (client {{.Client.Version}})'])).stdout.trim()}`,
    await pods.tsrun.version(),
    `tsrun ${TSRUN}: ${(await run([TSRUN, '--version'])).stdout.trim().split('\n')[0]}`,
    `runc ${RUNC}: ${(await run([RUNC, '--version'])).stdout.trim().split('\n')[0]}`,
  ];
  for (const v of versions) log(v);
  log(`setup took ${((now() - t0) / 1000).toFixed(1)} s`);

  // A warm-up run each (first-use costs: image layer mounts, the shim binary in page cache).
  for (const rt of ['tsrun', 'runc']) {
    check(await env.docker(['run', '--rm', '--runtime', DOCKER_RT[rt], '--network', 'none', IMAGE_REF, 'true'], { timeoutMs: 60000 }), `warm-up docker run (${rt})`);
    check(await pods[rt].podman(['run', '--rm', ...pods[rt].containerArgs(), PODMAN_IMAGE_REF, 'true'], { timeoutMs: 60000 }), `warm-up podman run (${rt})`);
  }

  await measure('docker run --rm <image> true (ms)', 1.3, ITER, async (rt) => {
    const t = now();
    const r = await env.docker(['run', '--rm', '--runtime', DOCKER_RT[rt], '--network', 'none', IMAGE_REF, 'true'], { timeoutMs: 60000 });
    const d = now() - t;
    check(r, `docker run --rm (${rt})`);
    return d;
  });

  await measure(`${PAR} parallel docker run -d, until all running (ms)`, 1.5, PAR_ITER, async (rt, i) => {
    const names = Array.from({ length: PAR }, (_, k) => `${tag}-${rt}-${i}-${k}`);
    const t = now();
    const rs = await Promise.all(names.map((n) => env.docker(['run', '-d', '--name', n, '--runtime', DOCKER_RT[rt], '--network', 'none', IMAGE_REF, 'sleep', '1000'], { timeoutMs: 120000 })));
    const d = now() - t;
    try {
      rs.forEach((r, k) => check(r, `docker run -d ${names[k]}`));
      const st = check(await env.docker(['inspect', '-f', '{{.State.Status}}', ...names], { timeoutMs: 30000 }), 'docker inspect');
      const running = st.stdout.split('\n').filter((s) => s.trim() === 'running').length;
      if (running !== PAR) throw new Error(`${rt}: ${running} of ${PAR} containers running after docker run -d: ${short(st.stdout)}`);
    } finally {
      const rm = await env.docker(['rm', '-f', ...names], { timeoutMs: 120000 });
      if (rm.code !== 0 && !/No such container/.test(rm.stderr)) log(`docker rm -f: ${short(rm.stderr)}`);
    }
    return d;
  });

  let seq = 0;
  await measure('podman run --rm <image> true (ms)', 1.3, ITER, async (rt) => {
    const p = pods[rt];
    const cid = path.join(p.dir, `cid-${++seq}`);
    const t = now();
    const r = await p.podman(['run', '--rm', '--cidfile', cid, ...p.containerArgs(), PODMAN_IMAGE_REF, 'true'], { timeoutMs: 60000 });
    const d = now() - t;
    const id = readText(cid)?.trim();
    if (id) p.ids.add(id); // for the cleanup of runtime state, should any be left
    check(r, `podman run --rm (${rt})`);
    return d;
  });
} catch (e) {
  console.error(`bench/clients.mjs failed: ${e.stack ?? e}`);
  exitCode = 1;
} finally {
  load.after = os.loadavg();
  await cleanupOnce();
}
if (interrupted) await new Promise(() => {}); // the signal handler exits

if (results.length) {
  const la = (l) => l.map((x) => x.toFixed(2)).join(' ');
  console.log(`\ntsrun vs runc through the clients, interleaved; load average ${la(load.before)} before, ${la(load.after)} after, ${os.cpus().length} CPUs`);
  for (const v of versions) console.log(`  ${v}`);
  printRatioTable(results, { width: 50, digits: 0 });
  console.log('\nsamples (ms):');
  for (const r of results) console.log(`  ${r.name}\n    tsrun ${r.samples.tsrun.map((x) => x.toFixed(0)).join(' ')}\n    runc  ${r.samples.runc.map((x) => x.toFixed(0)).join(' ')}`);
}
process.exit(exitCode);
