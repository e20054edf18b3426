#!/usr/bin/env node
// Benchmarks, tsrun against runc measured side by side in the same run (never in unit tests):
//   - CLI start-up (`--version`, `state` of a created container)
//   - `run` of a busybox `true` container, end to end (create + start + wait + delete)
//   - create → start → delete as containerd drives it (three CLI calls)
//   - memory (VmRSS) of a created, not yet started, container init
// and then, from extra runs with TSRUN_TRACE (src/cli/trace.ts), where each tsrun command's time
// goes: engine start, loading, parsing, validation, cgroups, spawning the init, the init's own
// set-up, waiting, the rest of the command, exit.
// Usage: npm run bench [-- --iterations N]   RUNC=/usr/sbin/runc by default; TSRUN_BIN=<launcher>
// measures another tsrun launcher (another engine) instead of bin/tsrun.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeBundle } from './bundle.mjs';
import { numberArg, RUNC, TSRUN } from './runtimes.mjs';

const N = numberArg('--iterations', 20);
if (!fs.existsSync(RUNC)) {
  console.error(`${RUNC} not found: apt-get install runc (the benchmark compares against it)`);
  process.exit(1);
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-bench-'));
const bundle = path.join(work, 'bundle');
const rootfs = path.join(bundle, 'rootfs');
const cfg = makeBundle(bundle, RUNC, ['sh', 'true', 'sleep']);
cfg.process.terminal = false;
cfg.process.args = ['true'];
cfg.root.readonly = true;
fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(cfg));

const runtimes = { tsrun: TSRUN, runc: RUNC };
const now = () => Number(process.hrtime.bigint()) / 1e6;
/** Epoch ms with sub-ms precision, the clock of a traced tsrun's timeOrigin. */
const epoch = () => performance.timeOrigin + performance.now();
// While `traceFile` is set, tsrun calls are traced and each call's wall-clock span is kept.
let traceFile = null;
const calls = [];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
function cli(bin, rootDir, args) {
  // A created container inherits the caller's stdio (as with runc), so `create` gets none: a
  // pipe would keep spawnSync waiting until the container exits.
  const quiet = args[0] === 'create';
  const env = traceFile && bin === TSRUN ? { ...process.env, TSRUN_TRACE: traceFile } : undefined;
  const start = epoch();
  const r = spawnSync(bin, ['--root', rootDir, ...args], { encoding: 'utf8', cwd: bundle, timeout: 60_000, env, stdio: ['ignore', quiet ? 'ignore' : 'pipe', quiet ? 'ignore' : 'pipe'] });
  if (env) calls.push({ pid: r.pid, command: args[0], start, end: epoch() });
  if (r.status !== 0) throw new Error(`${path.basename(bin)} ${args.join(' ')}: exit ${r.status} ${r.stderr ?? ''}`);
  return r.stdout;
}

const results = [];
const traced = [];
function measure(name, fn, { trace = true } = {}) {
  process.stderr.write(`bench: ${name}\n`);
  const row = { name };
  // Interleave the runtimes so that machine noise hits both alike.
  const samples = { tsrun: [], runc: [] };
  for (let i = 0; i < N; i++) {
    for (const [rt, bin] of Object.entries(runtimes)) {
      const v = fn(rt, bin, i);
      if (v !== undefined) samples[rt].push(v);
    }
  }
  row.tsrun = median(samples.tsrun);
  row.runc = median(samples.runc);
  results.push(row);
  // Then a few traced tsrun runs (not in the timings above: the probes cost a little).
  if (!trace) return;
  traceFile = path.join(work, 'trace.jsonl');
  fs.rmSync(traceFile, { force: true });
  calls.length = 0;
  for (let i = 0; i < TRACED; i++) fn('tsrun', TSRUN, N + i);
  const records = new Map();
  for (const line of fs.existsSync(traceFile) ? fs.readFileSync(traceFile, 'utf8').split('\n') : []) {
    if (!line) continue;
    const rec = JSON.parse(line);
    records.set(rec.pid, rec);
  }
  for (const c of calls) if (records.has(c.pid)) traced.push({ ...c, rec: records.get(c.pid) });
  traceFile = null;
}

// ---- where the time goes ----

const TRACED = Math.max(5, Math.ceil(N / 4));
const PHASES = ['engine start', 'loading', 'parsing', 'validation', 'cgroups', 'spawning the init', 'init start', 'init set-up', 'waiting', 'command', 'exit'];

/**
 * One traced call's time per phase. Each interval between two marks belongs to the phase the
 * first mark opens (a module load or a cgroup operation is a nested span); "engine start" is
 * from our spawn until the launcher's first line, "exit" from the end of the command until our
 * spawnSync returned (the event loop draining, the engine's teardown).
 */
function phasesOf({ rec, start, end }) {
  const out = Object.fromEntries(PHASES.map((p) => [p, 0]));
  const marks = rec.marks;
  const hasExit = marks.some(([l]) => l === 'recv exit');
  out['engine start'] += rec.timeOrigin - start + marks[0][1];
  let state = 'loading';
  const stack = [];
  for (let i = 0; i < marks.length - 1; i++) {
    const [label, t] = marks[i];
    const kind = label.split(' ')[0];
    if (label === 'launcher') state = 'loading';
    else if (label === 'main' || label === 'yargs loaded') state = 'parsing';
    else if (label === 'parsed' || label === 'action' || label === 'state' || label === 'spawned' || label === 'recv pid' || label === 'recv exit' || label === 'fifo-end') state = 'command';
    else if (kind === 'load') (stack.push(state), (state = 'loading'));
    else if (label === 'load-end') state = stack.pop() ?? 'command';
    else if (label === 'config') state = 'validation';
    else if (label === 'cgroup') (stack.push(state === 'validation' ? 'command' : state), (state = 'cgroups'));
    else if (label === 'cgroup-end') state = stack.pop() ?? 'command';
    else if (label === 'spawn tsrun-init') state = 'spawning the init';
    else if (kind === 'spawn') state = 'command'; // a hook
    else if (label === 'send plan') state = 'init start';
    else if (label === 'send placed' || label === 'send continue') state = 'init set-up';
    else if (label === 'recv ready') state = hasExit ? 'waiting' : 'command';
    else if (label === 'fifo') state = 'waiting';
    else if (label === 'action end') state = 'exit';
    out[state] += marks[i + 1][1] - t;
  }
  out.exit += end - (rec.timeOrigin + marks[marks.length - 1][1]);
  return out;
}

function printPhases() {
  const byCommand = new Map();
  for (const t of traced) {
    const name = t.rec.argv.includes('--version') ? '--version' : t.command;
    if (!byCommand.has(name)) byCommand.set(name, []);
    byCommand.get(name).push({ phases: phasesOf(t), total: t.end - t.start });
  }
  const cols = ['engine start', 'loading', 'parsing', 'validation', 'cgroups', 'spawning the init', 'init start', 'init set-up', 'waiting', 'command', 'exit'];
  const short = { 'engine start': 'engine', loading: 'load', parsing: 'parse', validation: 'valid', cgroups: 'cgroup', 'spawning the init': 'spawn', 'init start': 'init0', 'init set-up': 'init1', waiting: 'wait', command: 'other', exit: 'exit' };
  console.log(`\nwhere tsrun's time goes (ms, median of ${TRACED} traced calls per command; TSRUN_TRACE, src/cli/trace.ts)`);
  console.log('  engine: exec until the launcher runs   load: bundle, chunks, validators, builtins loaded on use');
  console.log('  parse: argv   valid: config.json read and checked   cgroup: cgroup file operations');
  console.log('  spawn: spawn() of tsrun-init   init0: its exec until it reports the container pid (plan read, clone)');
  console.log('  init1: placed until ready (mounts, pivot, …)   wait: for the container (run) or its exec (start)');
  console.log('  other: the rest of the command   exit: event loop drain and engine teardown');
  console.log('  (`state` and `--version` are answered by bin/tsrun\'s front door, addon/cli/front.cpp, without an engine: no trace)');
  console.log('command'.padEnd(12) + cols.map((c) => short[c].padStart(7)).join('') + 'total'.padStart(8));
  for (const [name, rows] of byCommand) {
    const cells = cols.map((c) => median(rows.map((r) => r.phases[c])));
    console.log(name.padEnd(12) + cells.map((v) => v.toFixed(1).padStart(7)).join('') + median(rows.map((r) => r.total)).toFixed(1).padStart(8));
  }
}

try {
  measure('CLI start-up: --version (ms)', (rt, bin) => {
    const env = traceFile && bin === TSRUN ? { ...process.env, TSRUN_TRACE: traceFile } : undefined;
    const start = epoch();
    const t = now();
    const r = spawnSync(bin, ['--version'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const d = now() - t;
    if (env) calls.push({ pid: r.pid, command: '--version', start, end: epoch() });
    return d;
  });
  measure('run of `true`, end to end (ms)', (rt, bin, i) => {
    const rootDir = path.join(work, `root-${rt}`);
    const t = now();
    cli(bin, rootDir, ['run', '--bundle', bundle, `run-${i}`]);
    return now() - t;
  });
  measure('create + start + delete, 3 CLI calls (ms)', (rt, bin, i) => {
    const rootDir = path.join(work, `root-${rt}`);
    const id = `csd-${i}`;
    const t = now();
    cli(bin, rootDir, ['create', '--bundle', bundle, id]);
    cli(bin, rootDir, ['start', id]);
    const d = now() - t;
    for (let k = 0; k < 200 && JSON.parse(cli(bin, rootDir, ['state', id])).status !== 'stopped'; k++);
    const t2 = now();
    cli(bin, rootDir, ['delete', id]);
    return d + (now() - t2);
  });
  const rss = { tsrun: [], runc: [] };
  measure('state of a created container (ms)', (rt, bin, i) => {
    const rootDir = path.join(work, `root-${rt}`);
    const id = `st-${i}`;
    cli(bin, rootDir, ['create', '--bundle', bundle, id]);
    const pid = JSON.parse(cli(bin, rootDir, ['state', id])).pid;
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    rss[rt].push(Number(m[1]) / 1024);
    const t = now();
    cli(bin, rootDir, ['state', id]);
    const d = now() - t;
    cli(bin, rootDir, ['delete', '--force', id]);
    return d;
  });
  results.push({ name: 'RSS of a created, waiting init (MiB)', tsrun: median(rss.tsrun), runc: median(rss.runc) });

  // Per-syscall cost under a Docker-default-like seccomp profile: default ERRNO, an allow-list
  // of every x86_64 syscall but Docker's denied ones, the measured one (getppid) in the middle.
  // A static probe times 2e6 raw getppid calls inside the container and prints ns per call.
  const probeSrc = path.join(work, 'loop.c');
  fs.writeFileSync(probeSrc, `#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(void) { struct timespec a, b; long n = 2000000; clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; i++) syscall(SYS_getppid); clock_gettime(CLOCK_MONOTONIC, &b);
  printf("%.2f\\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n); return 0; }
`);
  execFileSync('cc', ['-O2', '-static', '-o', path.join(rootfs, 'bin/loop'), probeSrc]);
  const names = fs.readFileSync('/usr/include/x86_64-linux-gnu/asm/unistd_64.h', 'utf8').match(/__NR_(\w+)/g).map((n) => n.slice(5));
  const denied = new Set(['acct', 'add_key', 'bpf', 'clock_adjtime', 'clock_settime', 'create_module', 'delete_module', 'finit_module', 'get_kernel_syms', 'get_mempolicy', 'init_module', 'ioperm', 'iopl', 'kcmp', 'kexec_file_load', 'kexec_load', 'keyctl', 'lookup_dcookie', 'mbind', 'mount', 'move_pages', 'nfsservctl', 'open_by_handle_at', 'perf_event_open', 'personality', 'pivot_root', 'process_vm_readv', 'process_vm_writev', 'ptrace', 'query_module', 'quotactl', 'reboot', 'request_key', 'set_mempolicy', 'setns', 'settimeofday', 'swapon', 'swapoff', 'sysfs', '_sysctl', 'umount2', 'unshare', 'uselib', 'userfaultfd', 'ustat', 'vm86', 'vm86old']);
  const allowed = names.filter((n) => !denied.has(n));
  const seccompCfg = { ...cfg, process: { ...cfg.process, args: ['/bin/loop'] } };
  for (const [label, seccomp] of [['no seccomp', undefined], ['Docker-like profile', { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 1, architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'], syscalls: [{ names: allowed, action: 'SCMP_ACT_ALLOW' }] }]]) {
    const c = structuredClone(seccompCfg);
    if (seccomp) c.linux.seccomp = seccomp;
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(c));
    measure(`getppid in a container, ${label} (ns/call)`, (rt, bin, i) => {
      const rootDir = path.join(work, `root-${rt}`);
      return Number(cli(bin, rootDir, ['run', '--bundle', bundle, `sc-${label.length}-${i}`]).trim());
    }, { trace: false });
  }
} finally {
  for (const [rt, bin] of Object.entries(runtimes)) {
    const rootDir = path.join(work, `root-${rt}`);
    if (!fs.existsSync(rootDir)) continue;
    for (const id of fs.readdirSync(rootDir)) spawnSync(bin, ['--root', rootDir, 'delete', '--force', id]);
  }
  fs.rmSync(work, { recursive: true, force: true });
}

console.log(`\ntsrun vs ${RUNC} (${execFileSync(RUNC, ['--version'], { encoding: 'utf8' }).split('\n')[0]}), median of ${N}, same machine, interleaved\n`);
console.log('benchmark'.padEnd(46) + 'tsrun'.padStart(10) + 'runc'.padStart(10) + '   tsrun/runc');
for (const r of results) {
  console.log(r.name.padEnd(46) + r.tsrun.toFixed(1).padStart(10) + r.runc.toFixed(1).padStart(10) + `   ${(r.tsrun / r.runc).toFixed(2)}×`);
}
printPhases();
