/**
 * What a container's runtime processes hold of the host. A created container's init (tsrun-init
 * waiting for `start`) and an exec'd process before it execs run in the container's namespaces
 * but may still hold fds opened on the host: the host's /proc (opened by stage 0 to write the
 * child's uid_map and oom_score_adj), fds a careless caller leaked without close-on-exec (above
 * fd 40 Node's spawn passes them on), ... A process of the container with CAP_SYS_PTRACE (or any
 * process once the init has exec'd, if the fd survived) reaches them as /proc/<pid>/fd/<n>/...:
 * `/proc/1/fd/<n>/<host pid>/root/` is the host's root.
 *
 * The contract checked here: a created init holds exactly fds 0, 1, 2, the exec fifo and the start
 * reply fifo (fifos in the state dir) and the preserved fds (3 .. 3+N-1); no directory fd, nothing
 * else of the host. The container process and exec'd processes hold only stdio and passed fds.
 * The attacks are static C probes (FD_PROBE) that look for a host-only sentinel (in the
 * environment of a host process, and in a host file) through every fd of the init.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  DOCKER_CAPS,
  FD_PROBE,
  IS_RUNC,
  fdTable,
  hostSentinel,
  installProbe,
  processFile,
  readOut,
  setCaps,
  showFds,
  tsrunBash,
  waitStatus,
  withSandbox,
  type FdEntry,
  type Sandbox,
} from './helpers';
import { waitFor } from '../helpers/tsrun';

/**
 * A careless caller: fds without close-on-exec pointing at the host's /, /proc, cgroup tree and
 * a host directory, low and high (Node's spawn closes neither; dash cannot open fds above 9).
 */
function leaks(s: Sandbox): string {
  const hostDir = path.join(s.dir, 'hostdir');
  fs.mkdirSync(hostDir, { recursive: true });
  return `7</ 9</proc 64</proc 100</ 300</sys/fs/cgroup 1000<${hostDir}`;
}

/**
 * The fds of `pid` that the contract does not allow: anything but stdio, the preserved fds
 * (3 .. 2+preserved) and, when `fifosOf` is given, fifos inside that container's state dir.
 * runc's created init is a Go program: its epoll instance and the runtime's wake-up pipe are
 * allowed for runc (they are not of the host's filesystem), and said so.
 */
function disallowed(pid: number, preserved: number, fifosOf?: string): FdEntry[] {
  return fdTable(pid).filter((f) => {
    if (f.fd <= 2) return f.kind === 'dir';
    if (f.fd < 3 + preserved) return false;
    if (fifosOf && f.kind === 'fifo' && f.link.startsWith(fifosOf + '/')) return false;
    if (IS_RUNC && fifosOf && /^(anon_inode:\[eventpoll\]|pipe:\[\d+\])$/.test(f.link)) return false;
    return true;
  });
}

/**
 * Waits until `pid` runs `program` (its execve is done): a pid file or "running" can come while the
 * process is still the runtime's (runc writes the pid file of `exec -d` before its init has exec'd).
 */
async function waitExeced(pid: number, program: string): Promise<void> {
  const cmd = () => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1');
    } catch {
      return '';
    }
  };
  await waitFor(() => cmd().startsWith(`${program}\0`), 10_000, `pid ${pid} to exec ${program} (cmdline ${JSON.stringify(cmd())})`);
}

function assertInitFds(s: Sandbox, id: string, preserved: number): void {
  const pid = s.state(id).pid;
  const all = fdTable(pid);
  const bad = disallowed(pid, preserved, path.join(s.root, id));
  if (IS_RUNC) console.log(`    runc's created init: ${showFds(all)} (epoll and pipes of the Go runtime allowed for runc)`);
  assert.equal(bad.map((f) => `${f.fd} -> ${f.link} (${f.kind})`), [], `the created init holds more than stdio, fifos and preserved fds: ${showFds(all)}`);
  assert.not.ok(all.some((f) => f.kind === 'dir'), `the created init holds a directory fd: ${showFds(all)}`);
  if (!IS_RUNC) {
    // Both fifos are there (else the filter above proves nothing about them).
    assert.is(all.filter((f) => f.kind === 'fifo' && f.link.startsWith(path.join(s.root, id) + '/')).length, 2, showFds(all));
  }
}

withSandbox(test, 'the created init holds only stdio, the exec and start fifos: no host /proc, no directory, none of the caller\'s leaked fds', ['sleep', '30'], async (s) => {
  const out = path.join(s.dir, 'c.out');
  const c = tsrunBash(s, leaks(s), ['create', '-b', s.bundle, s.id], { out });
  assert.is(c.status, 0, c.stderr);
  assertInitFds(s, s.id, 0);
  // Once started: the container process has stdio only.
  const st = tsrunBash(s, leaks(s), ['start', s.id]);
  assert.is(st.status, 0, st.stderr);
  await waitStatus(s, 'running');
  const pid = s.state().pid;
  await waitExeced(pid, 'sleep');
  const fds = fdTable(pid);
  assert.equal(fds.map((f) => f.fd), [0, 1, 2], `container process: ${showFds(fds)}`);
  assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
  assert.equal(s.leftovers(), []);
});

withSandbox(test, 'with --preserve-fds 2 the created init and the container process hold exactly stdio, fifos and fds 3, 4', ['sleep', '30'], async (s) => {
  const file = path.join(s.dir, 'passed-file');
  fs.writeFileSync(file, 'passed\n');
  const out = path.join(s.dir, 'c.out');
  const c = tsrunBash(s, `3</dev/null 4<${file} ${leaks(s)}`, ['create', '--preserve-fds', '2', '-b', s.bundle, s.id], { out });
  assert.is(c.status, 0, c.stderr);
  assertInitFds(s, s.id, 2);
  const st = s.tsrun(['start', s.id]);
  assert.is(st.status, 0, st.stderr);
  await waitStatus(s, 'running');
  await waitExeced(s.state().pid, 'sleep');
  const fds = fdTable(s.state().pid);
  assert.equal(fds.map((f) => f.fd), [0, 1, 2, 3, 4], `container process: ${showFds(fds)}`);
  assert.is(fds[4].link, file);
  assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
  assert.equal(s.leftovers(), []);
});

withSandbox(test, 'an exec\'d process holds only stdio (and, with --preserve-fds 1, fd 3), whatever its caller leaked', ['sleep', '30'], async (s) => {
  const out = path.join(s.dir, 'c.out');
  const c = tsrunBash(s, '', ['run', '-d', '-b', s.bundle, s.id], { out });
  assert.is(c.status, 0, c.stderr);
  await waitStatus(s, 'running');
  for (const preserve of [0, 1]) {
    const pidFile = path.join(s.dir, `exec-${preserve}.pid`);
    const e = tsrunBash(s, `3</dev/null ${leaks(s)}`, ['exec', '-d', '--pid-file', pidFile, '--preserve-fds', String(preserve), s.id, 'sleep', '30'], { out });
    assert.is(e.status, 0, e.stderr);
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    await waitExeced(pid, 'sleep');
    const fds = fdTable(pid);
    assert.equal(fds.map((f) => f.fd), preserve ? [0, 1, 2, 3] : [0, 1, 2], `exec'd process (--preserve-fds ${preserve}): ${showFds(fds)}`);
  }
  assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
  assert.equal(s.leftovers(), []);
});

// ---------------------------------------------------------------------------------------------
// Attacks: a probe with CAP_SYS_PTRACE in the container's pid namespace.

interface Target {
  sentinel: string;
  rels: string[];
  done: () => void;
}

/**
 * A host-only sentinel, twice: in the environment of a host process (read through a host /proc as
 * <pid>/environ) and in a host file (reached from any host directory by climbing: `..` from a
 * host directory stops only at the host's /).
 */
function hostTarget(s: Sandbox): Target {
  const h = hostSentinel(s);
  fs.writeFileSync(path.join(s.dir, 'HOSTMARK'), `${h.sentinel}\n`);
  return { sentinel: h.sentinel, rels: [`${h.pid}/environ`, `${'../'.repeat(16)}${s.dir.slice(1)}/HOSTMARK`], done: h.kill };
}

function probeCaps(p: any): void {
  setCaps(p, [...DOCKER_CAPS, 'CAP_SYS_PTRACE']);
}

/** `create` (with `fdSetup` and `createArgs`), then the probe exec'd next to the waiting init, looking at pid 1. */
function probeCreatedInit(s: Sandbox, fdSetup: string, createArgs: string[]): string {
  installProbe(s, 'fdprobe', FD_PROBE);
  setCaps(s.config.process, DOCKER_CAPS);
  s.writeConfig();
  const t = hostTarget(s);
  try {
    const c = tsrunBash(s, fdSetup, ['create', ...createArgs, '-b', s.bundle, s.id], { out: path.join(s.dir, 'c.out') });
    assert.is(c.status, 0, c.stderr);
    const r = s.tsrun(['exec', '-p', processFile(s, ['/fdprobe', '0', t.sentinel, '1', ...t.rels], probeCaps), s.id]);
    assert.is(r.status, 0, `exec probe: ${r.stderr}`);
    assert.match(r.stdout, /^done rounds=1 pids=1 /m, `the probe could not list pid 1's fds:\n${r.stdout}`);
    assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
    assert.equal(s.leftovers(), []);
    return r.stdout;
  } finally {
    t.done();
  }
}

withSandbox(test, 'a CAP_SYS_PTRACE process exec\'d into a created container finds nothing of the host through /proc/1/fd/*', ['sleep', '30'], (s) => {
  const out = probeCreatedInit(s, '', []);
  assert.not.match(out, /^BREACH/m, `host reached through the created init's fds:\n${out}`);
});

withSandbox(test, '… nor when the caller leaked host fds (/, /proc, cgroup tree) without close-on-exec', ['sleep', '30'], (s) => {
  const out = probeCreatedInit(s, leaks(s), []);
  assert.not.match(out, /^BREACH/m, `host reached through the created init's fds:\n${out}`);
});

withSandbox(test, 'control: the host\'s /proc passed on purpose (--preserve-fds 1, fd 3) is found by the same probe', ['sleep', '30'], (s) => {
  const out = probeCreatedInit(s, '3</proc', ['--preserve-fds', '1']);
  // Rootless, a host process's environ is out of reach whatever the runtime does: the kernel wants
  // CAP_SYS_PTRACE in the host's user namespace for a process in another one (cap_ptrace_access_check).
  // The climb to the host file is the breach there.
  if (!s.user) assert.match(out, /^BREACH 1 3 \/proc \d+\/environ /m, `probe output:\n${out}`);
  assert.match(out, /^BREACH 1 3 \/proc (\.\.\/)+/m, `probe output:\n${out}`);
});

/**
 * The probe scans every pid of a running container for `seconds` while the host execs `count`
 * short processes into it (through `fdSetup`: a careless caller leaks host fds): each exec'd process is
 * tsrun-init (stage 0's child) for a moment, holding whatever stage 0 had. `extra` runs once
 * mid-way (the control passes the host's /proc on purpose).
 */
async function probeExecs(s: Sandbox, count: number, fdSetup: string, extra?: () => void): Promise<string> {
  installProbe(s, 'fdprobe', FD_PROBE);
  setCaps(s.config.process, DOCKER_CAPS);
  s.writeConfig();
  const t = hostTarget(s);
  try {
    const out = path.join(s.dir, 'c.out');
    const c = tsrunBash(s, '', ['run', '-d', '-b', s.bundle, s.id], { out });
    assert.is(c.status, 0, c.stderr);
    await waitStatus(s, 'running');
    const seconds = 12;
    const probeOut = path.join(s.dir, 'probe.out');
    const p = tsrunBash(s, '', ['exec', '-d', '-p', processFile(s, ['/fdprobe', String(seconds), t.sentinel, '0', ...t.rels], probeCaps), s.id], { out: probeOut });
    assert.is(p.status, 0, p.stderr);
    const file = processFile(s, ['sh', '-c', 'sleep 0.05']);
    const started = Date.now();
    let ok = 0;
    let n = 0;
    for (; n < count && Date.now() - started < (seconds - 3) * 1000; n++) {
      if (n === Math.floor(count / 2) && extra) extra();
      const e = tsrunBash(s, fdSetup, ['exec', '-p', file, s.id], { timeout: 10_000 });
      if (e.status === 0) ok++;
    }
    const deadline = Date.now() + 15_000;
    while (!/^done/m.test(readOut(probeOut)) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
    const report = readOut(probeOut);
    const exes = [...new Set([...report.matchAll(/ exe=(.*)$/gm)].map((m) => m[1]))];
    console.log(`    ${ok}/${n} execs; probe: ${report.match(/^done.*$/m)?.[0]}; runtime processes seen: ${report.split('\n').filter((l) => l.startsWith('RUNTIME')).length}; images seen: ${exes.join(' ')}`);
    assert.ok(n >= 5 && ok >= n / 2, `only ${ok}/${n} execs (succeeded/tried)`);
    assert.match(report, /^done rounds=[1-9]/m, `probe output:\n${report}`);
    assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
    assert.equal(s.leftovers(), []);
    return report;
  } finally {
    t.done();
  }
}

for (const [what, fdSetup] of [['', ''], [' (caller leaking host fds)', 'leaks']] as const) {
  withSandbox(test, `exec'd processes, while still the runtime's (before they exec), hold nothing of the host a CAP_SYS_PTRACE neighbour could use${what}`, ['sleep', '60'], async (s) => {
    const report = await probeExecs(s, 30, fdSetup && leaks(s));
    assert.not.match(report, /^BREACH/m, `host reached through an exec'd process's fds:\n${report.split('\n').filter((l) => /^(BREACH|RUNTIME)/.test(l)).join('\n')}`);
    // The window was really probed: the probe met exec'd processes while they were still the
    // runtime. Rootless, it cannot even read what they are (stage 0's children are not dumpable and
    // their mm is the host user namespace's, over which the container has no CAP_SYS_PTRACE).
    assert.match(report, s.user ? /^(RUNTIME|HIDDEN) \d+/m : /^RUNTIME \d+ /m, 'the probe never saw an exec\'d process before it exec\'d');
  });
}

withSandbox(test, 'control: an exec\'d process given the host\'s /proc on purpose (--preserve-fds 1) is found by the scanning probe', ['sleep', '60'], async (s) => {
  const report = await probeExecs(s, 12, '', () => {
    const e = tsrunBash(s, '3</proc', ['exec', '-d', '--preserve-fds', '1', s.id, 'sleep', '4'], { out: path.join(s.dir, 'c.out') });
    assert.is(e.status, 0, e.stderr);
  });
  // Rootless: the host file reached by climbing (a host process's environ is the kernel's to refuse, above).
  assert.match(report, s.user ? /^BREACH \d+ 3 \/proc (\.\.\/)+\S+ exe=\/bin\/busybox/m : /^BREACH \d+ 3 \/proc \d+\/environ exe=\/bin\/busybox/m, `probe output:\n${report}`);
});

test.run();
