/**
 * CVE-2024-21626: fds of the caller (or of the runtime itself) that reach a container process
 * give it the host's filesystem: through /proc/self/fd/N, or as a working directory set to
 * /proc/self/fd/N before the process starts. A careless caller is simulated by a shell that opens
 * fds without close-on-exec (`exec 7</ ...`) and then execs tsrun.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { processFile, readOut, tsrunDetached, tsrunWithFds, waitStatus, withSandbox, type Sandbox } from './helpers';

/** fd 7: the host's /, fd 8: the host cgroup tree, fd 9: a host directory with a marker file. */
function leakSetup(s: Sandbox): string {
  const hostDir = path.join(s.dir, 'hostdir');
  fs.mkdirSync(hostDir, { recursive: true });
  fs.writeFileSync(path.join(hostDir, 'HOSTMARK'), 'host\n');
  fs.writeFileSync(path.join(s.dir, 'HOSTMARK'), 'host\n');
  return `7</ 8</sys/fs/cgroup 9<${hostDir}`;
}

/**
 * Shell probe: lists the shell's own fds (ls runs as a child, so its directory fd is not in the
 * list; it runs in a subshell, a fork that reads the waiting parent's table: a pipe, $(…) or a
 * redirect in the shell itself would put the shell's own pipe end or saved fds in the list — a
 * false alarm seen under load) with their targets, then, from its working directory, looks for the host markers: in the
 * directory itself (cwd = fd 9) or at the sandbox's host path below it (cwd = the host's /).
 */
function probe(s: Sandbox): string[] {
  return ['sh', '-c', `echo FDLIST-BEGIN; ( ls -l /proc/$$/fd ); echo FDLIST-END; echo "CWD $(pwd)"; test -e HOSTMARK && echo BREACH-cwd-dir; test -e .${s.dir}/HOSTMARK && echo BREACH-cwd-root; for f in /proc/self/fd/*; do test -e $f${s.dir}/HOSTMARK && echo BREACH-fd-root $f; test -e $f/HOSTMARK && echo BREACH-fd-dir $f; done; echo probe-done`];
}

/** The fds the probe listed, and any fd that points at something of the host. */
function checkFds(out: string): void {
  assert.match(out, /^probe-done$/m, `probe did not run:\n${out}`);
  assert.not.match(out, /BREACH/, `host reachable:\n${out}`);
  const list = out.slice(out.indexOf('FDLIST-BEGIN'), out.indexOf('FDLIST-END'));
  const fds = [...list.matchAll(/ (\d+) -> (.*)$/gm)].map((m) => `${m[1]} ${m[2]}`);
  // Only stdio; stdout/stderr are whatever tsrun was given, stdin /dev/null (or the caller's).
  assert.equal(fds.map((f) => f.split(' ')[0]).sort(), ['0', '1', '2'], `fds in the container:\n${fds.join('\n')}`);
}

withSandbox(test, 'run: fds the caller leaked (no CLOEXEC) do not reach the container process', ['true'], (s) => {
  s.config.process.args = probe(s);
  s.writeConfig();
  const r = tsrunWithFds(s, leakSetup(s), ['run', '-b', s.bundle, s.id]);
  assert.is(r.status, 0, r.stderr);
  checkFds(r.stdout);
  assert.equal(s.leftovers(), []);
});

withSandbox(test, 'create + start: leaked fds do not reach the init, before or after start', ['true'], async (s) => {
  s.config.process.args = probe(s);
  s.writeConfig();
  const fdSetup = leakSetup(s);
  const c = tsrunDetached(s, ['create', '-b', s.bundle, s.id], fdSetup);
  assert.is(c.status, 0, c.stderr);
  // The created init itself, before it execs the user's program.
  const pid = s.state().pid;
  const initFds = fs.readdirSync(`/proc/${pid}/fd`).map((fd) => {
    try {
      return `${fd} ${fs.readlinkSync(`/proc/${pid}/fd/${fd}`)}`;
    } catch {
      return `${fd} ?`;
    }
  });
  for (const f of initFds) {
    assert.not.match(f, / (\/|\/sys\/fs\/cgroup|.*hostdir)$/, `created init holds a leaked fd: ${initFds.join(', ')}`);
  }
  const st = tsrunWithFds(s, fdSetup, ['start', s.id]);
  assert.is(st.status, 0, st.stderr);
  await waitStatus(s, 'stopped');
  checkFds(readOut(c.out));
  assert.is(s.tsrun(['delete', s.id]).status, 0);
  assert.equal(s.leftovers(), []);
});

withSandbox(test, 'exec: leaked fds do not reach the exec\'d process', ['sleep', '30'], (s) => {
  const fdSetup = leakSetup(s);
  const c = tsrunDetached(s, ['run', '-d', '-b', s.bundle, s.id]);
  assert.is(c.status, 0, c.stderr);
  const r = tsrunWithFds(s, fdSetup, ['exec', '-p', processFile(s, probe(s)), s.id]);
  assert.is(r.status, 0, r.stderr);
  checkFds(r.stdout);
  assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
  assert.equal(s.leftovers(), []);
});

withSandbox(test, 'process.cwd /proc/self/fd/N (N = 3..12: leaked and runtime-internal fds) never lands outside the rootfs', ['true'], (s) => {
  const fdSetup = leakSetup(s);
  // The same loop with an ordinary cwd runs the probe: a refusal below is about the cwd.
  s.config.process.args = probe(s);
  s.config.process.cwd = '/tmp';
  s.writeConfig();
  const plain = tsrunWithFds(s, fdSetup, ['run', '-b', s.bundle, `${s.id}-plain`]);
  assert.is(plain.status, 0, plain.stderr);
  assert.match(plain.stdout, /^CWD \/tmp$/m);
  const results: string[] = [];
  for (let n = 3; n <= 12; n++) {
    s.config.process.args = probe(s);
    s.config.process.cwd = `/proc/self/fd/${n}`;
    s.writeConfig();
    const id = `${s.id}-cwd${n}`;
    const r = tsrunWithFds(s, fdSetup, ['run', '-b', s.bundle, id]);
    // Refusing is fine; running is fine only if the process is inside (the probe finds no marker).
    assert.not.match(r.stdout, /BREACH/, `cwd /proc/self/fd/${n} reached the host:\n${r.stdout}`);
    results.push(`${n}:${r.status === 0 ? (r.stdout.match(/^CWD (.*)$/m)?.[1] ?? '?') : 'refused'}`);
    s.tsrun(['delete', '-f', id]);
  }
  console.log(`    cwd outcomes: ${results.join(' ')}`);
  assert.equal(s.leftovers(), []);
});

withSandbox(test, 'exec --cwd /proc/self/fd/7 (and process-file cwd /proc/self/fd/3..12) never lands outside the rootfs', ['sleep', '60'], (s) => {
  const fdSetup = leakSetup(s);
  const c = tsrunDetached(s, ['run', '-d', '-b', s.bundle, s.id]);
  assert.is(c.status, 0, c.stderr);
  const plain = tsrunWithFds(s, fdSetup, ['exec', '-p', processFile(s, probe(s), (p) => (p.cwd = '/tmp')), s.id]);
  assert.match(plain.stdout, /^CWD \/tmp$/m, plain.stderr);
  for (let n = 3; n <= 12; n++) {
    const r = tsrunWithFds(s, fdSetup, ['exec', '-p', processFile(s, probe(s), (p) => (p.cwd = `/proc/self/fd/${n}`)), s.id]);
    assert.not.match(r.stdout, /BREACH/, `exec cwd /proc/self/fd/${n} reached the host:\n${r.stdout}`);
  }
  // The command-line form, as in the advisory (`runc exec --cwd /proc/self/fd/7`).
  const flag = tsrunWithFds(s, fdSetup, ['exec', '--cwd', '/proc/self/fd/7', s.id, ...probe(s)]);
  assert.not.match(flag.stdout, /BREACH/, `exec --cwd reached the host:\n${flag.stdout}`);
  assert.ok(flag.status !== 0 || /^probe-done$/m.test(flag.stdout), `exec --cwd neither refused nor ran the probe: ${flag.stderr}`);
  // The same command line with an ordinary --cwd must run the probe, or a refusal above proves nothing.
  const plainFlag = tsrunWithFds(s, fdSetup, ['exec', '--cwd', '/tmp', s.id, ...probe(s)]);
  assert.match(plainFlag.stdout, /^CWD \/tmp$/m, `exec --cwd /tmp <id> <probe> does not run: ${plainFlag.stderr}`);
  assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
  assert.equal(s.leftovers(), []);
});

withSandbox(test, 'control: --preserve-fds deliberately passing the host\'s / lets the same probe see the host', ['true'], (s) => {
  fs.writeFileSync(path.join(s.dir, 'HOSTMARK'), 'host\n');
  s.config.process.args = probe(s);
  s.writeConfig();
  const r = tsrunWithFds(s, '3</', ['run', '--preserve-fds', '1', '-b', s.bundle, s.id]);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /^BREACH-fd-root \/proc\/self\/fd\/3$/m, `probe output:\n${r.stdout}`);
  assert.match(r.stdout, / 3 -> \/$/m);
  // And as a working directory (the runtime's cwd check does not apply to a later `cd`).
  s.config.process.args = ['sh', '-c', `cd /proc/self/fd/3 && ${probe(s)[2]}`];
  s.writeConfig();
  const cd2 = tsrunWithFds(s, '3</', ['run', '--preserve-fds', '1', '-b', s.bundle, `${s.id}-cd2`]);
  assert.is(cd2.status, 0, cd2.stderr);
  assert.match(cd2.stdout, /^BREACH-cwd-root$/m, `probe output:\n${cd2.stdout}`);
  assert.equal(s.leftovers(), []);
});

test.run();
