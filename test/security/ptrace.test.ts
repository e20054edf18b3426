/**
 * A container process tracing the runtime's process in the container (CVE-2016-9962 shape): the
 * created init waiting for `start`, or an exec'd process still in tsrun-init before it execs its
 * program, holds host fds (sync socket, exec fifo) and runs with the runtime's privileges. tsrun-init
 * is not dumpable (PROTOCOL.md "Start"), so without CAP_SYS_PTRACE no ptrace attach,
 * process_vm_readv or /proc/<pid>/mem may reach it. The probe is a static C program compiled at
 * test time into the rootfs.
 */
import * as fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EXEC_FIFO, START_REPLY_FIFO } from '../../src/container/state-store';
import { DOCKER_CAPS, installProbe, processFile, PTRACE_PROBE, readOut, setCaps, tsrunDetached, waitStatus, withSandbox, type Sandbox } from './helpers';

/** Probe lines reporting access to a process that is still a tsrun-init image. */
function initAccesses(out: string): string[] {
  return out.split('\n').filter((l) => /^(ATTACH|VMREAD|MEM) \d+ exe=\S*(memfd:|tsrun-init)/.test(l));
}

function probeCaps(p: any, ptrace: boolean): void {
  setCaps(p, ptrace ? [...DOCKER_CAPS, 'CAP_SYS_PTRACE'] : DOCKER_CAPS);
}

/** A created (not started) container and the probe exec'd next to its waiting init. */
function probeCreatedInit(s: Sandbox, ptrace: boolean): string {
  installProbe(s, 'ptraceprobe', PTRACE_PROBE);
  setCaps(s.config.process, DOCKER_CAPS);
  s.writeConfig();
  const c = tsrunDetached(s, ['create', '-b', s.bundle, s.id]);
  assert.is(c.status, 0, c.stderr);
  const r = s.tsrun(['exec', '-p', processFile(s, ['/ptraceprobe', '1'], (p) => probeCaps(p, ptrace)), s.id]);
  assert.is(r.status, 0, `exec probe: ${r.stderr}`);
  assert.match(r.stdout, /^done tries=[1-9]/m, `probe output:\n${r.stdout}`);
  return r.stdout;
}

withSandbox(test, 'the created init (tsrun-init waiting for start) cannot be traced, read or its memory opened (rootless: it can, as runc\'s, and holds nothing but stdio and the two fifos)', ['sleep', '10'], (s) => {
  const out = probeCreatedInit(s, false);
  if (s.user) {
    // Rootless, a created init that joined no namespace is dumpable (runc's nsexec is too): its
    // user must be able to exec into it, and the user and the container's root are the same
    // uid with the same capabilities over the init. So a tracer reaches it, and what it reaches
    // must be the container's process only: the user's uid, no host fd but stdio and the fifos.
    assert.match(out, /^ATTACH 1 exe=\S*(memfd:|tsrun-init)/m, `probe output:\n${out}`);
    const pid = s.state().pid;
    assert.is(fs.statSync(`/proc/${pid}`).uid, s.user.uid);
    const fds = fs.readdirSync(`/proc/${pid}/fd`).map((fd) => `${fd} ${fs.readlinkSync(`/proc/${pid}/fd/${fd}`)}`);
    const allowed = (l: string) => /^[012] /.test(l) || l.endsWith(`/${s.id}/${EXEC_FIFO}`) || l.endsWith(`/${s.id}/${START_REPLY_FIFO}`);
    assert.equal(fds.filter((l) => !allowed(l)), [], `the traceable init holds more than stdio and its fifos:\n${fds.join('\n')}`);
    assert.ok(fds.some((l) => l.endsWith(EXEC_FIFO)), `the fd listing saw the exec fifo:\n${fds.join('\n')}`);
    assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
    assert.equal(s.leftovers(), []);
    return;
  }
  assert.equal(initAccesses(out), [], `probe reached the init:\n${out}`);
  assert.not.match(out, /^(ATTACH|VMREAD|MEM) 1 /m, `probe reached pid 1:\n${out}`);
  assert.match(out, /denied=[1-9]/, 'the probe tried pid 1 and was refused');
  assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
  assert.equal(s.leftovers(), []);
});

withSandbox(test, 'control: with CAP_SYS_PTRACE the same probe attaches to the created init', ['sleep', '10'], (s) => {
  const out = probeCreatedInit(s, true);
  assert.match(out, /^ATTACH 1 exe=\S*(memfd:|tsrun-init)/m, `probe output:\n${out}`);
  assert.match(out, /^MEM 1 /m);
  assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
  assert.equal(s.leftovers(), []);
});

/**
 * The probe runs (exec -d) next to a sleeping init while the host execs `program` into the
 * container `count` times; returns the probe's report.
 */
async function probeExecs(s: Sandbox, ptrace: boolean, program: string[], count: number): Promise<string> {
  installProbe(s, 'ptraceprobe', PTRACE_PROBE);
  s.config.process.args = ['sleep', '60'];
  setCaps(s.config.process, DOCKER_CAPS);
  s.writeConfig();
  const r = tsrunDetached(s, ['run', '-d', '-b', s.bundle, s.id]);
  assert.is(r.status, 0, r.stderr);
  await waitStatus(s, 'running');
  const seconds = 8;
  const p = tsrunDetached(s, ['exec', '-d', '-p', processFile(s, ['/ptraceprobe', String(seconds)], (q) => probeCaps(q, ptrace)), s.id], '', 'probe');
  assert.is(p.status, 0, p.stderr);
  // The exec'd processes get the container's ordinary capabilities (no CAP_SYS_PTRACE).
  const file = processFile(s, program, (q) => probeCaps(q, false));
  let ok = 0;
  const started = Date.now();
  let n = 0;
  for (; n < count && Date.now() - started < (seconds - 1) * 1000; n++) {
    const e = s.tsrun(['exec', '-p', file, s.id], { timeout: 10_000 });
    if (e.status === 0) ok++;
  }
  const deadline = Date.now() + 15_000;
  while (!/^done/m.test(readOut(p.out)) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
  const out = readOut(p.out);
  console.log(`    ${ok}/${n} execs; probe: ${out.match(/^done.*$/m)?.[0]}; attaches: ${out.split('\n').filter((l) => l.startsWith('ATTACH')).length}`);
  assert.ok(n >= 10 && ok >= n / 2, `only ${ok}/${n} execs succeeded`);
  assert.match(out, /^done tries=[1-9]/m, `probe output:\n${out}`);
  assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
  assert.equal(s.leftovers(), []);
  return out;
}

withSandbox(test, 'exec\'d processes cannot be traced while they are still tsrun-init (before they exec)', ['true'], async (s) => {
  const out = await probeExecs(s, false, ['sh', '-c', 'sleep 0.1'], 25);
  assert.equal(initAccesses(out), [], `probe reached a tsrun-init:\n${out}`);
  // Every other process here is dumpable with the probe's credentials: refusals are the probe
  // meeting exec'd processes while they were still tsrun-init, so the window was really probed.
  assert.match(out, /denied=[1-9]/, 'the probe never met an exec\'d process before it exec\'d');
});

withSandbox(test, 'control: the probe attaches to a process started by exec once it has exec\'d (plain dumpable target), and with CAP_SYS_PTRACE also before', ['true'], async (s) => {
  const out = await probeExecs(s, true, ['sh', '-c', 'sleep 0.1'], 25);
  assert.match(out, /^ATTACH \d+ exe=\/bin\/busybox/m, `probe output:\n${out}`);
});

test.run();
