#!/usr/bin/env node
// A large but valid config.json: 300 000 annotations (~34 MB), created (and deleted) by tsrun and
// by runc, interleaved, median of N each. Target (issue 10): tsrun at most 1.5x runc.
//   node bench/big-config.mjs [--iterations N] [--annotations N]     RUNC=/usr/sbin/runc
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeBundle } from './bundle.mjs';
import { numberArg, RUNC, TSRUN } from './runtimes.mjs';

const N = numberArg('--iterations', 5);
const ANNOTATIONS = numberArg('--annotations', 300_000);
if (!fs.existsSync(RUNC)) {
  console.log(`big-config bench: NOT RUN: ${RUNC} not found`);
  process.exit(0);
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-bigcfg-'));
try {
  const bundle = path.join(work, 'bundle');
  const cfg = makeBundle(bundle, RUNC, ['sleep']);
  cfg.process.terminal = false;
  cfg.process.args = ['sleep', '100'];
  cfg.annotations = {};
  for (let i = 0; i < ANNOTATIONS; i++) cfg.annotations[`org.example.key-${i}`] = `value-${i}-${'x'.repeat(80)}`;
  const text = JSON.stringify(cfg);
  fs.writeFileSync(path.join(bundle, 'config.json'), text);

  const runtimes = { tsrun: TSRUN, runc: RUNC };
  const times = { tsrun: [], runc: [] };
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  let n = 0;
  for (let i = 0; i < N; i++) {
    for (const [name, bin] of Object.entries(runtimes)) {
      const root = path.join(work, `root-${name}`);
      const id = `big${++n}`;
      const t0 = performance.now();
      const r = spawnSync(bin, ['--root', root, 'create', '-b', bundle, id], { stdio: 'ignore', timeout: 120_000 });
      const ms = performance.now() - t0;
      spawnSync(bin, ['--root', root, 'delete', '-f', id], { stdio: 'ignore', timeout: 60_000 });
      if (r.status !== 0) throw new Error(`${name} create of the big config: exit ${r.status}`);
      times[name].push(ms);
    }
  }
  const t = median(times.tsrun);
  const r = median(times.runc);
  console.log(`create with ${ANNOTATIONS} annotations (${(text.length / 1e6).toFixed(1)} MB): tsrun ${t.toFixed(0)} ms, runc ${r.toFixed(0)} ms (medians of ${N}): ${(t / r).toFixed(2)}x  [target <= 1.5x]`);
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
