#!/usr/bin/env node
// Benchmarks, tsrun against runc measured side by side in the same run (never in unit tests):
//   - CLI start-up (`--version`, `state` of a created container)
//   - `run` of a busybox `true` container, end to end (create + start + wait + delete)
//   - create → start → delete as containerd drives it (three CLI calls)
//   - memory (VmRSS) of a created, not yet started, container init
// Usage: npm run bench [-- --iterations N]   RUNC=/usr/sbin/runc by default.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TSRUN = path.join(repo, 'bin/tsrun');
const RUNC = process.env.RUNC ?? '/usr/sbin/runc';
const itArg = process.argv.indexOf('--iterations');
const N = itArg > 0 ? Number(process.argv[itArg + 1]) : 20;
if (!fs.existsSync(RUNC)) {
  console.error(`${RUNC} not found: apt-get install runc (the benchmark compares against it)`);
  process.exit(1);
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-bench-'));
const bundle = path.join(work, 'bundle');
const rootfs = path.join(bundle, 'rootfs');
fs.mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
for (const d of ['proc', 'dev', 'sys', 'tmp']) fs.mkdirSync(path.join(rootfs, d));
fs.copyFileSync('/bin/busybox', path.join(rootfs, 'bin/busybox'));
fs.chmodSync(path.join(rootfs, 'bin/busybox'), 0o755);
for (const a of ['sh', 'true', 'sleep']) fs.symlinkSync('busybox', path.join(rootfs, 'bin', a));
execFileSync(RUNC, ['spec'], { cwd: bundle });
const cfg = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
cfg.process.terminal = false;
cfg.process.args = ['true'];
cfg.root.readonly = true;
fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(cfg));

const runtimes = { tsrun: TSRUN, runc: RUNC };
const now = () => Number(process.hrtime.bigint()) / 1e6;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
function cli(bin, rootDir, args) {
  // A created container inherits the caller's stdio (as with runc), so `create` gets none: a
  // pipe would keep spawnSync waiting until the container exits.
  const quiet = args[0] === 'create';
  const r = spawnSync(bin, ['--root', rootDir, ...args], { encoding: 'utf8', cwd: bundle, timeout: 60_000, stdio: ['ignore', quiet ? 'ignore' : 'pipe', quiet ? 'ignore' : 'pipe'] });
  if (r.status !== 0) throw new Error(`${path.basename(bin)} ${args.join(' ')}: exit ${r.status} ${r.stderr ?? ''}`);
  return r.stdout;
}

const results = [];
function measure(name, fn) {
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
}

try {
  measure('CLI start-up: --version (ms)', (rt, bin) => {
    const t = now();
    execFileSync(bin, ['--version']);
    return now() - t;
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
    });
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
