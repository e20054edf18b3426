// containerd 1.6 driving the runtime-v2 shim under test: `ctr run --runtime <absolute path>`
// (containerd 1.6 runs an absolute runtime path as the shim binary itself, no name lookup).
// The shim is SHIM (default <repo>/bin/containerd-shim-tsrun-v2); with
// SHIM=/usr/bin/containerd-shim-runc-v2 the same cases judge Debian's runc shim, which is how
// they were developed. ctr passes no runtime options for a path, so the runc shim uses its
// default runtime root /run/containerd/runc/<namespace> (the suite's cleanup removes it).
//
// What a case proves is seen on the host, not only in ctr's answers: the shim (the process
// serving the ttrpc socket of <bundle>/address) is an ancestor of the container's init (its
// parent for containerd-shim-runc-v2), the shim process goes away when its last container is
// deleted, mounts, cgroups and processes are gone afterwards, events arrive in order over
// `ctr events`.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { CTR_IMAGE_REF } from '../lib/image.mjs';
import { run, waitFor, pidAlive, nsLink, cmdline, short, sleep, children, readText } from '../lib/proc.mjs';
import { underPty, COUNTER_CMD, counter, counterFrozen, freezerState, cgroupDirs, memoryLimit, UNIFIED, exists, ctrTasks } from '../lib/common.mjs';
import { findPids } from '../lib/daemons.mjs';

const rtFlags = (e) => ['--runtime', e.shim];
// ctr's default cgroupsPath is /<namespace>/<id> (cgroupfs driver).
const cgPath = (e, id) => `/${e.ns}/${id}`;
// containerd 1.6 makes one bundle per task under <state>/io.containerd.runtime.v2.task/<ns>/<id>.
const bundleDir = (e, id) => path.join(e.tmp, 'containerd', 'state', 'io.containerd.runtime.v2.task', e.ns, id);
const ctrArgv = (e, args) => ['ctr', '--address', e.ctrdSock, '--namespace', e.ns, ...args];
const OOM_CMD = ['sh', '-c', 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo ${#x}'];

let seq = 0;
const newId = (name) => `s${name}-${++seq}`;

const tasks = ctrTasks;

// `ctr task ps` → [{ pid, info }]
async function taskPs(e, id) {
  const r = await e.ctr(['task', 'ps', id], { timeoutMs: 10000 });
  if (r.code !== 0) return { error: short(r.stderr || r.stdout), list: [] };
  const list = r.stdout.trim().split('\n').slice(1).filter(Boolean).map((l) => {
    const m = l.trim().match(/^(\d+)\s+(.*)$/);
    return m ? { pid: Number(m[1]), info: m[2] } : { pid: NaN, info: l };
  });
  return { list };
}

const ppid = (pid) => {
  const s = readText(`/proc/${pid}/stat`);
  return s === null ? null : Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
};

// pid, its parent, grandparent, … up to (not including) host pid 1.
function ancestry(pid) {
  const out = [];
  for (let p = pid; p > 1 && out.length < 16; p = ppid(p)) out.push(p);
  return out;
}

// Pids of the processes holding the listening unix socket at path (from /proc/net/unix).
function socketServers(sock) {
  const inodes = new Set();
  for (const l of (readText('/proc/net/unix') ?? '').split('\n').slice(1)) {
    const f = l.trim().split(/\s+/);
    // Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 = listening
    if (f[7] === sock && f[3] === '00010000') inodes.add(f[6]);
  }
  const out = [];
  if (!inodes.size) return out;
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    let fds = [];
    try { fds = fs.readdirSync(`/proc/${e}/fd`); } catch { continue; }
    for (const fd of fds) {
      let l;
      try { l = fs.readlinkSync(`/proc/${e}/fd/${fd}`); } catch { continue; }
      const m = l.match(/^socket:\[(\d+)\]$/);
      if (m && inodes.has(m[1])) { out.push(Number(e)); break; }
    }
  }
  return out;
}

// The shim of a running container: the process serving the ttrpc socket named in
// <bundle>/address, which must be an ancestor of the container's init (its parent for
// containerd-shim-runc-v2, a subreaper; a shim may keep a helper process in between).
// Returns { pid, chain } (chain: init … shim, as "pid(argv0)" strings), or fails the case.
function shimFor(t, id, initPid) {
  const e = t.env;
  const address = readText(path.join(bundleDir(e, id), 'address'))?.trim();
  t.ok(address, `${bundleDir(e, id)}/address is missing: containerd 1.6 needs it to reconnect after a restart`);
  const servers = socketServers(sockPath(address));
  t.ok(servers.length, `no process listens on ${address} (from ${id}'s bundle)`);
  const up = ancestry(initPid);
  const pid = servers.find((s) => up.includes(s));
  t.ok(pid, `the process(es) serving ${address} (${servers.map((s) => `${s} ${short((cmdline(s) ?? []).join(' '), 60)}`).join('; ')}) are not ancestors of init ${initPid} (ancestry ${up.join(' ← ')}): the shim must be the init's parent or, through a helper, its ancestor`);
  t.ok(pid !== e.containerd?.pid, `the ttrpc server of ${id} is containerd itself`);
  const chain = up.slice(0, up.indexOf(pid) + 1).map((p) => `${p}(${path.basename((cmdline(p) ?? ['?'])[0])})`);
  return { pid, chain, address };
}

// Mount points at or under dir (the bundle's rootfs overlay, or anything else the shim left).
const mountsUnder = (dir) => (readText('/proc/self/mountinfo') ?? '').split('\n').filter(Boolean)
  .map((l) => l.split(' ')[4].replace(/\\040/g, ' ')).filter((m) => m === dir || m.startsWith(dir + '/'));

// Everything the host still has of a container, for the leak checks.
function leftovers(e, id, pids = []) {
  const out = [];
  const alive = pids.filter((p) => p && pidAlive(p));
  if (alive.length) out.push(`processes ${alive.map((p) => `${p}(${(cmdline(p) ?? []).join(' ')})`).join(', ')}`);
  const m = mountsUnder(bundleDir(e, id));
  if (m.length) out.push(`mounts ${m.join(' ')}`);
  const cg = cgroupDirs(cgPath(e, id)).filter(exists);
  if (cg.length) out.push(`cgroups ${cg.join(' ')}`);
  if (exists(bundleDir(e, id))) out.push(`bundle dir ${bundleDir(e, id)}`);
  return out;
}

// Best-effort removal for t.defer: the task (SIGKILL), the container, a shim left running, and
// the socket of a shim that died without removing it.
async function removeTask(e, id, shimPid, addresses = []) {
  const t = (await tasks(e))[id];
  if (t) {
    await e.ctr(['task', 'kill', '-s', 'SIGKILL', id], { timeoutMs: 10000 });
    await waitFor(async () => (await tasks(e))[id]?.status !== 'RUNNING', { timeoutMs: 5000 });
    await e.ctr(['task', 'rm', '-f', id], { timeoutMs: 15000 });
  }
  await e.ctr(['container', 'rm', id], { timeoutMs: 15000 });
  if (shimPid) {
    await waitFor(() => !pidAlive(shimPid), { timeoutMs: 3000 });
    if (pidAlive(shimPid)) {
      e.log(`case cleanup: shim ${shimPid} (${(cmdline(shimPid) ?? []).join(' ')}) still running after ${id} was removed, SIGKILL`);
      try { process.kill(shimPid, 'SIGKILL'); } catch { /* gone */ }
    }
  }
  for (const a of new Set([defaultSocket(e, id), ...addresses.filter(Boolean)])) {
    if (await removeDeadSocket(a)) e.log(`case cleanup: removed the dead shim socket ${a} (${id})`);
  }
}

// For t.defer, after removeTask: whatever a faulty shim left of the container goes now, not at
// the end of the suite (processes in its cgroup, the rootfs mount, the cgroup dirs).
async function reap(e, id) {
  const dirs = cgroupDirs(cgPath(e, id)).filter(exists);
  const pids = new Set();
  for (const d of dirs) for (const p of (readText(path.join(d, 'cgroup.procs')) ?? '').split('\n').filter(Boolean)) pids.add(Number(p));
  for (const p of pids) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
  if (pids.size) e.log(`case cleanup: killed ${pids.size} process(es) left in ${cgPath(e, id)}`);
  for (const m of mountsUnder(bundleDir(e, id)).sort((a, b) => b.length - a.length)) await run(['umount', '-l', m], { timeoutMs: 10000 });
  if (dirs.length) {
    await waitFor(() => [...pids].every((p) => !pidAlive(p)), { timeoutMs: 3000 });
    for (const d of dirs) { try { fs.rmdirSync(d); } catch { /* the suite's cleanup retries */ } }
  }
}

// containerd 1.6's shim library puts a shim's ttrpc socket at
// /run/containerd/s/<sha256 of "<containerd address>/<namespace>/<id or group>">.
const defaultSocket = (e, idOrGroup) => `unix:///run/containerd/s/${crypto.createHash('sha256').update(`${e.ctrdSock}/${e.ns}/${idOrGroup}`).digest('hex')}`;
const sockPath = (address) => String(address ?? '').replace(/^unix:\/\//, '');

// A shim that died (SIGKILL, crash) cannot remove its ttrpc socket. Removes the socket file
// only if nothing listens on it any more (connect refused); true if it was removed.
async function removeDeadSocket(address) {
  const p = sockPath(address);
  try { if (!p.startsWith('/') || !fs.statSync(p).isSocket()) return false; } catch { return false; }
  const refused = await new Promise((resolve) => {
    const c = net.connect(p);
    const done = (v) => { c.destroy(); resolve(v); };
    c.once('connect', () => done(false));
    c.once('error', (err) => done(err.code === 'ECONNREFUSED'));
    setTimeout(() => done(false), 2000);
  });
  if (!refused) return false;
  try { fs.unlinkSync(p); return true; } catch { return false; }
}

// A long-running client (ctr events, a waiting ctr task exec, ctr run with a stdin pipe) as our
// own detached child: `done(ms)` resolves with { code, signal, stdout, stderr, timedOut }.
function startProc(argv, { stdin = false } = {}) {
  const child = spawn(argv[0], argv.slice(1), { stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'], detached: true });
  const p = { child, stdout: '', stderr: '', exit: null };
  child.stdout.on('data', (d) => { p.stdout += d; });
  child.stderr.on('data', (d) => { p.stderr += d; });
  child.on('error', (err) => { p.stderr += String(err); p.exit ??= { code: -1, signal: null }; });
  if (stdin) child.stdin.on('error', () => {});
  const closed = new Promise((resolve) => child.on('close', (code, signal) => { p.exit ??= { code, signal }; resolve(); }));
  p.done = async (ms = 20000) => {
    const ok = await Promise.race([closed.then(() => true), sleep(ms).then(() => false)]);
    if (!ok) p.kill();
    return { code: p.exit?.code ?? -1, signal: p.exit?.signal ?? null, stdout: p.stdout, stderr: p.stderr, timedOut: !ok, ms };
  };
  p.kill = (sig = 'SIGKILL') => { try { process.kill(-child.pid, sig); } catch { /* gone */ } };
  return p;
}

// `ctr events` in the background, parsed: [{ topic, ns, data }] of our namespace, in arrival order.
async function startEvents(t) {
  const e = t.env;
  const p = startProc(['ctr', '--address', e.ctrdSock, 'events']);
  t.defer(async () => { p.kill('SIGTERM'); await p.done(3000); });
  // Ready once a namespace label change we make comes back through the subscription.
  const mark = `m${Date.now()}${++seq}`;
  const ready = await waitFor(async () => {
    await e.ctr(['namespaces', 'label', e.ns, `conformance.events=${mark}`], { timeoutMs: 5000 });
    await sleep(100);
    return p.stdout.includes(mark);
  }, { timeoutMs: 8000, intervalMs: 200 });
  if (!ready) t.fail(`ctr events never delivered a /namespaces/update: ${short(p.stderr)}`);
  const list = () => p.stdout.split('\n').map((l) => {
    const m = l.match(/^\S+ \S+ \S+ \S+ (\S+) (\/\S+) (.*)$/);
    if (!m) return null;
    let data = null;
    try { data = JSON.parse(m[3]); } catch { data = { raw: m[3] }; }
    return { ns: m[1], topic: m[2], data };
  }).filter((x) => x && x.ns === e.ns);
  return {
    list,
    // The /tasks/* events of one container.
    tasks: (id) => list().filter((x) => x.topic.startsWith('/tasks/') && x.data?.container_id === id),
    wait: (pred, ms = 5000) => waitFor(() => list().find(pred), { timeoutMs: ms, intervalMs: 50 }),
    raw: () => p.stdout,
  };
}

const fmtEvents = (evs) => evs.map((x) => `${x.topic}${x.data?.exit_status !== undefined ? `(${x.data.exit_status})` : ''}${x.data?.id && x.data.id !== x.data.container_id ? `[${x.data.id}]` : ''}`).join(' ');

// ctr run -d; returns { pid, shim, address, chain } once the task is RUNNING: the init's host pid
// and the shim (see shimFor).
async function runDetached(t, id, cmd, extra = [], { nullIo = true } = {}) {
  const e = t.env;
  const info = { shim: null, address: null };
  t.defer(async () => { await removeTask(e, id, info.shim, [info.address]); await reap(e, id); });
  const r = await e.ctr(['run', '-d', ...(nullIo ? ['--null-io'] : []), ...rtFlags(e), ...extra, CTR_IMAGE_REF, id, ...cmd], { timeoutMs: 30000 });
  t.exit(r, 0, `ctr run -d --runtime ${e.shim}`);
  const task = await waitFor(async () => { const x = (await tasks(e))[id]; return x?.status === 'RUNNING' && x; }, { timeoutMs: 10000 });
  t.ok(task, `task ${id} not RUNNING after ctr run -d: ${JSON.stringify((await tasks(e))[id])}`);
  t.ok(pidAlive(task.pid), `task pid ${task.pid} reported by containerd is not alive on the host`);
  info.address = readText(path.join(bundleDir(e, id), 'address'))?.trim() || null;
  const s = shimFor(t, id, task.pid);
  info.shim = s.pid;
  return { pid: task.pid, shim: s.pid, address: info.address, chain: s.chain };
}

// Kill (SIGKILL), task rm, container rm, then nothing of the container may be left on the host
// and the shim that served only this container must have exited.
async function teardown(t, id, { pids = [], shim, code = 137 } = {}) {
  const e = t.env;
  t.exit(await e.ctr(['task', 'kill', '-s', 'SIGKILL', id], { timeoutMs: 15000 }), 0, 'ctr task kill -s SIGKILL');
  const st = await waitFor(async () => (await tasks(e))[id]?.status === 'STOPPED', { timeoutMs: 5000 });
  t.ok(st, `status after SIGKILL: ${JSON.stringify((await tasks(e))[id])}`);
  const rm = await e.ctr(['task', 'rm', id], { timeoutMs: 15000 });
  t.exit(rm, 0, 'ctr task rm');
  t.ok(new RegExp(`exit with non-zero exit code ${code}\\b`).test(rm.stderr), `ctr task rm did not report exit code ${code}: ${short(rm.stderr)}`);
  t.exit(await e.ctr(['container', 'rm', id], { timeoutMs: 15000 }), 0, 'ctr container rm');
  if (shim) {
    const gone = await waitFor(() => !pidAlive(shim), { timeoutMs: 5000 });
    t.ok(gone, `shim ${shim} (${(cmdline(shim) ?? []).join(' ')}) still running 5 s after its only container was deleted (Shutdown must exit it)`);
  }
  const left = await waitFor(() => leftovers(e, id, pids).length === 0, { timeoutMs: 3000 }) ? [] : leftovers(e, id, pids);
  t.eq(left.join('; '), '', `left on the host after ${id} was removed`);
}

export default [
  {
    id: 'shim.run-rm',
    scenario: 'ctr run --rm: stdout and stderr separate, exit 3, shim exits, nothing left',
    async run(t) {
      const e = t.env;
      const id = newId('rm');
      t.defer(() => removeTask(e, id));
      const pidFile = path.join(e.tmp, `${id}.pid`);
      const p = startProc(ctrArgv(e, ['run', '--rm', '--pid-file', pidFile, ...rtFlags(e), CTR_IMAGE_REF, id,
        'sh', '-c', 'echo hello-out; echo hello-err >&2; readlink /proc/self/ns/pid; sleep 0.5; exit 3']));
      // The init's parent is the shim: find it while the container runs.
      const pid = await waitFor(() => Number(readText(pidFile)) || (p.exit ? -1 : 0), { timeoutMs: 10000, intervalMs: 20 });
      // The shim, found while the container runs (the sh sleeps 0.5 s before exiting).
      let shim = null;
      let shimErr = '';
      if (pid > 0) { try { shim = shimFor(t, id, pid).pid; } catch (err) { shimErr = err.message; } }
      const r = await p.done(30000);
      t.exit(r, 3, 'ctr run --rm');
      const lines = r.stdout.trim().split('\n');
      t.eq(lines[0], 'hello-out', 'first stdout line');
      t.ok(!r.stdout.includes('hello-err'), `stderr leaked into stdout: ${short(r.stdout)}`);
      t.ok(r.stderr.includes('hello-err'), `stderr lacks hello-err: ${short(r.stderr)}`);
      t.ok(/^pid:\[\d+\]$/.test(lines[1] ?? '') && lines[1] !== nsLink('self', 'pid'), `container pid ns ${lines[1]} is the host's`);
      t.ok(pid > 0, `--pid-file ${pidFile} never got the task pid`);
      t.ok(shim > 1, `shim of ${id} not found while it ran: ${shimErr}`);
      const c = await e.ctr(['container', 'ls', '-q'], { timeoutMs: 10000 });
      t.ok(!c.stdout.split('\n').includes(id), 'container still listed after --rm');
      t.ok(!(await tasks(e))[id], 'task still listed after --rm');
      const gone = await waitFor(() => !pidAlive(shim), { timeoutMs: 5000 });
      t.ok(gone, `shim ${shim} (${(cmdline(shim) ?? []).join(' ')}) still running 5 s after ctr run --rm returned`);
      const left = await waitFor(() => leftovers(e, id, [pid]).length === 0, { timeoutMs: 3000 }) ? [] : leftovers(e, id, [pid]);
      t.eq(left.join('; '), '', 'left on the host after --rm');
      return `exit 3, streams separate, shim ${shim} gone, no mount/cgroup/bundle left`;
    },
  },
  {
    id: 'shim.run-d',
    scenario: 'ctr run -d (fifo IO, client gone): task RUNNING, pid alive, listed, under the shim; kill/rm leave nothing',
    async run(t) {
      const e = t.env;
      const id = newId('det');
      // Without --null-io: ctr hands the shim stdio fifos and exits; the shim keeps them.
      const { pid, shim, address, chain } = await runDetached(t, id, ['sleep', '1000'], [], { nullIo: false });
      // containerd 1.6 reconnects after a restart through <bundle>/address (written by `start`).
      t.ok(/^unix:\/\/\//.test(address ?? ''), `<bundle>/address must hold the unix:// address start printed: ${JSON.stringify(address)}`);
      t.ok(exists(sockPath(address)), `socket ${address} of <bundle>/address does not exist`);
      t.ok(nsLink(pid, 'pid') !== nsLink('self', 'pid'), 'task shares the host pid namespace');
      t.eq(cmdline(pid)?.join(' '), 'sleep 1000', 'init cmdline on the host');
      const ls = await e.ctr(['task', 'ls'], { timeoutMs: 10000 });
      t.ok(new RegExp(`^${id}\\s+${pid}\\s+RUNNING\\s*$`, 'm').test(ls.stdout), `ctr task ls lacks "${id} ${pid} RUNNING": ${short(ls.stdout)}`);
      const cg = readText(`/proc/${pid}/cgroup`) ?? '';
      t.ok(cg.includes(cgPath(e, id)), `init is not in cgroup ${cgPath(e, id)}: ${short(cg)}`);
      t.ok(mountsUnder(path.join(bundleDir(e, id), 'rootfs')).length > 0, `no rootfs mount at ${bundleDir(e, id)}/rootfs (the shim mounts CreateTaskRequest.rootfs)`);
      const argv = cmdline(shim) ?? [];
      await teardown(t, id, { pids: [pid], shim });
      return `init ${chain.join(' ← ')}; shim argv ${short(argv.join(' '), 140)}; ${address}; teardown clean`;
    },
  },
  {
    id: 'shim.run-tty',
    scenario: 'ctr run -t under a pty: output comes back, tty is /dev/pts/N, exit status',
    async run(t) {
      const e = t.env;
      const id = newId('tty');
      t.defer(() => removeTask(e, id));
      const r = await underPty(ctrArgv(e, ['run', '-t', '--rm', ...rtFlags(e), CTR_IMAGE_REF, id,
        'sh', '-c', 'tty; [ -t 0 ] && [ -t 1 ] && echo both-tty; echo tty-out-marker; exit 4']), undefined, 30000);
      t.exit(r, 4, 'script -qec "ctr run -t --rm ..."');
      // ctr puts the pty in raw mode and may echo a stray ^@ before the first line.
      const out = r.stdout.replace(/\r/g, '').replace(/\0/g, '');
      t.ok(/\/dev\/pts\/\d+$/m.test(out), `tty did not print a /dev/pts path: ${short(out)}`);
      t.ok(/^both-tty$/m.test(out), `stdin/stdout not a tty: ${short(out)}`);
      t.ok(/^tty-out-marker$/m.test(out), `output lost: ${short(out)}`);
      return short(out.trim().split('\n').join(' | '), 80);
    },
  },
  {
    id: 'shim.stdin',
    scenario: 'stdin piped into ctr run --rm cat and task exec cat: output equals input, cat sees EOF (CloseIO)',
    async run(t) {
      const e = t.env;
      const id = newId('stdin');
      t.defer(() => removeTask(e, id));
      // 64 KiB+ so it cannot sit in one pipe buffer, plus a line without newline at the end.
      const input = Array.from({ length: 3000 }, (_, i) => `line ${i} ${'x'.repeat(i % 40)}`).join('\n') + '\nno-newline-tail';
      // ctr 1.6 installs its CloseIO hook only after NewTask returns: EOF read before that is
      // lost and cat never ends (a ctr race, not the shim's). So stdin is written once the task
      // runs, the way an interactive user types.
      const p = startProc(ctrArgv(e, ['run', '--rm', ...rtFlags(e), CTR_IMAGE_REF, id, 'cat']), { stdin: true });
      const up = await waitFor(async () => (await tasks(e))[id]?.status === 'RUNNING' || p.exit, { timeoutMs: 10000 });
      t.ok(up === true, `task ${id} never RUNNING${p.exit ? ` (ctr exited ${p.exit.code})` : ''}: ${short(p.stderr)}`);
      await sleep(200);
      p.child.stdin.end(input);
      const r = await p.done(20000);
      t.ok(!r.timedOut, `ctr run --rm cat did not end within 20 s after stdin closed (EOF not passed on: CloseIO); got ${r.stdout.length} of ${input.length} bytes`);
      t.exit(r, 0, 'ctr run --rm cat');
      t.eq(r.stdout.length, input.length, 'bytes out vs in (run)');
      t.ok(r.stdout === input, 'output differs from input (run)');

      // The same through an exec process.
      const id2 = newId('stdinx');
      await runDetached(t, id2, ['sleep', '1000']);
      const x = startProc(ctrArgv(e, ['task', 'exec', '--exec-id', 'cat1', id2, 'cat']), { stdin: true });
      const running = await waitFor(async () => (await taskPs(e, id2)).list.length === 2 || x.exit, { timeoutMs: 10000 });
      t.ok(running === true, `exec cat never showed up in task ps${x.exit ? ` (ctr task exec exited ${x.exit.code})` : ''}: ${short(x.stderr)}`);
      await sleep(200);
      x.child.stdin.end(input);
      const rx = await x.done(20000);
      t.ok(!rx.timedOut, `ctr task exec cat did not end within 20 s after stdin closed (CloseIO for an exec); got ${rx.stdout.length} bytes`);
      t.exit(rx, 0, 'ctr task exec cat');
      t.ok(rx.stdout === input, `output differs from input (exec): ${rx.stdout.length} vs ${input.length} bytes`);
      return `${input.length} bytes round-tripped through run and exec, both ended on EOF`;
    },
  },
  {
    id: 'shim.log-uri',
    scenario: 'ctr run --log-uri file:///…: stdout and stderr land in the file, not on the client',
    async run(t) {
      const e = t.env;
      const id = newId('logf');
      t.defer(() => removeTask(e, id));
      const file = path.join(e.tmp, `${id}.log`);
      const r = await e.ctr(['run', '--rm', '--log-uri', `file://${file}`, ...rtFlags(e), CTR_IMAGE_REF, id,
        'sh', '-c', 'echo to-out-1; echo to-err >&2; echo to-out-2; exit 2'], { timeoutMs: 30000 });
      t.exit(r, 2, 'ctr run --rm --log-uri file://');
      t.ok(!/to-out|to-err/.test(r.stdout + r.stderr), `container output reached the client: ${short(r.stdout + r.stderr)}`);
      // The shim may still be flushing when ctr returns.
      const got = await waitFor(() => { const s = readText(file); return s && /to-out-2/.test(s) && /to-err/.test(s) && s; }, { timeoutMs: 5000 });
      t.ok(got, `log file ${file} lacks the output: ${JSON.stringify(readText(file))}`);
      const lines = got.trim().split('\n').sort();
      t.eq(lines.join(','), 'to-err,to-out-1,to-out-2', 'lines in the log file (order between streams not fixed)');
      t.ok(got.indexOf('to-out-1') < got.indexOf('to-out-2'), 'stdout lines out of order in the log file');
      return `${file}: ${short(got.trim().split('\n').join(' | '), 60)}`;
    },
  },
  {
    id: 'shim.log-binary',
    scenario: 'ctr run --log-uri binary:///logger?k=v&flag: the logger gets stdout on fd 3, stderr on fd 4, args k v flag "", CONTAINER_ID/CONTAINER_NAMESPACE',
    async run(t) {
      const e = t.env;
      const id = newId('logb');
      t.defer(() => removeTask(e, id));
      const out = path.join(e.tmp, `${id}.out`);
      const logger = path.join(e.tmp, `${id}-logger.sh`);
      // A logger as containerd's protocol has it: closing fd 5 says it is ready.
      fs.writeFileSync(logger, `#!/bin/sh\nprintf 'args=%s|' "$@" > ${out}.args\necho "id=$CONTAINER_ID ns=$CONTAINER_NAMESPACE" >> ${out}.args\nexec 5>&-\ncat <&3 > ${out}.1 &\ncat <&4 > ${out}.2 &\nwait\n`, { mode: 0o755 });
      const r = await e.ctr(['run', '--rm', '--log-uri', `binary://${logger}?k=v&flag`, ...rtFlags(e), CTR_IMAGE_REF, id,
        'sh', '-c', 'echo to-out; echo to-err >&2'], { timeoutMs: 30000 });
      t.exit(r, 0, 'ctr run --rm --log-uri binary://');
      const got = await waitFor(() => readText(`${out}.1`)?.includes('to-out') && readText(`${out}.2`)?.includes('to-err'), { timeoutMs: 5000 });
      t.ok(got, `logger output: stdout ${JSON.stringify(readText(`${out}.1`))}, stderr ${JSON.stringify(readText(`${out}.2`))}`);
      const args = (readText(`${out}.args`) ?? '').trim();
      t.eq(args, `args=k|args=v|args=flag|args=|id=${id} ns=${e.ns}`, 'logger arguments and environment');
      return `stdout and stderr apart; ${args}`;
    },
  },
  {
    id: 'shim.sigpipe',
    scenario: 'the container process does not inherit an ignored SIGPIPE (or any signal mask) from the shim',
    async run(t) {
      const e = t.env;
      const id = newId('sigp');
      t.defer(() => removeTask(e, id));
      const r = await e.ctr(['run', '--rm', ...rtFlags(e), CTR_IMAGE_REF, id, 'sh', '-c', 'grep -E "^Sig(Ign|Blk):" /proc/self/status'], { timeoutMs: 30000 });
      t.exit(r, 0, 'ctr run --rm');
      const ign = BigInt('0x' + (/SigIgn:\s*([0-9a-f]+)/.exec(r.stdout)?.[1] ?? 'ffffffffffffffff'));
      const blk = BigInt('0x' + (/SigBlk:\s*([0-9a-f]+)/.exec(r.stdout)?.[1] ?? 'ffffffffffffffff'));
      // Bit n-1 is signal n: SIGPIPE is 13.
      t.ok((ign & (1n << 12n)) === 0n, `SIGPIPE is ignored in the container: ${r.stdout.trim()}`);
      t.ok(blk === 0n, `signals blocked in the container: ${r.stdout.trim()}`);
      return r.stdout.trim().replace(/\n/g, ' ');
    },
  },
  {
    id: 'shim.exec',
    scenario: 'ctr task exec: output, exit status, namespaces; exec -t; 20 quick execs each with its own status',
    async run(t) {
      const e = t.env;
      const id = newId('exec');
      const { pid, shim } = await runDetached(t, id, ['sleep', '1000']);
      const r = await e.ctr(['task', 'exec', '--exec-id', 'x1', id,
        'sh', '-c', 'echo exec-out; echo exec-err >&2; readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt; tr "\\0" " " < /proc/1/cmdline; exit 5'], { timeoutMs: 30000 });
      t.exit(r, 5, 'ctr task exec');
      const [out, pidns, mntns, init] = r.stdout.trim().split('\n');
      t.eq(out, 'exec-out', 'exec stdout');
      t.ok(r.stderr.includes('exec-err') && !r.stdout.includes('exec-err'), `exec stderr: ${short(r.stderr)}`);
      t.eq(pidns, nsLink(pid, 'pid'), 'exec pid ns vs init pid ns');
      t.eq(mntns, nsLink(pid, 'mnt'), 'exec mnt ns vs init mnt ns');
      t.eq(init?.trim(), 'sleep 1000', '/proc/1 seen by exec');

      const tty = await underPty(ctrArgv(e, ['task', 'exec', '-t', '--exec-id', 'xt', id, 'sh', '-c', 'tty; [ -t 0 ] && [ -t 1 ] && echo both-tty; exit 6']), undefined, 30000);
      t.exit(tty, 6, 'script -qec "ctr task exec -t ..."');
      const tout = tty.stdout.replace(/\r/g, '').replace(/\0/g, '');
      t.ok(/\/dev\/pts\/\d+$/m.test(tout), `exec -t: tty did not print a /dev/pts path: ${short(tout)}`);
      t.ok(/^both-tty$/m.test(tout), `exec -t: stdin/stdout not a tty: ${short(tout)}`);

      const t0 = Date.now();
      const bad = [];
      for (let n = 1; n <= 20; n++) {
        const q = await e.ctr(['task', 'exec', '--exec-id', `q${n}`, id, 'sh', '-c', `exit ${n}`], { timeoutMs: 15000 });
        if (q.code !== n) bad.push(`q${n}: exit ${q.code}${q.timedOut ? ' (timeout)' : ''} ${short(q.stderr, 80)}`);
      }
      const ms = Date.now() - t0;
      t.eq(bad.join('; '), '', 'quick execs with the wrong exit status');
      // Every exec was reaped: only the init is left, and the shim has no zombie children.
      const ps = await taskPs(e, id);
      t.eq(ps.list.map((x) => x.pid).join(','), String(pid), 'ctr task ps after the execs (only the init)');
      const descendants = (p) => children(p).flatMap((c) => [c, ...descendants(c)]);
      const zombies = descendants(shim).filter((c) => (readText(`/proc/${c}/stat`) ?? '').match(/\) Z /));
      t.eq(zombies.join(','), '', `zombie descendants of shim ${shim}`);
      t.exit(await e.ctr(['task', 'exec', '--exec-id', 'q1', id, 'true'], { timeoutMs: 15000 }), 0, 'exec id q1 reused after the first q1 ended');
      return `exit 5 + streams + same ns; exec -t on ${tout.match(/\/dev\/pts\/\d+/)?.[0]}; 20 execs in ${ms} ms (${Math.round(ms / 20)} ms each)`;
    },
  },
  {
    id: 'shim.ps',
    scenario: 'ctr task ps: the init and an exec\'d sleep (host pids, ExecID in the info column)',
    async run(t) {
      const e = t.env;
      const id = newId('ps');
      const { pid } = await runDetached(t, id, ['sleep', '1000']);
      const x = startProc(ctrArgv(e, ['task', 'exec', '--exec-id', 'sl', id, 'sleep', '1003']));
      t.defer(async () => { x.kill(); await x.done(2000); });
      let ps;
      await waitFor(async () => { ps = await taskPs(e, id); return ps.list.length === 2 || x.exit; }, { timeoutMs: 10000 });
      t.ok(ps.list.length === 2, `task ps did not list 2 processes: ${JSON.stringify(ps)} ${short(x.stderr)}`);
      const other = ps.list.find((p) => p.pid !== pid);
      t.ok(ps.list.some((p) => p.pid === pid), `init ${pid} not in task ps: ${JSON.stringify(ps.list)}`);
      t.eq(cmdline(other.pid)?.join(' '), 'sleep 1003', `cmdline of the other pid ${other.pid} on the host`);
      t.eq(nsLink(other.pid, 'pid'), nsLink(pid, 'pid'), 'exec\'d sleep pid ns vs init');
      t.ok(/\bsl\b/.test(other.info), `info column of the exec'd pid lacks its exec id "sl" (Pids returns ProcessDetails{ExecID}): ${JSON.stringify(other.info)}`);
      t.exit(await e.ctr(['task', 'kill', '-s', 'SIGKILL', '--exec-id', 'sl', id], { timeoutMs: 15000 }), 0, 'ctr task kill --exec-id sl');
      const rx = await x.done(10000);
      t.exit(rx, 137, 'the waiting ctr task exec after SIGKILL of its process');
      const after = await waitFor(async () => { const l = (await taskPs(e, id)).list; return l.length === 1 && l; }, { timeoutMs: 5000 });
      t.ok(after && after[0].pid === pid, `task ps after the exec was killed: ${JSON.stringify(after)}`);
      return `init ${pid} + exec ${other.pid} (${other.info}); exec killed → 137`;
    },
  },
  {
    id: 'shim.pause-resume',
    scenario: 'ctr task pause/resume: PAUSED, counter stops, freezer FROZEN, RUNNING again; /tasks/paused, /tasks/resumed',
    async run(t) {
      const e = t.env;
      const id = newId('pause');
      const { pid } = await runDetached(t, id, COUNTER_CMD);
      t.ok(await waitFor(() => counter(pid) > 0, { timeoutMs: 5000 }), 'counter never started');
      const ev = await startEvents(t);
      t.exit(await e.ctr(['task', 'pause', id], { timeoutMs: 15000 }), 0, 'ctr task pause');
      t.eq((await tasks(e))[id]?.status, 'PAUSED', 'ctr task ls status after pause');
      t.eq(freezerState(cgPath(e, id)), 'FROZEN', `freezer state of ${cgPath(e, id)}`);
      const f = await counterFrozen(pid);
      t.ok(f.frozen, `counter moved while paused (${f.a} → ${f.b})`);
      t.exit(await e.ctr(['task', 'resume', id], { timeoutMs: 15000 }), 0, 'ctr task resume');
      t.eq((await tasks(e))[id]?.status, 'RUNNING', 'ctr task ls status after resume');
      t.eq(freezerState(cgPath(e, id)), 'THAWED', `freezer state after resume`);
      const g = await counterFrozen(pid);
      t.ok(!g.frozen && g.b > g.a, `counter did not move after resume (${g.a} → ${g.b})`);
      await ev.wait((x) => x.topic === '/tasks/resumed' && x.data?.container_id === id, 3000);
      const topics = ev.tasks(id).map((x) => x.topic);
      t.eq(topics.join(' '), '/tasks/paused /tasks/resumed', 'task events around pause/resume');
      return `frozen at ${f.a}, moving again ${g.a}→${g.b}; events ${topics.join(' ')}`;
    },
  },
  {
    id: 'shim.metrics',
    scenario: 'ctr task metrics: cgroup metrics of the task (pids, memory usage and limit, cpu) match the host cgroup',
    async run(t) {
      const e = t.env;
      const id = newId('metrics');
      const limit = 64 << 20;
      await runDetached(t, id, ['sh', '-c', 'sleep 1001 & sleep 1002 & i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; wait'], ['--memory-limit', String(limit)]);
      // Poll: the sleeps may not be forked yet when the task is reported RUNNING.
      let r;
      let m;
      await waitFor(async () => {
        r = await e.ctr(['task', 'metrics', '--format', 'json', id], { timeoutMs: 15000 });
        try { m = JSON.parse(r.stdout); return m?.pids?.current === 3; } catch { return false; }
      }, { timeoutMs: 8000, intervalMs: 200 });
      t.exit(r, 0, 'ctr task metrics --format json');
      t.ok(m, `metrics output is not JSON: ${short(r.stdout)}`);
      t.eq(m?.pids?.current, 3, 'pids.current (sh + two sleeps)');
      const cg = cgPath(e, id);
      if (UNIFIED) {
        // io.containerd.cgroups.v2.Metrics
        t.ok(m?.memory?.usage > 0, `memory.usage ${m?.memory?.usage}`);
        t.eq(m?.memory?.usage_limit, limit, 'memory.usage_limit');
        t.ok(m?.cpu?.usage_usec > 0, `cpu.usage_usec ${m?.cpu?.usage_usec}`);
      } else {
        // io.containerd.cgroups.v1.Metrics: what containerd-shim-runc-v2 returns on this host.
        const usage = m?.memory?.usage?.usage;
        const hostUsage = Number(readText(`/sys/fs/cgroup/memory${cg}/memory.usage_in_bytes`));
        t.ok(usage > 0, `memory.usage.usage ${usage}`);
        t.ok(Math.abs(usage - hostUsage) < 4 << 20, `memory.usage.usage ${usage} far from the host's memory.usage_in_bytes ${hostUsage}`);
        t.eq(m?.memory?.usage?.limit, limit, 'memory.usage.limit (--memory-limit)');
        t.eq(String(m?.memory?.usage?.limit), memoryLimit(cg), 'memory.usage.limit vs the host memory.limit_in_bytes');
        const total = m?.cpu?.usage?.total;
        t.ok(total > 0, `cpu.usage.total ${total}`);
        const percpu = (readText(`/sys/fs/cgroup/cpuacct${cg}/cpuacct.usage_percpu`) ?? '').trim().split(/\s+/).filter(Boolean);
        if (percpu.length) t.eq(m?.cpu?.usage?.per_cpu?.length, percpu.length, 'cpu.usage.per_cpu entries vs host cpuacct.usage_percpu');
        t.ok(m?.memory?.rss !== undefined || m?.memory?.cache !== undefined || m?.memory?.total_rss !== undefined, `memory.stat fields missing: ${short(JSON.stringify(m?.memory))}`);
      }
      const tab = await e.ctr(['task', 'metrics', id], { timeoutMs: 15000 });
      t.exit(tab, 0, 'ctr task metrics (table)');
      t.ok(/^pids\.current\s+3\s*$/m.test(tab.stdout), `table lacks "pids.current 3": ${short(tab.stdout)}`);
      return UNIFIED ? `v2: pids 3, memory ${m.memory.usage} B of ${m.memory.usage_limit}`
        : `v1: pids 3, memory ${m.memory.usage.usage} B limit ${m.memory.usage.limit}, cpu ${m.cpu.usage.total} ns over ${m.cpu.usage.per_cpu?.length} cpus`;
    },
  },
  {
    id: 'shim.kill',
    scenario: 'ctr task kill: SIGTERM to the init only, kill -a to all, exec SIGTERM → 143, SIGKILL → 137 (events, task rm)',
    async run(t) {
      const e = t.env;
      const id = newId('kill');
      // pid 1 of a pid namespace ignores signals it has no handler for (SIGKILL aside), so the
      // sh init survives SIGTERM while its two sleeps do not.
      const { pid, shim } = await runDetached(t, id, ['sh', '-c', 'sleep 1001 & sleep 1002 & wait; exec sleep 1003']);
      const kids = await waitFor(() => { const k = children(pid); return k.length === 2 && k; }, { timeoutMs: 5000 });
      t.ok(kids, `init ${pid} never had its two sleeps: ${children(pid)}`);
      const ev = await startEvents(t);

      t.exit(await e.ctr(['task', 'kill', '-s', 'SIGTERM', id], { timeoutMs: 15000 }), 0, 'ctr task kill -s SIGTERM');
      await sleep(300);
      t.ok(pidAlive(pid) && kids.every(pidAlive), `without -a SIGTERM must reach the init only (which ignores it): init ${pidAlive(pid)}, sleeps ${kids.map(pidAlive)}`);

      t.exit(await e.ctr(['task', 'kill', '-a', '-s', 'SIGTERM', id], { timeoutMs: 15000 }), 0, 'ctr task kill -a -s SIGTERM');
      t.ok(await waitFor(() => kids.every((k) => !pidAlive(k)), { timeoutMs: 5000 }), `kill -a: sleeps still alive: ${kids.filter(pidAlive)}`);
      t.ok(await waitFor(() => cmdline(pid)?.join(' ') === 'sleep 1003', { timeoutMs: 5000 }), `init did not go on to exec sleep 1003 after kill -a: ${cmdline(pid)}`);
      t.eq((await tasks(e))[id]?.status, 'RUNNING', 'task status after kill -a SIGTERM (init survives)');

      const x = startProc(ctrArgv(e, ['task', 'exec', '--exec-id', 'term', id, 'sleep', '1004']));
      t.defer(async () => { x.kill(); await x.done(2000); });
      t.ok(await waitFor(async () => (await taskPs(e, id)).list.length === 2 || x.exit, { timeoutMs: 10000 }) === true, `exec sleep never showed in task ps${x.exit ? ` (ctr task exec exited ${x.exit.code})` : ''}: ${short(x.stderr)}`);
      t.exit(await e.ctr(['task', 'kill', '-s', 'SIGTERM', '--exec-id', 'term', id], { timeoutMs: 15000 }), 0, 'ctr task kill -s SIGTERM --exec-id term');
      const rx = await x.done(10000);
      t.exit(rx, 143, 'ctr task exec of the process killed by SIGTERM');
      t.ok(await ev.wait((v) => v.topic === '/tasks/exit' && v.data?.container_id === id && v.data?.id === 'term'), `no /tasks/exit for exec "term": ${fmtEvents(ev.tasks(id))}`);
      const xe = ev.tasks(id).find((v) => v.topic === '/tasks/exit' && v.data?.id === 'term');
      t.eq(xe.data.exit_status, 143, '/tasks/exit exit_status of exec term');

      await teardown(t, id, { pids: [pid, ...kids], shim, code: 137 });
      const ie = await ev.wait((v) => v.topic === '/tasks/exit' && v.data?.container_id === id && v.data?.id === id);
      t.ok(ie, `no /tasks/exit for the init: ${fmtEvents(ev.tasks(id))}`);
      t.eq(ie.data.exit_status, 137, '/tasks/exit exit_status of the init after SIGKILL');
      t.eq(ie.data.pid, pid, '/tasks/exit pid of the init');
      return `TERM ignored by init, kill -a killed ${kids.join(',')}, exec → 143, init SIGKILL → 137; ${fmtEvents(ev.tasks(id))}`;
    },
  },
  {
    id: 'shim.oom',
    scenario: 'ctr run --memory-limit 32M: OOM kill → exit 137 and /tasks/oom; 512M control run is fine and has no /tasks/oom',
    async run(t) {
      const e = t.env;
      const id = newId('oom');
      const ctl = newId('oomctl');
      t.defer(() => removeTask(e, id));
      t.defer(() => removeTask(e, ctl));
      const ev = await startEvents(t);
      const r = await e.ctr(['run', '--rm', '--memory-limit', String(32 << 20), ...rtFlags(e), CTR_IMAGE_REF, id, ...OOM_CMD], { timeoutMs: 40000 });
      t.exit(r, 137, 'ctr run --memory-limit 32M (100 MB string in sh)');
      await ev.wait((x) => x.topic === '/tasks/delete' && x.data?.container_id === id, 5000);
      const evs = ev.tasks(id);
      const ooms = evs.filter((x) => x.topic === '/tasks/oom');
      t.ok(ooms.length > 0, `no /tasks/oom for ${id}: ${fmtEvents(evs)}`);
      const exitAt = evs.findIndex((x) => x.topic === '/tasks/exit' && x.data?.id === id);
      t.ok(exitAt >= 0 && evs.findIndex((x) => x.topic === '/tasks/oom') < exitAt, `/tasks/oom must come before the init's /tasks/exit: ${fmtEvents(evs)}`);
      t.eq(evs[exitAt].data.exit_status, 137, '/tasks/exit exit_status');
      // Control: the same command with room to spare succeeds, so the limit is what killed it.
      const c = await e.ctr(['run', '--rm', '--memory-limit', String(512 << 20), ...rtFlags(e), CTR_IMAGE_REF, ctl, ...OOM_CMD], { timeoutMs: 40000 });
      t.exit(c, 0, 'control run with --memory-limit 512M');
      t.eq(c.stdout.trim(), '100000000', 'control output (string length)');
      await ev.wait((x) => x.topic === '/tasks/delete' && x.data?.container_id === ctl, 5000);
      t.eq(ev.tasks(ctl).filter((x) => x.topic === '/tasks/oom').length, 0, '/tasks/oom events of the control run');
      return `exit 137, ${ooms.length} /tasks/oom before /tasks/exit; control prints 100000000`;
    },
  },
  {
    id: 'shim.events',
    scenario: 'ctr run --rm: /tasks/create, /tasks/start, /tasks/exit, /tasks/delete in that order, with pid, bundle and exit status',
    async run(t) {
      const e = t.env;
      const id = newId('ev');
      t.defer(() => removeTask(e, id));
      const ev = await startEvents(t);
      const r = await e.ctr(['run', '--rm', ...rtFlags(e), CTR_IMAGE_REF, id, 'sh', '-c', 'exit 3'], { timeoutMs: 30000 });
      t.exit(r, 3, 'ctr run --rm sh -c "exit 3"');
      await ev.wait((x) => x.topic === '/containers/delete' && x.data?.id === id, 5000);
      const evs = ev.tasks(id);
      t.eq(evs.map((x) => x.topic).join(' '), '/tasks/create /tasks/start /tasks/exit /tasks/delete', `task events of ${id}`);
      const [create, start, exit, del] = evs;
      t.ok(create.data.pid > 0, `/tasks/create pid ${create.data.pid}`);
      t.eq(create.data.bundle, bundleDir(e, id), '/tasks/create bundle');
      t.eq(start.data.pid, create.data.pid, '/tasks/start pid vs /tasks/create pid');
      t.eq(exit.data.pid, create.data.pid, '/tasks/exit pid');
      t.eq(exit.data.id, id, '/tasks/exit id (the init\'s exec id is the container id)');
      t.eq(exit.data.exit_status, 3, '/tasks/exit exit_status');
      t.ok(!Number.isNaN(Date.parse(exit.data.exited_at)) && Date.parse(exit.data.exited_at) > Date.now() - 60000, `/tasks/exit exited_at ${exit.data.exited_at}`);
      t.eq(del.data.exit_status, 3, '/tasks/delete exit_status');
      t.eq(del.data.pid, create.data.pid, '/tasks/delete pid');
      // The whole sequence as containerd publishes it, for the record.
      const all = ev.list().filter((x) => x.data?.container_id === id || x.data?.id === id || x.data?.key === id).map((x) => x.topic);
      return all.join(' ');
    },
  },
  {
    id: 'shim.containerd-restart',
    scenario: 'containerd restarted (SIGTERM, same config/state) with a task running: same shim and pid, exec, events, kill, rm work',
    async run(t) {
      const e = t.env;
      const id = newId('restart');
      const { pid, shim } = await runDetached(t, id, COUNTER_CMD);
      t.ok(await waitFor(() => counter(pid) > 0, { timeoutMs: 5000 }), 'counter never started');
      let times;
      try {
        times = await e.restartContainerd();
      } catch (err) {
        t.fail(`containerd restart: ${err.message}`);
      }
      t.ok(pidAlive(shim), `shim ${shim} died while containerd was restarted`);
      t.ok(pidAlive(pid), `init ${pid} died while containerd was restarted`);
      const task = await waitFor(async () => (await tasks(e))[id], { timeoutMs: 10000 });
      t.ok(task, `task ${id} not listed after the restart (containerd did not reconnect to the shim; its log: ${short(readText(e.containerdLog)?.split('--- restart').pop(), 400)})`);
      t.eq(task.status, 'RUNNING', 'status after the restart');
      t.eq(task.pid, pid, 'task pid after the restart');
      t.ok(ancestry(pid).includes(shim), `shim ${shim} is no longer an ancestor of init ${pid} after the restart (ancestry ${ancestry(pid).join(' ← ')})`);
      const g = await counterFrozen(pid);
      t.ok(!g.frozen, `counter stuck after the restart (${g.a} → ${g.b})`);
      const ev = await startEvents(t);
      const x = await e.ctr(['task', 'exec', '--exec-id', 'after', id, 'sh', '-c', 'echo after-restart; exit 4'], { timeoutMs: 20000 });
      t.exit(x, 4, 'ctr task exec after the restart');
      t.eq(x.stdout.trim(), 'after-restart', 'exec output after the restart');
      const ps = await taskPs(e, id);
      t.ok(ps.list.some((p) => p.pid === pid), `task ps after the restart: ${JSON.stringify(ps)}`);
      await teardown(t, id, { pids: [pid], shim });
      // Events the shim publishes after the restart reach the new containerd (a new ttrpc
      // connection to TTRPC_ADDRESS), not only those of the first.
      const ie = await ev.wait((v) => v.topic === '/tasks/exit' && v.data?.container_id === id && v.data?.id === id);
      t.ok(ie, `no /tasks/exit of the init after the restart: ${fmtEvents(ev.tasks(id))}`);
      t.eq(ie.data.exit_status, 137, '/tasks/exit exit_status after the restart');
      return `stop ${times.stoppedMs} ms, start ${times.startedMs} ms; same shim ${shim} and pid ${pid}; ${fmtEvents(ev.tasks(id))}`;
    },
  },
  {
    id: 'shim.shim-sigkill',
    scenario: 'the shim SIGKILLed: containerd cleans up (shim delete), then task rm -f / container rm; no process, mount or cgroup left',
    async run(t) {
      const e = t.env;
      const id = newId('sk');
      const { pid, shim, address } = await runDetached(t, id, ['sh', '-c', 'sleep 1001 & sleep 1002 & wait']);
      const kids = await waitFor(() => { const k = children(pid); return k.length === 2 && k; }, { timeoutMs: 5000 }) || [];
      t.ok(mountsUnder(bundleDir(e, id)).length > 0, 'no rootfs mount in the bundle before the kill');
      const ev = await startEvents(t);
      process.kill(shim, 'SIGKILL');
      t.ok(await waitFor(() => !pidAlive(shim), { timeoutMs: 5000 }), `shim ${shim} survived SIGKILL`);
      // containerd notices the closed ttrpc connection and runs `<shim> -id <id> -bundle … delete`.
      const settled = await waitFor(async () => { const s = (await tasks(e))[id]; return (!s || s.status !== 'RUNNING') && (s?.status ?? 'gone'); }, { timeoutMs: 15000, intervalMs: 200 });
      t.ok(settled, `task still RUNNING 15 s after its shim was killed: ${JSON.stringify((await tasks(e))[id])}`);
      const rm = await e.ctr(['task', 'rm', '-f', id], { timeoutMs: 15000 });
      t.ok(rm.code === 0 || /not found/.test(rm.stderr), `ctr task rm -f: exit ${rm.code} ${short(rm.stderr)}`);
      t.exit(await e.ctr(['container', 'rm', id], { timeoutMs: 15000 }), 0, 'ctr container rm');
      const clean = await waitFor(() => leftovers(e, id, [pid, ...kids]).length === 0, { timeoutMs: 5000 });
      t.eq(clean ? '' : leftovers(e, id, [pid, ...kids]).join('; '), '', `left on the host after the shim was killed and ${id} removed`);
      // Waited for, not read once: containerd may publish it after the removal returned.
      const exit = await ev.wait((x) => x.topic === '/tasks/exit' && x.data?.container_id === id);
      const evs = ev.tasks(id);
      t.ok(exit, `no /tasks/exit after the shim died: ${fmtEvents(evs)}`);
      // containerd publishes the DeleteResponse that `<shim> delete` printed (255 if it printed none).
      t.eq(exit.data.exit_status, 137, '/tasks/exit exit_status (from the shim\'s delete command)');
      t.eq(exit.data.pid, pid, '/tasks/exit pid (from the shim\'s delete command)');
      // Not asserted: containerd-shim-runc-v2 leaves it too (its delete does not remove it).
      if (address && exists(sockPath(address))) t.note(`the dead shim's socket ${address} was left behind (the case cleanup removes it)`);
      return `status after the kill: ${settled}; task rm -f: ${rm.code === 0 ? 'ok' : 'not found'}; ${fmtEvents(evs)}`;
    },
  },
  {
    id: 'shim.group',
    scenario: 'two containers with annotation io.containerd.runc.v2.group share one shim process; it outlives the first and exits after the second',
    async run(t) {
      const e = t.env;
      const group = `grp-${e.tag}-${++seq}`;
      const a = newId('ga');
      const b = newId('gb');
      const ann = ['--annotation', `io.containerd.runc.v2.group=${group}`];
      const A = await runDetached(t, a, ['sleep', '1000'], ann);
      const B = await runDetached(t, b, ['sleep', '1000'], ann);
      t.eq(B.shim, A.shim, `shim (ttrpc server) of ${b} vs ${a}: one shim for the group (${A.chain.join(' ← ')} vs ${B.chain.join(' ← ')})`);
      const addrA = readText(path.join(bundleDir(e, a), 'address'))?.trim();
      const addrB = readText(path.join(bundleDir(e, b), 'address'))?.trim();
      t.eq(addrB, addrA, 'address files of the two bundles');
      // Shim daemons of our containerd, counted by argv (containerd-shim-runc-v2 keeps
      // `-address <sock>` and `-id <first container>`); informational for other shims.
      const daemons = findPids((argv) => argv.includes(e.ctrdSock) && !argv.includes('--address') && !['start', 'delete'].includes(argv.at(-1)));
      t.note(`${daemons.length} shim process(es) pointed at our containerd: ${daemons.map((p) => short((cmdline(p) ?? []).join(' '), 100)).join(' ; ')}`);
      // Removing the first container must not take the shared shim down.
      t.exit(await e.ctr(['task', 'kill', '-s', 'SIGKILL', a], { timeoutMs: 15000 }), 0, `ctr task kill ${a}`);
      t.ok(await waitFor(async () => (await tasks(e))[a]?.status === 'STOPPED', { timeoutMs: 5000 }), `${a} not STOPPED after SIGKILL`);
      t.exit(await e.ctr(['task', 'rm', a], { timeoutMs: 15000 }), 0, `ctr task rm ${a}`);
      t.exit(await e.ctr(['container', 'rm', a], { timeoutMs: 15000 }), 0, `ctr container rm ${a}`);
      await sleep(500);
      t.ok(pidAlive(A.shim), `the shared shim ${A.shim} exited when ${a} was deleted although ${b} still runs`);
      t.eq((await tasks(e))[b]?.status, 'RUNNING', `${b} status after ${a} was removed`);
      const x = await e.ctr(['task', 'exec', '--exec-id', 'g1', b, 'sh', '-c', 'echo still-here'], { timeoutMs: 15000 });
      t.exit(x, 0, `exec in ${b} after ${a} was removed`);
      t.eq(x.stdout.trim(), 'still-here', 'exec output');
      t.eq(leftovers(e, a, [A.pid]).join('; '), '', `left of ${a}`);
      await teardown(t, b, { pids: [B.pid], shim: B.shim });
      return `one shim ${A.shim} for ${a} and ${b}; survived ${a}'s removal, exited after ${b}'s`;
    },
  },
  {
    id: 'shim.timing',
    scenario: 'for information: wall time of ctr run --rm <image> /bin/true through the shim, median of 5',
    async run(t) {
      const e = t.env;
      const ms = [];
      for (let i = 0; i < 5; i++) {
        const id = newId('true');
        t.defer(() => removeTask(e, id));
        const r = await e.ctr(['run', '--rm', ...rtFlags(e), CTR_IMAGE_REF, id, '/bin/true'], { timeoutMs: 30000 });
        t.exit(r, 0, `ctr run --rm /bin/true (#${i + 1})`);
        ms.push(r.ms);
      }
      const sorted = [...ms].sort((x, y) => x - y);
      return `median ${sorted[2]} ms (runs ${ms.join(', ')} ms)`;
    },
  },
];
