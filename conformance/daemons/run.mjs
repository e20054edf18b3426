#!/usr/bin/env node
// The runc contract as the real daemons use it: a private containerd (containerd-shim-runc-v2
// with --runc-binary) and a private dockerd (runtimes entry in daemon.json) drive the runtime
// under test through their normal paths; the shim.* cases drive the containerd runtime-v2 shim
// under test (`ctr run --runtime <abs path>`) on the same containerd; the podman.* cases drive
// the runtime through a private podman 4.3 and conmon (`podman --runtime <abs path>`).
//
//   RUNTIME=/usr/sbin/runc node conformance/daemons/run.mjs [--filter <substring>]... [--list]
//   SHIM=/usr/bin/containerd-shim-runc-v2 node conformance/daemons/run.mjs --filter shim.
//
// Without RUNTIME it tests <repo>/bin/tsrun, without SHIM <repo>/bin/containerd-shim-tsrun-v2.
// Needs root. Installs containerd, docker.io, tini,
// bsdutils and podman with apt-get if they are missing. Prints `ID RESULT scenario detail` rows and
// `N passed, N failed[, N skipped]`; exit status 1 if anything failed, 2 if it could not start.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Env, ensurePackages } from './lib/daemons.mjs';
import { Podman } from './lib/podman.mjs';
import { buildImage, IMAGE_REF } from './lib/image.mjs';
import { run, short } from './lib/proc.mjs';
import ctrCases from './cases/containerd.mjs';
import dockerCases from './cases/docker.mjs';
import shimCases from './cases/shim.mjs';
import podmanCases from './cases/podman.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const CASE_TIMEOUT_MS = 60000;
// CI runs everything in 90 minutes; a hanging runtime must not eat them. Cases not started
// within the budget are reported as skipped (not run), the timed-out ones as failed.
const BUDGET_MS = Number(process.env.DAEMONS_BUDGET_S || 480) * 1000;

const filters = [];
let listOnly = false;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--filter' && argv[i + 1] !== undefined) filters.push(argv[++i]);
  else if (a.startsWith('--filter=')) filters.push(a.slice(9));
  else if (a === '--list') listOnly = true;
  else {
    console.log('usage: [RUNTIME=/path/to/runtime] [SHIM=/path/to/containerd-shim] [DOCKER=docker-client] [PODMAN=podman] node conformance/daemons/run.mjs [--filter <substring>]... [--list]');
    process.exit(a === '-h' || a === '--help' ? 0 : 2);
  }
}

const all = [
  ...ctrCases.map((c) => ({ ...c, daemon: 'containerd' })),
  ...dockerCases.map((c) => ({ ...c, daemon: 'dockerd' })),
  // The shim cases need containerd and the shim binary, not the runtime.
  ...shimCases.map((c) => ({ ...c, daemon: 'containerd', needs: 'shim' })),
  ...podmanCases.map((c) => ({ ...c, daemon: 'podman' })),
];
const ids = new Set();
for (const c of all) {
  if (ids.has(c.id)) throw new Error(`duplicate case id ${c.id}`);
  ids.add(c.id);
}
const selected = all.filter((c) => filters.length === 0 || filters.some((f) => c.id.includes(f)));
if (listOnly) {
  for (const c of selected) console.log(`${c.id}  ${c.scenario}`);
  process.exit(0);
}

const runtime = path.resolve(process.env.RUNTIME || path.join(repo, 'bin', 'tsrun'));
const shim = path.resolve(process.env.SHIM || path.join(repo, 'bin', 'containerd-shim-tsrun-v2'));
const needRuntime = selected.some((c) => c.needs !== 'shim');
const needShim = selected.some((c) => c.needs === 'shim');
const log = (m) => console.error(`# ${m}`);
if (process.getuid() !== 0) {
  console.error('conformance/daemons needs root (it starts containerd and dockerd and runs containers)');
  process.exit(2);
}
if (needRuntime && !fs.existsSync(runtime)) {
  console.error(`runtime ${runtime} does not exist (set RUNTIME, or build tsrun: node scripts/build.mjs)`);
  process.exit(2);
}
if (!fs.existsSync('/bin/busybox')) {
  console.error('/bin/busybox is missing (apt-get install busybox-static)');
  process.exit(2);
}

class Failure extends Error {}
class Skip extends Error {}

// Per-case context: the environment, assertions, and deferred cleanups (run pass or fail).
class Ctx {
  constructor(env) {
    this.env = env;
    this.deferred = [];
    this.notes = [];
  }
  defer(fn) { this.deferred.push(fn); }
  note(s) { this.notes.push(s); }
  fail(msg) { throw new Failure(msg); }
  skip(msg) { throw new Skip(msg); }
  ok(cond, msg) { if (!cond) throw new Failure(msg); }
  eq(actual, expected, what) {
    if (actual !== expected) throw new Failure(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
  // A command result must have exited with `code`; the message carries its stderr.
  exit(r, code, what) {
    if (r.timedOut) throw new Failure(`${what}: timed out after ${r.ms} ms; stderr: ${short(r.stderr)}`);
    if (r.code !== code) throw new Failure(`${what}: exit ${r.code}${r.signal ? ` (${r.signal})` : ''}, expected ${code}; stdout: ${short(r.stdout)} stderr: ${short(r.stderr)}`);
  }
  async cleanup() {
    for (const fn of this.deferred.reverse()) {
      try { await fn(); } catch (e) { log(`case cleanup: ${e.message}`); }
    }
    this.deferred = [];
  }
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsd-'));
const tag = `tsrunconf${process.pid}`;
const env = new Env({ tmp, tag, runtime, shim, log });
// podman's cleanup (its containers, conmon, the runtime's state, podman's global files) first;
// Env's then unmounts, kills and removes what is left under the temp dir and our cgroups.
env.podman = new Podman({ tmp, tag, runtime, log });

let cleaning = null;
const cleanupOnce = () => (cleaning ??= (async () => {
  try { await env.podman.cleanup(); } catch (e) { log(`podman cleanup failed: ${e.stack}`); }
  await env.cleanup();
})().catch((e) => log(`cleanup failed: ${e.stack}`)));
let interrupted = null;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, async () => {
    if (interrupted) process.exit(130); // a second signal: leave now
    interrupted = sig;
    // Only the cases that finished before the signal count; the one in flight is cut off.
    const done = results.length;
    log(`${sig}: stopping daemons and removing what this run created`);
    await cleanupOnce();
    report(results.slice(0, done));
    console.log(`interrupted by ${sig}: the run is incomplete`);
    process.exit(130);
  });
}

const results = [];
function report(rows = results) {
  if (rows.length) {
    const w = Math.max(...rows.map((r) => r.c.id.length));
    console.log(`${'ID'.padEnd(w)}  RESULT  scenario — detail`);
    for (const r of rows) console.log(`${r.c.id.padEnd(w)}  ${r.result.padEnd(6)}  ${r.c.scenario} — ${r.detail}`);
  }
  const n = (k) => rows.filter((r) => r.result === k).length;
  const skipped = n('SKIP');
  for (const r of rows.filter((x) => x.result === 'SKIP')) console.log(`skipped ${r.c.id}: ${r.detail}`);
  console.log(`${n('PASS')} passed, ${n('FAIL')} failed${skipped ? `, ${skipped} skipped` : ''}`);
}
const started = Date.now();
let exitCode = 0;
try {
  const inst = await ensurePackages(log);
  const setup = { containerd: null, dockerd: null, shim: null, podman: null }; // null = up; string = why not
  // A missing shim binary fails the shim cases (the thing under test is not there), the rest run.
  if (needShim && !fs.existsSync(shim)) setup.shim = `shim binary ${shim} does not exist (set SHIM=/abs/path/to/containerd-shim-…-v2)`;
  if (!inst.ok) {
    setup.containerd = setup.dockerd = setup.podman = `skipped: ${inst.reason}`;
  } else {
    const img = await buildImage(path.join(tmp, 'image'));
    const needCtr = selected.some((c) => c.daemon === 'containerd');
    const needDocker = selected.some((c) => c.daemon === 'dockerd');
    const needPodman = selected.some((c) => c.daemon === 'podman');
    // dockerd uses the private containerd too; podman needs neither.
    if (needCtr || needDocker) {
      try {
        await env.startContainerd();
        if (needCtr) {
          const r = await env.ctr(['image', 'import', img.archive], { timeoutMs: 60000 });
          if (r.code !== 0) setup.containerd = `ctr image import failed: ${short(r.stderr)}`;
        }
      } catch (e) {
        setup.containerd = e.message;
      }
    }
    if (needDocker) {
      if (!env.containerd || env.containerd.exitCode !== null) setup.dockerd = `containerd is not running: ${setup.containerd}`;
      else {
        try {
          await env.startDockerd();
          const r = await env.docker(['load', '-i', img.archive], { timeoutMs: 60000 });
          if (r.code !== 0) setup.dockerd = `docker load failed: ${short(r.stderr)}`;
        } catch (e) {
          setup.dockerd = e.message;
        }
      }
    }
    if (needPodman) {
      try {
        await env.podman.start(img.archive);
      } catch (e) {
        setup.podman = e.message;
      }
    }
    const versions = [
      env.containerd ? (await run(['containerd', '--version'])).stdout.trim() : '',
      env.dockerd ? `dockerd ${(await env.docker(['version', '--format', '{{.Server.Version}} (client {{.Client.Version}})'])).stdout.trim()}` : '',
      needPodman && !setup.podman ? await env.podman.version() : '',
      needRuntime ? `runtime ${runtime}: ${(await run([runtime, '--version'])).stdout.trim().split('\n')[0]}` : '',
      // containerd's shims answer -v with their version; one that does not still gets tested.
      needShim && !setup.shim ? `shim ${shim}: ${short((await run([shim, '-v'], { timeoutMs: 5000 })).stdout.trim().split('\n').slice(0, 2).join(' '), 120) || '(no -v output)'}` : '',
    ].filter(Boolean);
    for (const v of versions) log(v);
    log(`setup took ${((Date.now() - started) / 1000).toFixed(1)} s; image ${IMAGE_REF}`);
  }

  const casesStarted = Date.now(); // the budget leaves out apt-get and daemon start-up
  for (const c of selected) {
    if (interrupted) break;
    const t0 = Date.now();
    if (t0 - casesStarted > BUDGET_MS) {
      results.push({ c, result: 'SKIP', detail: `not run: the suite's ${BUDGET_MS / 1000} s budget was used up by earlier cases` });
      continue;
    }
    const why = setup[c.daemon] ?? (c.needs ? setup[c.needs] : null);
    if (why) {
      // A daemon that could not be installed is an environment gap (skipped); one that was
      // installed but did not start or take the image is a failure someone must look at.
      const skipped = why.startsWith('skipped: ');
      results.push({ c, result: skipped ? 'SKIP' : 'FAIL', detail: skipped ? why.slice(9) : `setup: ${why}` });
      continue;
    }
    const t = new Ctx(env);
    let result = 'PASS';
    let detail = '';
    try {
      let timer;
      const timeout = new Promise((_, rej) => { timer = setTimeout(() => rej(new Failure(`case timed out after ${CASE_TIMEOUT_MS / 1000} s`)), CASE_TIMEOUT_MS); });
      try {
        detail = (await Promise.race([c.run(t), timeout])) ?? '';
      } finally {
        clearTimeout(timer);
      }
    } catch (e) {
      if (e instanceof Skip) { result = 'SKIP'; detail = e.message; }
      else { result = 'FAIL'; detail = e instanceof Failure ? e.message : `error: ${e.stack}`; }
    } finally {
      await t.cleanup();
    }
    if (t.notes.length) detail = [detail, ...t.notes].filter(Boolean).join('; ');
    results.push({ c, result, detail: `${detail} (${((Date.now() - t0) / 1000).toFixed(1)} s)` });
    console.error(`# ${c.id} ${result}`);
  }
} catch (e) {
  console.error(`conformance/daemons could not run: ${e.stack}`);
  exitCode = 2;
} finally {
  await cleanupOnce();
}
// On a signal, the handler reports and exits.
if (interrupted) await new Promise(() => {});

report();
console.error(`# total ${((Date.now() - started) / 1000).toFixed(1)} s against ${[needRuntime && runtime, needShim && `shim ${shim}`].filter(Boolean).join(', ')}`);
if (exitCode === 0 && results.some((r) => r.result === 'FAIL')) exitCode = 1;
process.exit(exitCode);
