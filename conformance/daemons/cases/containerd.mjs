// containerd 1.6 + containerd-shim-runc-v2 driving the runtime under test via ctr's
// --runc-binary (the shim's BinaryName option) and --runc-root (its Root option, so the
// runtime's state lives in our temp dir). Each case uses its own container id and removes it.

import path from 'node:path';
import { CTR_IMAGE_REF } from '../lib/image.mjs';
import { waitFor, pidAlive, nsLink, cmdline, short, sleep, children } from '../lib/proc.mjs';
import { underPty, COUNTER_CMD, counter, counterFrozen, freezerState, runtimeState, exists, cgroupDirs, ctrTasks } from '../lib/common.mjs';

const rtFlags = (e) => ['--runc-binary', e.runtime, '--runc-root', e.runcRoot];
// The shim runs the runtime with --root <runc-root>/<namespace>.
const rtRoot = (e) => path.join(e.runcRoot, e.ns);
// ctr's default cgroupsPath is /<namespace>/<id> (cgroupfs driver).
const cgPath = (e, id) => `/${e.ns}/${id}`;

let seq = 0;
const newId = (name) => `${name}-${++seq}`;

const tasks = ctrTasks;

async function removeTask(e, id) {
  await e.ctr(['task', 'kill', '-s', 'SIGKILL', id], { timeoutMs: 10000 });
  await waitFor(async () => (await tasks(e))[id]?.status !== 'RUNNING', { timeoutMs: 5000 });
  await e.ctr(['task', 'rm', '-f', id], { timeoutMs: 15000 });
  await e.ctr(['container', 'rm', id], { timeoutMs: 15000 });
}

// ctr run -d; returns the init's host pid once the task is RUNNING.
async function runDetached(t, id, cmd, extra = []) {
  const e = t.env;
  t.defer(() => removeTask(e, id));
  // --null-io: a detached task keeps no pipes to this short-lived ctr process.
  const r = await e.ctr(['run', '-d', '--null-io', ...rtFlags(e), ...extra, CTR_IMAGE_REF, id, ...cmd], { timeoutMs: 30000 });
  t.exit(r, 0, 'ctr run -d');
  const task = await waitFor(async () => { const x = (await tasks(e))[id]; return x?.status === 'RUNNING' && x; }, { timeoutMs: 10000 });
  t.ok(task, `task ${id} not RUNNING after ctr run -d: ${JSON.stringify((await tasks(e))[id])}`);
  t.ok(pidAlive(task.pid), `task pid ${task.pid} reported by containerd is not alive on the host`);
  return task.pid;
}

export default [
  {
    id: 'ctr.run-rm',
    scenario: 'ctr run --rm: output and exit status come back, container removed',
    async run(t) {
      const e = t.env;
      const id = newId('rm');
      t.defer(() => removeTask(e, id));
      const hostPidNs = nsLink('self', 'pid');
      const r = await e.ctr(['run', '--rm', ...rtFlags(e), CTR_IMAGE_REF, id,
        'sh', '-c', 'echo hello-out; echo hello-err >&2; readlink /proc/self/ns/pid; exit 3'], { timeoutMs: 30000 });
      t.exit(r, 3, 'ctr run --rm');
      const lines = r.stdout.trim().split('\n');
      t.eq(lines[0], 'hello-out', 'first stdout line');
      t.ok(r.stderr.includes('hello-err'), `stderr lacks hello-err: ${short(r.stderr)}`);
      t.ok(/^pid:\[\d+\]$/.test(lines[1]) && lines[1] !== hostPidNs, `container pid ns ${lines[1]} is the host's (${hostPidNs})`);
      const c = await e.ctr(['container', 'ls', '-q'], { timeoutMs: 10000 });
      t.ok(!c.stdout.split('\n').includes(id), 'container still listed after --rm');
      const st = await runtimeState(e, rtRoot(e), id);
      t.ok(st.error, `runtime still has state for ${id} after --rm: ${JSON.stringify(st)}`);
      return 'exit 3, stdout/stderr separate, own pid ns, gone afterwards';
    },
  },
  {
    id: 'ctr.run-d',
    scenario: 'ctr run -d: task RUNNING, the runtime\'s own state agrees (same pid)',
    async run(t) {
      const e = t.env;
      const id = newId('det');
      const pid = await runDetached(t, id, ['sleep', '1000']);
      t.ok(nsLink(pid, 'pid') !== nsLink('self', 'pid'), 'task shares the host pid namespace');
      t.eq(cmdline(pid)?.join(' '), 'sleep 1000', 'init cmdline on the host');
      const st = await runtimeState(e, rtRoot(e), id);
      t.ok(!st.error, `${e.runtime} --root ${rtRoot(e)} state ${id}: ${st.error}`);
      t.eq(st.status, 'running', 'runtime state status');
      t.eq(st.pid, pid, 'runtime state pid vs containerd task pid');
      return `pid ${pid}, runtime state running`;
    },
  },
  {
    id: 'ctr.exec',
    scenario: 'ctr task exec: output, exit status, in the container\'s namespaces',
    async run(t) {
      const e = t.env;
      const id = newId('exec');
      const pid = await runDetached(t, id, ['sleep', '1000']);
      const r = await e.ctr(['task', 'exec', '--exec-id', 'x1', id,
        'sh', '-c', 'echo exec-out; readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt; cat /proc/1/cmdline | tr "\\0" " "; exit 5'], { timeoutMs: 30000 });
      t.exit(r, 5, 'ctr task exec');
      const [out, pidns, mntns, init] = r.stdout.trim().split('\n');
      t.eq(out, 'exec-out', 'exec stdout');
      t.eq(pidns, nsLink(pid, 'pid'), 'exec pid ns vs init pid ns');
      t.eq(mntns, nsLink(pid, 'mnt'), 'exec mnt ns vs init mnt ns');
      t.eq(init.trim(), 'sleep 1000', '/proc/1 seen by exec');
      const r2 = await e.ctr(['task', 'exec', '--exec-id', 'x2', id, 'true'], { timeoutMs: 30000 });
      t.exit(r2, 0, 'second exec (true)');
      return 'exit 5 and 0, same pid/mnt ns as init';
    },
  },
  {
    id: 'ctr.ps',
    scenario: 'ctr task ps: lists exactly the container\'s processes (host pids)',
    async run(t) {
      const e = t.env;
      const id = newId('ps');
      const pid = await runDetached(t, id, ['sh', '-c', 'sleep 1001 & exec sleep 1002']);
      // The backgrounded sleep is a child of the init; find its host pid.
      const child = await waitFor(() => {
        const kids = children(pid);
        return kids.length === 1 && kids[0];
      }, { timeoutMs: 5000 });
      t.ok(child, `init ${pid} has no single child`);
      const r = await e.ctr(['task', 'ps', id], { timeoutMs: 15000 });
      t.exit(r, 0, 'ctr task ps');
      const pids = r.stdout.trim().split('\n').slice(1).map((l) => Number(l.trim().split(/\s+/)[0])).sort((a, b) => a - b);
      t.eq(JSON.stringify(pids), JSON.stringify([pid, child].sort((a, b) => a - b)), 'pids listed by task ps');
      t.eq(cmdline(child)?.join(' '), 'sleep 1001', 'child cmdline');
      return `pids ${pids.join(',')}`;
    },
  },
  {
    id: 'ctr.pause-resume',
    scenario: 'ctr task pause/resume: PAUSED, processes really frozen, then running again',
    async run(t) {
      const e = t.env;
      const id = newId('pause');
      const pid = await runDetached(t, id, COUNTER_CMD);
      t.ok(await waitFor(() => counter(pid) > 0, { timeoutMs: 5000 }), 'counter never started');
      const p = await e.ctr(['task', 'pause', id], { timeoutMs: 15000 });
      t.exit(p, 0, 'ctr task pause');
      t.eq((await tasks(e))[id]?.status, 'PAUSED', 'ctr task ls status after pause');
      const st = await runtimeState(e, rtRoot(e), id);
      t.eq(st.status, 'paused', 'runtime state status after pause');
      t.eq(freezerState(cgPath(e, id)), 'FROZEN', `freezer.state of ${cgPath(e, id)}`);
      const f = await counterFrozen(pid);
      t.ok(f.frozen, `counter moved while paused (${f.a} → ${f.b})`);
      const u = await e.ctr(['task', 'resume', id], { timeoutMs: 15000 });
      t.exit(u, 0, 'ctr task resume');
      t.eq((await tasks(e))[id]?.status, 'RUNNING', 'ctr task ls status after resume');
      t.eq((await runtimeState(e, rtRoot(e), id)).status, 'running', 'runtime state status after resume');
      const g = await counterFrozen(pid);
      t.ok(!g.frozen && g.b > g.a, `counter did not move after resume (${g.a} → ${g.b})`);
      return `frozen at ${f.a}, moving again ${g.a}→${g.b}`;
    },
  },
  {
    id: 'ctr.metrics',
    scenario: 'ctr task metrics: cgroup stats of the task (pids, memory)',
    async run(t) {
      const e = t.env;
      const id = newId('metrics');
      await runDetached(t, id, ['sh', '-c', 'sleep 1001 & sleep 1002 & wait']);
      // Poll: the two sleeps may not be forked yet when the task is reported RUNNING.
      let r;
      await waitFor(async () => {
        r = await e.ctr(['task', 'metrics', '--format', 'json', id], { timeoutMs: 15000 });
        try { return JSON.parse(r.stdout)?.pids?.current === 3; } catch { return false; }
      }, { timeoutMs: 5000, intervalMs: 200 });
      t.exit(r, 0, 'ctr task metrics');
      let m;
      try { m = JSON.parse(r.stdout); } catch { t.fail(`metrics output is not JSON: ${short(r.stdout)}`); }
      // v1 metrics: { pids: { current }, memory: { usage: { usage } } }; v2: memory.usage is a number.
      const pids = m?.pids?.current;
      const mem = m?.memory?.usage?.usage ?? m?.memory?.usage;
      t.eq(pids, 3, 'pids.current (sh + two sleeps)');
      t.ok(mem > 0, `memory usage ${mem}`);
      return `pids.current ${pids}, memory ${mem} B`;
    },
  },
  {
    id: 'ctr.kill-rm',
    scenario: 'ctr task kill (SIGTERM handled, exit status) then task rm and container rm clean up',
    async run(t) {
      const e = t.env;
      const id = newId('kill');
      const pid = await runDetached(t, id, ['sh', '-c', 'trap "exit 7" TERM; while :; do usleep 20000; done']);
      await sleep(200); // let sh install its trap
      const k = await e.ctr(['task', 'kill', '-s', 'SIGTERM', id], { timeoutMs: 15000 });
      t.exit(k, 0, 'ctr task kill');
      const stopped = await waitFor(async () => (await tasks(e))[id]?.status === 'STOPPED', { timeoutMs: 5000 });
      t.ok(stopped, `status after kill: ${JSON.stringify((await tasks(e))[id])}`);
      t.ok(!pidAlive(pid), `init ${pid} still alive`);
      // ctr 1.6 has no `task wait`; `task rm` reports a non-zero exit status as a warning.
      const rm = await e.ctr(['task', 'rm', id], { timeoutMs: 15000 });
      t.exit(rm, 0, 'ctr task rm');
      t.ok(/non-zero exit code 7\b/.test(rm.stderr), `task rm did not report exit code 7: ${short(rm.stderr)}`);
      t.exit(await e.ctr(['container', 'rm', id], { timeoutMs: 15000 }), 0, 'ctr container rm');
      const st = await runtimeState(e, rtRoot(e), id);
      t.ok(st.error, `runtime still knows ${id} after task rm: ${JSON.stringify(st)}`);
      const left = cgroupDirs(cgPath(e, id)).filter(exists);
      t.eq(left.join(' '), '', 'cgroup directories left');
      return 'exit 7 via trap, state and cgroups gone';
    },
  },
  {
    id: 'ctr.run-tty',
    scenario: 'ctr run -t under a pty: console is a tty in the container, exit status',
    async run(t) {
      const e = t.env;
      const id = newId('tty');
      t.defer(() => removeTask(e, id));
      const r = await underPty(['ctr', '--address', e.ctrdSock, '--namespace', e.ns, 'run', '-t', '--rm', ...rtFlags(e), CTR_IMAGE_REF, id,
        'sh', '-c', 'tty; [ -t 0 ] && [ -t 1 ] && echo both-tty; stty -a | head -1; exit 4'], undefined, 30000);
      t.exit(r, 4, 'script -qec "ctr run -t ..."');
      // ctr puts the pty in raw mode and may echo a stray ^@ before the first line.
      const out = r.stdout.replace(/\r/g, '');
      t.ok(/\/dev\/pts\/\d+$/m.test(out), `tty did not print a /dev/pts path: ${short(out)}`);
      t.ok(/^both-tty$/m.test(out), `stdin/stdout not a tty: ${short(out)}`);
      t.ok(/^speed \d+ baud/m.test(out), `stty -a (tcgetattr on the console) failed: ${short(out)}`);
      return short(out.trim().split('\n').join(' | '), 80);
    },
  },
];
