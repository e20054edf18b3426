#!/usr/bin/env node
// The whole test suite: every uvu file under test/ (each in its own process, so a crash or a hang
// in one cannot hide the others), then the conformance suite against bin/tsrun, then the cgroup v2
// subset inside the cgroup v2 VM and the systemd driver's tests in the systemd VM when ../shared/vm
// provides it. Ends with one line
// "N passed, N failed[, N skipped]" and a non-zero exit when anything failed.
//
//   npm test                      everything
//   npm test -- lifecycle spec-   only test files whose path contains one of the words
//   npm test -- systemd           the systemd driver: its test files here and the systemd VM phase
//   npm test -- security-rootless test/security/ again as the unprivileged test user (TSRUN_TEST_ROOTLESS=1)
//   TSRUN_SKIP_VM=1 npm test      without the VM parts (they are then reported as skipped)
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const node = path.join(root, 'node_modules/node/bin/node');
const filters = process.argv.slice(2);
const totals = { passed: 0, failed: 0, skipped: 0 };
const failures = [];
// What each failed file or suite printed about its failures, repeated at the end: a CI log is often read
// from its tail only, and the details sit in the middle of a 30-minute run.
const digests = [];
const stripAnsi = (t) => t.replace(/\x1b\[[0-9;]*m/g, '');
/** A suite's or VM phase's lines that say FAIL (uvu's blocks, conformance's table rows), or its last lines. */
function phaseDigest(stdout, stderr) {
  const lines = stripAnsi(stdout ?? '').split('\n');
  const failed = lines.filter((l) => /\bFAIL\b|✘/.test(l));
  return (failed.length ? failed.slice(0, 40) : [...lines.slice(-20), ...stripAnsi(stderr ?? '').split('\n').slice(-20)]).filter((l) => l.trim()).join('\n');
}
/** uvu's FAIL blocks (or, for a crash, the output's last lines), at most 40 lines. */
function failureDigest(stdout, stderr) {
  const lines = stripAnsi(stdout ?? '').split('\n');
  const at = lines.findIndex((l) => /\bFAIL\b/.test(l));
  const picked = at >= 0 ? lines.slice(at, at + 40) : [...lines.slice(-20), ...stripAnsi(stderr ?? '').split('\n').slice(-20)];
  return picked.filter((l) => l.trim()).join('\n');
}

if (process.getuid?.() !== 0) {
  console.error('tests run real containers: run them as root');
  process.exit(1);
}

function testFiles(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory() && !['helpers', 'fixtures', '.fixtures'].includes(e.name)) out.push(...testFiles(p));
    else if (e.isFile() && e.name.endsWith('.test.ts')) out.push(p);
  }
  return out.sort();
}

function run(label, cmd, args, opts = {}) {
  const started = Date.now();
  process.stdout.write(`\n=== ${label}\n`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: opts.timeout ?? 15 * 60_000, maxBuffer: 256 * 1024 * 1024, env: { ...process.env, ...opts.env } });
  process.stdout.write(r.stdout ?? '');
  process.stderr.write(r.stderr ?? '');
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  return { ...r, secs };
}

// Words match the path below test/ (not the checkout's own path: a worktree named wt-systemd
// would otherwise match every file for `npm test -- systemd`).
const matches = (f) => filters.length === 0 || filters.some((w) => path.relative(path.join(root, 'test'), f).includes(w));

function runTestFile(file, env = {}, tag = '', engine = 'node') {
  const rel = path.relative(path.join(root, 'test'), file);
  const pattern = '^' + rel.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&') + '$';
  // Bun runs a test file itself (TypeScript included; the file's test.run() starts uvu).
  const r = engine === 'bun' ? run(rel + tag, BUN, [file], { env }) : run(rel + tag, node, ['node_modules/uvu/bin.js', '-r', 'esbuild-register', 'test', pattern], { env });
  const num = (re) => Number((r.stdout.match(re) ?? [])[1] ?? 0);
  const total = num(/Total:\s+(\d+)/);
  const passed = num(/Passed:\s+(\d+)/);
  let skipped = num(/Skipped:\s+(\d+)/);
  let failed = total - passed - skipped;
  if (r.status !== 0 && failed === 0) failed = 1; // crashed, timed out, or failed outside a test
  // A file that ran no test on this host (e.g. the cgroup v2 containers here) is a skip, and says so.
  if (r.status === 0 && total === 0) {
    skipped += 1;
    console.log(`--- ${rel}: ran no test on this host (see its message above): counted as skipped`);
  }
  totals.passed += passed;
  totals.failed += failed;
  totals.skipped += skipped;
  if (failed) {
    failures.push(`${rel}${tag} (${r.signal ? `killed by ${r.signal}` : `exit ${r.status}`})`);
    digests.push(`--- ${rel}${tag}\n${failureDigest(r.stdout, r.stderr)}`);
  }
  console.log(`--- ${rel}${tag}: ${passed} passed, ${failed} failed, ${skipped} skipped in ${r.secs}s`);
}

// The test files that drive shim code in-process also run on Bun, the engine the shim ships on.
const BUN = path.join(root, 'node_modules/@oven/bun-linux-x64/bin/bun');
const ON_BUN_TOO = new Set(['shim-ttrpc.test.ts']);
for (const file of testFiles(path.join(root, 'test')).filter(matches)) {
  runTestFile(file);
  if (ON_BUN_TOO.has(path.relative(path.join(root, 'test'), file))) runTestFile(file, {}, ' (bun)', 'bun');
}

// The security suite again with every sandbox rootless (#15): tsrun run by the unprivileged test
// user (scripts/rootless-user.sh), the attack targets that user's. `npm test -- security-rootless`.
if (filters.length === 0 || filters.includes('security-rootless')) {
  for (const file of testFiles(path.join(root, 'test/security'))) runTestFile(file, { TSRUN_TEST_ROOTLESS: '1' }, ' (rootless)');
}

function countLine(out) {
  const m = out.match(/^(?:\w+:\s*)?(\d+) passed, (\d+) failed(?:, (\d+) skipped)?\s*$/m);
  return m ? { passed: +m[1], failed: +m[2], skipped: +(m[3] ?? 0) } : null;
}

/**
 * A suite script against bin/tsrun that ends with a count line; `name` goes on the failure list.
 * No count line, or a failing exit with no failure counted, is one failure.
 */
function runSuite(label, script, name, timeout) {
  const r = run(label, node, [script], { env: { RUNTIME: path.join(root, 'bin/tsrun') }, timeout });
  const c = countLine(r.stdout ?? '') ?? { passed: 0, failed: 1, skipped: 0 };
  if (r.status !== 0 && c.failed === 0) c.failed = 1;
  totals.passed += c.passed;
  totals.failed += c.failed;
  totals.skipped += c.skipped;
  if (c.failed) {
    failures.push(name);
    digests.push(`--- ${name}\n${phaseDigest(r.stdout, r.stderr)}`);
  }
}

if (filters.length === 0 || filters.includes('conformance')) runSuite('conformance (bin/tsrun)', 'conformance/run.mjs', 'conformance');

if (filters.length === 0 || filters.includes('daemons')) runSuite('containerd + dockerd with bin/tsrun (conformance/daemons)', 'conformance/daemons/run.mjs', 'conformance/daemons', 20 * 60_000);

// The VM phases: `vm` (the cgroup v2 subset in the cgroup v2 VM) and `systemd` (the systemd
// cgroup driver with real containers in the VM booted with systemd, against tsrun and runc).
const vmPhases = [
  { word: 'vm', script: 'test/cgroups-v2-vm.sh', title: 'cgroup v2 VM', what: 'the cgroup v2 code was NOT tested against a real v2 kernel', runTitle: 'cgroup v2 tests inside the cgroup v2 VM' },
  { word: 'systemd', script: 'test/systemd-vm.sh', title: 'systemd VM', what: 'the systemd cgroup driver was NOT tested against a real systemd', runTitle: 'systemd cgroup driver inside the systemd VM' },
];
for (const ph of vmPhases) {
  const vmScript = path.join(root, ph.script);
  if (!((filters.length === 0 || filters.includes(ph.word)) && fs.existsSync(vmScript))) continue;
  if (process.env.TSRUN_SKIP_VM) {
    console.log(`\n=== ${ph.title}: skipped (TSRUN_SKIP_VM set): ${ph.what}`);
    totals.skipped += 1;
    continue;
  }
  // The systemd phase runs tsrun only (the emulated guest makes each runtime ~6 min); runc, the
  // reference, with RUNTIMES="tsrun runc" npm test -- systemd.
  const env = ph.word === 'systemd' ? { RUNTIMES: process.env.RUNTIMES ?? 'tsrun' } : {};
  const r = run(ph.runTitle, 'bash', [vmScript], { timeout: 30 * 60_000, env });
  const c = countLine(r.stdout ?? '');
  if (r.status === 124 || r.status === 125) {
    console.log(`${ph.title}: infrastructure failure (exit ${r.status}); its tests did not run`);
    totals.skipped += 1;
  } else {
    const cc = c ?? { passed: 0, failed: 1, skipped: 0 };
    if (r.status !== 0 && cc.failed === 0) cc.failed = 1;
    totals.passed += cc.passed;
    totals.failed += cc.failed;
    totals.skipped += cc.skipped;
    if (cc.failed) {
      failures.push(ph.title);
      digests.push(`--- ${ph.title}\n${phaseDigest(r.stdout, r.stderr)}`);
    }
  }
}

console.log('');
if (digests.length) console.log(`what the failed test files printed about it:\n${digests.join('\n')}\n`);
if (failures.length) console.log(`failed: ${failures.join(', ')}`);
console.log(`${totals.passed} passed, ${totals.failed} failed` + (totals.skipped ? `, ${totals.skipped} skipped` : ''));
process.exit(totals.failed ? 1 : 0);
