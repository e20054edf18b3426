#!/usr/bin/env node
// Runtime-spec conformance suite, runnable against any runc-compatible runtime.
//
//   RUNTIME=/usr/sbin/runc node conformance/run.mjs [--filter <substring>]...
//
// Without RUNTIME it tests <repo>/bin/tsrun. Needs root (it runs real containers).
// Cases live in conformance/cases/*.mjs; each exports an array of
//   { id, must, ref, runcBehaviour?, knownRuncFailure?, run(t) }
// where run() throws (via t.expect/t.ok/...) to fail, and may return a short detail string.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Ctx, Failure, Skip, probeBusybox } from './lib/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.dirname(here);
const CASE_TIMEOUT_MS = 60000;

function usage(code) {
  console.log('usage: [RUNTIME=/path/to/runtime] node conformance/run.mjs [--filter <substring>]... [--list]');
  process.exit(code);
}

const filters = [];
let listOnly = false;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--filter') {
    if (argv[i + 1] === undefined) usage(2);
    filters.push(argv[++i]);
  } else if (a.startsWith('--filter=')) filters.push(a.slice('--filter='.length));
  else if (a === '--list') listOnly = true;
  else if (a === '-h' || a === '--help') usage(0);
  else usage(2);
}

const runtime = path.resolve(process.env.RUNTIME || path.join(repo, 'bin', 'tsrun'));
const isRunc = path.basename(runtime) === 'runc';

// Load every case file in name order; ids must be unique across files.
const cases = [];
const caseDir = path.join(here, 'cases');
for (const f of fs.readdirSync(caseDir).filter((f) => f.endsWith('.mjs')).sort()) {
  const mod = await import(pathToFileURL(path.join(caseDir, f)).href);
  for (const c of mod.default) {
    if (cases.some((o) => o.id === c.id)) throw new Error(`duplicate case id ${c.id} in ${f}`);
    cases.push({ ...c, file: f });
  }
}
const selected = cases.filter((c) => filters.length === 0 || filters.some((s) => c.id.includes(s)));

const mustText = (c) => c.must + (c.runcBehaviour ? ' (runc behaviour)' : '');

if (listOnly) {
  for (const c of selected) console.log(`${c.id}  ${mustText(c)}  [${c.ref}]`);
  process.exit(0);
}

if (process.getuid() !== 0) {
  console.error('conformance: must run as root (it creates real containers)');
  process.exit(2);
}
try {
  fs.accessSync(runtime, fs.constants.X_OK);
} catch {
  console.error(`conformance: runtime ${runtime} is not executable (set RUNTIME=...)`);
  process.exit(2);
}
if (selected.length === 0) {
  console.error(`conformance: no case matches ${filters.join(', ')}`);
  process.exit(2);
}

const bb = probeBusybox();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'conformance-'));
let current = null;

function onSignal(sig) {
  console.error(`\nconformance: ${sig}, cleaning up`);
  try { current?.cleanup(); } catch { /* best effort */ }
  fs.rmSync(tmp, { recursive: true, force: true });
  process.exit(130);
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

// A variable no container may inherit: process env must come from config.json only.
process.env.CONFORMANCE_HOST_ONLY = 'leaked';

const idW = Math.max(2, ...selected.map((c) => c.id.length));
const mustW = Math.min(72, Math.max(14, ...selected.map((c) => mustText(c).length)));
const row = (id, res, must, detail) => `${id.padEnd(idW)}  ${res.padEnd(6)}  ${must.padEnd(mustW)}  ${detail}`;

console.log(`runtime: ${runtime}`);
console.log(row('ID', 'RESULT', 'MUST-statement', 'detail'));
console.log(row('-'.repeat(idW), '------', '-'.repeat(mustW), '------'));

const counts = { pass: 0, fail: 0, skip: 0 };
const known = [];
const started = Date.now();
let n = 0;
for (const c of selected) {
  const dir = path.join(tmp, String(n++).padStart(3, '0'));
  const t = new Ctx({ runtime, dir, bb });
  current = t;
  let result;
  let detail = '';
  const t0 = Date.now();
  try {
    let timer;
    const timeout = new Promise((_, rej) => {
      timer = setTimeout(() => rej(new Failure(`case timed out after ${CASE_TIMEOUT_MS}ms`)), CASE_TIMEOUT_MS);
    });
    try {
      detail = (await Promise.race([c.run(t), timeout])) ?? '';
    } finally {
      clearTimeout(timer);
    }
    result = 'PASS';
  } catch (e) {
    if (e instanceof Skip) {
      result = 'SKIP';
      detail = `not run: ${e.message}`;
    } else {
      result = 'FAIL';
      detail = e instanceof Failure ? e.message : `error: ${e?.stack ?? e}`;
    }
  }
  let problems = [];
  try {
    problems = t.cleanup();
  } catch (e) {
    problems = [`cleanup error: ${e.message}`];
  }
  current = null;
  if (result === 'FAIL' && c.knownRuncFailure && isRunc) {
    detail = `[known runc failure] ${detail}`;
    known.push(c);
  }
  if (problems.length) detail += ` {cleanup: ${problems.join('; ')}}`;
  detail += ` (${Date.now() - t0}ms)`;
  counts[result.toLowerCase()]++;
  const must = mustText(c);
  console.log(row(c.id, result, must.length > mustW ? must.slice(0, mustW - 1) + '…' : must, detail.replace(/\s*\n\s*/g, ' | ')));
}
fs.rmSync(tmp, { recursive: true, force: true });

if (known.length) {
  console.log('');
  console.log('Known runc 1.1.5 failures (the runtime deviates from a MUST; see conformance/README.md):');
  for (const c of known) console.log(`  ${c.id}: ${c.knownRuncFailure}`);
}
console.log('');
console.log(`suite took ${((Date.now() - started) / 1000).toFixed(1)}s`);
console.log(`${counts.pass} passed, ${counts.fail} failed${counts.skip ? `, ${counts.skip} skipped` : ''}`);
process.exit(counts.fail ? 1 : 0);
