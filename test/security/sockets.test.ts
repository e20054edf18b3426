/**
 * Host-side sockets must be connected on the host. `--console-socket` and
 * `linux.seccomp.listenerPath` are paths of the caller's (host) filesystem; a runtime that connects
 * them after joining the container's namespaces resolves them in the mount namespace it joined.
 * With `linux.namespaces` `{type: mount, path: /proc/<A>/ns/mnt}`, container A (any container whose
 * mount namespace another one joins) can listen at that same path inside its own mount namespace
 * and receive B's terminal (the pty master: it reads and types on B's console) or B's seccomp
 * notify fd (it answers B's syscalls).
 *
 * The listeners are a static C probe (SOCK_PROBE): one in A at the host path, one on the host.
 * B joins A's mount and pid namespaces (A's /proc must show B's processes for its rootfs set-up)
 * and its rootfs path exists in both: on the host (B's bundle) and in A (a copy at that path), so
 * a runtime that gets the sockets right sets B up completely and the host receives the fd.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyRootfs } from '../helpers/rootfs';
import { compileProbe, installProbe, readOut, Sandbox, SOCK_PROBE, tsrunBash, waitStatus, withSandbox } from './helpers';
import { sleep, waitFor } from '../helpers/tsrun';

interface Pair {
  a: Sandbox;
  b: Sandbox;
  aPid: number;
  aOut: string;
  consolePath: string;
  seccompPath: string;
  hostOut: string;
  hostListen: (p: string) => Promise<void>;
  cleanup: () => void;
}

/**
 * Container A runs listeners at B's console and seccomp socket paths (inside A's mount namespace);
 * B's config joins A's mount and pid namespaces. The host listeners are started by hostListen().
 */
async function pair(a: Sandbox): Promise<Pair> {
  const b = new Sandbox(['sh', '-c', 'echo B-ran; sleep 1'], 'secb');
  const hostKids: ReturnType<typeof spawn>[] = [];
  try {
    const consolePath = path.join(b.dir, 'console.sock');
    const seccompPath = path.join(b.dir, 'seccomp.sock');
    installProbe(a, 'sockprobe', SOCK_PROBE);
    fs.mkdirSync(path.join(a.bundle, 'rootfs', b.bundle), { recursive: true });
    copyRootfs(path.join(a.bundle, 'rootfs', b.bundle, 'rootfs'));
    // A also offers fifos where B's state dir is: a runtime that opens them after joining A's mount
    // namespace gets that far, and sends A the pty master itself (not only a connection).
    const fakeState = path.join(a.bundle, 'rootfs', b.root, b.id);
    fs.mkdirSync(fakeState, { recursive: true });
    for (const f of ['exec.fifo', 'start.fifo']) execFileSync('mkfifo', [path.join(fakeState, f)]);
    a.config.process.args = ['sh', '-c', `/sockprobe listen ${consolePath} A & /sockprobe listen ${seccompPath} A & wait`];
    a.writeConfig();
    // Rootless: what the test made in A's rootfs is the user's (A's root), or A cannot listen there.
    a.chownToUser(path.join(a.bundle, 'rootfs'));
    const aOut = path.join(a.dir, 'a.out');
    const r = tsrunBash(a, '', ['run', '-d', '-b', a.bundle, a.id], { out: aOut });
    assert.is(r.status, 0, r.stderr);
    await waitStatus(a, 'running');
    await waitFor(() => (readOut(aOut).match(/^LISTENING A /gm) ?? []).length === 2, 10_000, `A's listeners: ${readOut(aOut)}`);
    const aPid = a.state().pid;
    for (const ns of b.config.linux.namespaces) {
      if (ns.type === 'mount') ns.path = `/proc/${aPid}/ns/mnt`;
      if (ns.type === 'pid') ns.path = `/proc/${aPid}/ns/pid`;
      // Rootless, A's namespaces belong to A's user namespace: B joins it too (as a pod's members do).
      if (ns.type === 'user' && b.user) ns.path = `/proc/${aPid}/ns/user`;
    }
    b.writeConfig();
    const hostOut = path.join(b.dir, 'host.out');
    const probe = compileProbe('sockprobe', SOCK_PROBE);
    const hostListen = async (p: string) => {
      const fd = fs.openSync(hostOut, 'a');
      // Rootless: the user's listener, which the user's runtime may connect to.
      hostKids.push(spawn(probe, ['listen', p, 'HOST'], { stdio: ['ignore', fd, fd], ...(b.user ? { uid: b.user.uid, gid: b.user.gid } : {}) }));
      fs.closeSync(fd);
      await waitFor(() => readOut(hostOut).includes(`LISTENING HOST ${p}\n`), 10_000, 'the host listener');
    };
    const cleanup = () => {
      for (const k of hostKids) k.kill('SIGKILL');
      // B lives in A's pid namespace: B first.
      b.cleanup();
    };
    return { a, b, aPid, aOut, consolePath, seccompPath, hostOut, hostListen, cleanup };
  } catch (e) {
    for (const k of hostKids) k.kill('SIGKILL');
    b.cleanup();
    throw e;
  }
}

/** What A's listeners accepted and received (any connection at all is the breach). */
function aConnections(p: Pair): string[] {
  return readOut(p.aOut).split('\n').filter((l) => /^(ACCEPTED|CONNECTION) A\b/.test(l));
}

function finish(p: Pair): void {
  p.b.tsrun(['delete', '-f', p.b.id]);
  assert.is(p.a.tsrun(['delete', '-f', p.a.id]).status, 0);
  assert.equal(p.b.leftovers(), []);
  assert.equal(p.a.leftovers(), []);
}

withSandbox(test, '--console-socket is connected on the host even when the container joins another container\'s mount namespace', ['true'], async (a) => {
  const p = await pair(a);
  try {
    await p.hostListen(p.consolePath);
    p.b.config.process.terminal = true;
    p.b.writeConfig();
    const c = tsrunBash(p.b, '', ['create', '--console-socket', p.consolePath, '-b', p.b.bundle, p.b.id], { out: path.join(p.b.dir, 'b.out') });
    await sleep(300);
    assert.equal(aConnections(p), [], `container A received B's console connection: ${aConnections(p).join("; ")} (create ${c.status}: ${c.stderr.trim()})`);
    assert.is(c.status, 0, c.stderr);
    assert.match(readOut(p.hostOut), /^CONNECTION HOST fds=1 msg=\/dev\//m, `host listener:\n${readOut(p.hostOut)}`);
    const st = p.b.tsrun(['start', p.b.id]);
    assert.is(st.status, 0, st.stderr);
    await waitFor(() => /^PTY HOST B-ran$/m.test(readOut(p.hostOut)), 10_000, `B's output on the host's pty master: ${readOut(p.hostOut)}`);
    assert.equal(aConnections(p), []);
    finish(p);
  } finally {
    p.cleanup();
  }
});

withSandbox(test, 'linux.seccomp.listenerPath (SCMP_ACT_NOTIFY) is connected on the host even when the container joins another container\'s mount namespace', ['true'], async (a) => {
  const p = await pair(a);
  try {
    await p.hostListen(p.seccompPath);
    p.b.config.linux.seccomp = {
      defaultAction: 'SCMP_ACT_ALLOW',
      listenerPath: p.seccompPath,
      syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_NOTIFY' }],
    };
    p.b.writeConfig();
    const bOut = path.join(p.b.dir, 'b.out');
    const c = tsrunBash(p.b, '', ['create', '-b', p.b.bundle, p.b.id], { out: bOut });
    await sleep(300);
    assert.equal(aConnections(p), [], `container A received B's seccomp listener connection: ${aConnections(p).join("; ")} (create ${c.status}: ${c.stderr.trim()})`);
    assert.is(c.status, 0, c.stderr);
    // tsrun loads the filter of a no_new_privs process after `start` (runc during `create`).
    const st = p.b.tsrun(['start', p.b.id]);
    assert.is(st.status, 0, st.stderr);
    await waitFor(() => /^CONNECTION HOST fds=1 msg=\{/m.test(readOut(p.hostOut)), 10_000, `the notify fd and state on the host: ${readOut(p.hostOut)}`);
    await waitFor(() => readOut(bOut).includes('B-ran'), 10_000, `B ran: ${readOut(bOut)}`);
    assert.equal(aConnections(p), [], `container A received B's seccomp listener connection`);
    finish(p);
  } finally {
    p.cleanup();
  }
});

withSandbox(test, 'control: a connection made inside A\'s mount namespace on purpose reaches A\'s listener, one made on the host reaches the host\'s', ['true'], async (a) => {
  const p = await pair(a);
  try {
    await p.hostListen(p.consolePath);
    const probe = compileProbe('sockprobe', SOCK_PROBE);
    // What the hole does: join A's mount namespace by path, then connect to the "host" path.
    const joined = spawnSync('nsenter', [`--mount=/proc/${p.aPid}/ns/mnt`, '--', '/sockprobe', 'connect', p.consolePath, 'JOINED'], { encoding: 'utf8', timeout: 10_000 });
    assert.match(joined.stdout, /^CONNECTED JOINED$/m, joined.stdout + joined.stderr);
    // From inside A, as any of its processes would.
    const e = p.a.tsrun(['exec', p.a.id, '/sockprobe', 'connect', p.seccompPath, 'EXEC']);
    assert.is(e.status, 0, e.stderr);
    await waitFor(() => aConnections(p).length === 4, 5000, `A's listeners: ${readOut(p.aOut)}`);
    assert.equal(aConnections(p).filter((l) => l.startsWith('CONNECTION')), ['CONNECTION A fds=0 msg=probe-connect', 'CONNECTION A fds=0 msg=probe-connect']);
    // And the host's detector.
    const h = spawnSync(probe, ['connect', p.consolePath, 'HOSTSIDE'], { encoding: 'utf8', timeout: 10_000 });
    assert.match(h.stdout, /^CONNECTED HOSTSIDE$/m);
    await waitFor(() => /^CONNECTION HOST fds=0 msg=probe-connect$/m.test(readOut(p.hostOut)), 5000, readOut(p.hostOut));
    finish(p);
  } finally {
    p.cleanup();
  }
});

test.run();
