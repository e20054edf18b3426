// dockerd 20.10 with the runtime under test registered as `tsrun` (daemon.json runtimes entry,
// also the default runtime; every run below also says --runtime tsrun explicitly). dockerd
// drives it through our private containerd and containerd-shim-runc-v2.

import fs from 'node:fs';
import path from 'node:path';
import { IMAGE_REF } from '../lib/image.mjs';
import { waitFor, pidAlive, nsLink, cmdline, short, sleep, children } from '../lib/proc.mjs';
import { underPty, COUNTER_CMD, counter, counterFrozen, freezerState, runtimeState, exists, cgroupDirs, memoryLimit, memswLimit } from '../lib/common.mjs';

// Docker's default capability set (14 caps) and the mask the kernel shows for it.
const DEFAULT_CAPEFF = '00000000a80425fb';
// The same plus CAP_SYS_ADMIN (bit 21).
const SYSADMIN_CAPEFF = '00000000a82425fb';
const OOM_CMD = ['sh', '-c', 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo ${#x}'];

let seq = 0;
const newName = (n) => `${n}-${process.pid}-${++seq}`;

const dockerRun = (e, args, opts = {}) => e.docker(['run', '--runtime', 'tsrun', ...args], { timeoutMs: 60000, ...opts });

async function inspect(e, name, fmt) {
  const r = await e.docker(['inspect', '-f', fmt, name], { timeoutMs: 10000 });
  return r.code === 0 ? r.stdout.trim() : null;
}

// docker run -d; returns { id, pid } once running.
async function runDetached(t, name, cmd, extra = []) {
  const e = t.env;
  t.defer(() => e.docker(['rm', '-f', name], { timeoutMs: 30000 }));
  const r = await dockerRun(e, ['-d', '--name', name, ...extra, IMAGE_REF, ...cmd]);
  t.exit(r, 0, 'docker run -d');
  const id = r.stdout.trim().split('\n').pop();
  const info = await waitFor(async () => {
    const s = await inspect(e, name, '{{.State.Status}} {{.State.Pid}}');
    return s?.startsWith('running ') && s;
  }, { timeoutMs: 10000 });
  t.ok(info, `container not running after docker run -d: ${await inspect(e, name, '{{json .State}}')}`);
  const pid = Number(info.split(' ')[1]);
  t.ok(pidAlive(pid), `State.Pid ${pid} is not alive on the host`);
  return { id, pid };
}

// dockerd picks the runtime's --root itself (20.10: <exec-root>/runtime-runc/<namespace>,
// whatever the runtime's name); find the one where the runtime knows this container rather
// than hard-coding dockerd's naming or the runtime's state layout.
async function runtimeRootOf(e, id) {
  let dirs = [];
  try { dirs = fs.readdirSync(e.dockerExec).filter((d) => d.startsWith('runtime-')); } catch { return null; }
  for (const d of dirs) {
    const root = path.join(e.dockerExec, d, e.dockerNs);
    if (exists(root) && !(await runtimeState(e, root, id)).error) return root;
  }
  return null;
}

const cgPath = (e, id) => `${e.cgroupParent}/${id}`;

export default [
  {
    id: 'docker.run-rm',
    scenario: 'docker run --rm: output, exit status, container removed',
    async run(t) {
      const e = t.env;
      const name = newName('rm');
      t.defer(() => e.docker(['rm', '-f', name], { timeoutMs: 30000 }));
      const r = await dockerRun(e, ['--rm', '--name', name, IMAGE_REF, 'sh', '-c', 'echo hello-out; echo hello-err >&2; readlink /proc/self/ns/pid; exit 3']);
      t.exit(r, 3, 'docker run --rm');
      const lines = r.stdout.trim().split('\n');
      t.eq(lines[0], 'hello-out', 'stdout');
      t.ok(r.stderr.includes('hello-err'), `stderr lacks hello-err: ${short(r.stderr)}`);
      t.ok(/^pid:\[\d+\]$/.test(lines[1]) && lines[1] !== nsLink('self', 'pid'), `container pid ns ${lines[1]} is the host's`);
      const gone = await waitFor(async () => (await e.docker(['ps', '-aq', '--filter', `name=${name}`])).stdout.trim() === '', { timeoutMs: 5000 });
      t.ok(gone, 'container still listed after --rm');
      return 'exit 3, stdout/stderr separate, removed';
    },
  },
  {
    id: 'docker.caps',
    scenario: 'docker run: the 14 default capabilities (CapEff 00000000a80425fb); --cap-add changes it',
    async run(t) {
      const e = t.env;
      const r = await dockerRun(e, ['--rm', IMAGE_REF, 'sh', '-c', 'grep -E "^Cap(Eff|Prm|Bnd):" /proc/self/status']);
      t.exit(r, 0, 'docker run');
      const caps = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(/:\s+/)));
      t.eq(caps.CapEff, DEFAULT_CAPEFF, 'CapEff');
      t.eq(caps.CapPrm, DEFAULT_CAPEFF, 'CapPrm');
      t.eq(caps.CapBnd, DEFAULT_CAPEFF, 'CapBnd');
      // Proves the runtime applies what dockerd asks for, not a constant set.
      const r2 = await dockerRun(e, ['--rm', '--cap-add', 'SYS_ADMIN', IMAGE_REF, 'sh', '-c', 'grep ^CapEff: /proc/self/status']);
      t.exit(r2, 0, 'docker run --cap-add SYS_ADMIN');
      t.eq(r2.stdout.trim().split(/\s+/)[1], SYSADMIN_CAPEFF, 'CapEff with --cap-add SYS_ADMIN');
      return `CapEff/Prm/Bnd ${caps.CapEff}; +SYS_ADMIN ${SYSADMIN_CAPEFF}`;
    },
  },
  {
    id: 'docker.seccomp',
    scenario: 'docker run: Docker\'s default seccomp profile in force (Seccomp: 2, unshare(CLONE_NEWUSER) refused)',
    async run(t) {
      const e = t.env;
      // Without CAP_SYS_ADMIN the default profile refuses unshare(); the kernel itself would let
      // an unprivileged process create a user namespace. So the same command run unconfined
      // must succeed: that shows the filter is Docker's profile, not just any filter.
      const cmd = ['sh', '-c', 'grep ^Seccomp: /proc/self/status; unshare -U true 2>/dev/null; echo unshare=$?'];
      const r = await dockerRun(e, ['--rm', IMAGE_REF, ...cmd]);
      t.exit(r, 0, 'docker run');
      t.ok(/^Seccomp:\s+2$/m.test(r.stdout), `Seccomp line: ${short(r.stdout)}`);
      t.ok(/^unshare=1$/m.test(r.stdout), `unshare -U was not refused under the default profile: ${short(r.stdout)}`);
      const u = await dockerRun(e, ['--rm', '--security-opt', 'seccomp=unconfined', IMAGE_REF, ...cmd]);
      t.exit(u, 0, 'docker run --security-opt seccomp=unconfined');
      t.ok(/^Seccomp:\s+0$/m.test(u.stdout), `unconfined Seccomp line: ${short(u.stdout)}`);
      t.ok(/^unshare=0$/m.test(u.stdout), `unshare -U failed even unconfined (host refuses user namespaces?): ${short(u.stdout)}`);
      return 'Seccomp 2 and unshare -U EPERM; unconfined: Seccomp 0 and unshare -U works';
    },
  },
  {
    id: 'docker.run-d',
    scenario: 'docker run -d: running, HostConfig.Runtime tsrun, the runtime\'s own state agrees (same pid)',
    async run(t) {
      const e = t.env;
      const name = newName('det');
      const { id, pid } = await runDetached(t, name, ['sleep', '1000']);
      t.eq(await inspect(e, name, '{{.HostConfig.Runtime}}'), 'tsrun', 'HostConfig.Runtime');
      t.eq(cmdline(pid)?.join(' '), 'sleep 1000', 'init cmdline on the host');
      t.ok(nsLink(pid, 'pid') !== nsLink('self', 'pid'), 'container shares the host pid namespace');
      const root = await runtimeRootOf(e, id);
      t.ok(root, `${e.runtime} state ${id} fails with every --root under ${e.dockerExec}/runtime-*/${e.dockerNs}`);
      const st = await runtimeState(e, root, id);
      t.ok(!st.error, `${e.runtime} --root ${root} state: ${st.error}`);
      t.eq(st.status, 'running', 'runtime state status');
      t.eq(st.pid, pid, 'runtime state pid vs docker State.Pid');
      return `pid ${pid}, runtime state in ${path.relative(e.tmp, root)}`;
    },
  },
  {
    id: 'docker.exec',
    scenario: 'docker exec: output, exit status, in the container\'s namespaces',
    async run(t) {
      const e = t.env;
      const name = newName('exec');
      const { pid } = await runDetached(t, name, ['sleep', '1000']);
      const r = await e.docker(['exec', name, 'sh', '-c', 'echo exec-out; readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt; grep ^CapEff: /proc/self/status; exit 6'], { timeoutMs: 30000 });
      t.exit(r, 6, 'docker exec');
      const [out, pidns, mntns, cap] = r.stdout.trim().split('\n');
      t.eq(out, 'exec-out', 'stdout');
      t.eq(pidns, nsLink(pid, 'pid'), 'exec pid ns vs init');
      t.eq(mntns, nsLink(pid, 'mnt'), 'exec mnt ns vs init');
      t.eq(cap?.split(/\s+/)[1], DEFAULT_CAPEFF, 'exec CapEff');
      return 'exit 6, same pid/mnt ns, default caps';
    },
  },
  {
    id: 'docker.exec-tty',
    scenario: 'docker exec -t under a pty: a tty in the container, exit status',
    async run(t) {
      const e = t.env;
      const name = newName('exect');
      await runDetached(t, name, ['sleep', '1000']);
      const r = await underPty([e.dockerBin, 'exec', '-t', name, 'sh', '-c', 'tty; [ -t 1 ] && echo out-tty; stty -a | head -1; exit 2'], dockerEnv(e));
      t.exit(r, 2, 'script -qec "docker exec -t ..."');
      const out = r.stdout.replace(/\r/g, '');
      t.ok(/\/dev\/pts\/\d+$/m.test(out), `tty did not print a /dev/pts path: ${short(out)}`);
      t.ok(/^out-tty$/m.test(out), `stdout not a tty: ${short(out)}`);
      t.ok(/^speed \d+ baud/m.test(out), `stty -a failed: ${short(out)}`);
      return short(out.trim().split('\n').join(' | '), 80);
    },
  },
  {
    id: 'docker.top',
    scenario: 'docker top: lists the container\'s processes with their host pids',
    async run(t) {
      const e = t.env;
      const name = newName('top');
      const { pid } = await runDetached(t, name, ['sh', '-c', 'sleep 1001 & exec sleep 1002']);
      const child = await waitFor(() => { const k = children(pid); return k.length === 1 && k[0]; }, { timeoutMs: 5000 });
      t.ok(child, `init ${pid} has no single child`);
      const r = await e.docker(['top', name], { timeoutMs: 15000 });
      t.exit(r, 0, 'docker top');
      const rows = r.stdout.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
      const pids = rows.map((c) => Number(c[1])).sort((a, b) => a - b);
      t.eq(JSON.stringify(pids), JSON.stringify([pid, child].sort((a, b) => a - b)), 'PID column');
      t.ok(r.stdout.includes('sleep 1001') && r.stdout.includes('sleep 1002'), `CMD column: ${short(r.stdout)}`);
      return `pids ${pids.join(',')}`;
    },
  },
  {
    id: 'docker.stats',
    scenario: 'docker stats --no-stream: PIDs and memory of the container',
    async run(t) {
      const e = t.env;
      const name = newName('stats');
      await runDetached(t, name, ['sh', '-c', 'sleep 1001 & sleep 1002 & wait']);
      // Poll: the two sleeps may not be forked yet when the container is reported running.
      let r;
      await waitFor(async () => {
        r = await e.docker(['stats', '--no-stream', '--format', '{{.PIDs}}|{{.MemUsage}}', name], { timeoutMs: 30000 });
        return r.stdout.startsWith('3|');
      }, { timeoutMs: 8000, intervalMs: 200 });
      t.exit(r, 0, 'docker stats');
      const [pids, mem] = r.stdout.trim().split('|');
      t.eq(pids, '3', 'PIDs (sh + two sleeps)');
      const used = /^([\d.]+)([KMG]i?B|B) \//.exec(mem ?? '');
      t.ok(used && Number(used[1]) > 0, `MemUsage: ${mem}`);
      return `PIDs ${pids}, MemUsage ${mem}`;
    },
  },
  {
    id: 'docker.pause-unpause',
    scenario: 'docker pause/unpause: paused, processes really frozen, then running again',
    async run(t) {
      const e = t.env;
      const name = newName('pause');
      const { id, pid } = await runDetached(t, name, COUNTER_CMD);
      t.ok(await waitFor(() => counter(pid) > 0, { timeoutMs: 5000 }), 'counter never started');
      t.exit(await e.docker(['pause', name], { timeoutMs: 15000 }), 0, 'docker pause');
      t.eq(await inspect(e, name, '{{.State.Status}}'), 'paused', 'State.Status after pause');
      const root = await runtimeRootOf(e, id);
      t.eq(root && (await runtimeState(e, root, id)).status, 'paused', 'runtime state status after pause');
      t.eq(freezerState(cgPath(e, id)), 'FROZEN', 'freezer state');
      const f = await counterFrozen(pid);
      t.ok(f.frozen, `counter moved while paused (${f.a} → ${f.b})`);
      t.exit(await e.docker(['unpause', name], { timeoutMs: 15000 }), 0, 'docker unpause');
      t.eq(await inspect(e, name, '{{.State.Status}}'), 'running', 'State.Status after unpause');
      t.eq((await runtimeState(e, root, id)).status, 'running', 'runtime state status after unpause');
      const g = await counterFrozen(pid);
      t.ok(!g.frozen && g.b > g.a, `counter did not move after unpause (${g.a} → ${g.b})`);
      return `frozen at ${f.a}, moving again ${g.a}→${g.b}`;
    },
  },
  {
    id: 'docker.update-memory',
    scenario: 'docker update --memory on a running container: cgroup limit changed (host and in-container view)',
    async run(t) {
      const e = t.env;
      const name = newName('upd');
      const { id } = await runDetached(t, name, ['sleep', '1000']);
      // dockerd refuses --memory alone once a swap limit exists; give both.
      const r = await e.docker(['update', '--memory', '64m', '--memory-swap', '128m', name], { timeoutMs: 30000 });
      t.exit(r, 0, 'docker update');
      const lim = memoryLimit(cgPath(e, id));
      t.eq(lim, String(64 << 20), 'host memory limit');
      const sw = memswLimit(cgPath(e, id));
      t.eq(sw, String(128 << 20), 'host memory+swap limit');
      const inside = await e.docker(['exec', name, 'sh', '-c', 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max'], { timeoutMs: 15000 });
      t.exit(inside, 0, 'docker exec cat memory.limit_in_bytes');
      t.eq(inside.stdout.trim(), String(64 << 20), 'memory.limit_in_bytes seen in the container');
      t.eq(await inspect(e, name, '{{.HostConfig.Memory}}'), String(64 << 20), 'HostConfig.Memory');
      return `limit ${lim}, memsw ${sw}`;
    },
  },
  {
    id: 'docker.memory-oom',
    scenario: 'docker run --memory 32m: allocating ~100 MB is OOM-killed (exit 137, OOMKilled), fine with 512m',
    async run(t) {
      const e = t.env;
      const name = newName('oom');
      t.defer(() => e.docker(['rm', '-f', name], { timeoutMs: 30000 }));
      const r = await dockerRun(e, ['--name', name, '--memory', '32m', IMAGE_REF, ...OOM_CMD]);
      t.exit(r, 137, 'docker run --memory 32m (100 MB string in sh)');
      t.eq(await inspect(e, name, '{{.State.OOMKilled}}'), 'true', 'State.OOMKilled');
      t.eq(await inspect(e, name, '{{.HostConfig.Memory}}'), String(32 << 20), 'HostConfig.Memory');
      // Control: the same command with room to spare succeeds, so the limit is what killed it.
      const c = await dockerRun(e, ['--rm', '--memory', '512m', IMAGE_REF, ...OOM_CMD]);
      t.exit(c, 0, 'control run with --memory 512m');
      t.eq(c.stdout.trim(), '100000000', 'control output (string length)');
      return 'exit 137 + OOMKilled at 32m; 512m prints 100000000';
    },
  },
  {
    id: 'docker.init',
    scenario: 'docker run --init: docker-init is pid 1, the command its child, exit status passed on',
    async run(t) {
      const e = t.env;
      const r = await dockerRun(e, ['--rm', '--init', IMAGE_REF, 'sh', '-c', 'tr "\\0" " " < /proc/1/cmdline; echo; echo $$; exit 9']);
      t.exit(r, 9, 'docker run --init');
      const [init, self] = r.stdout.trim().split('\n');
      t.ok(init.startsWith('/sbin/docker-init -- sh -c'), `pid 1 cmdline: ${init}`);
      t.ok(Number(self) > 1, `the command's pid is ${self}, expected > 1`);
      return `pid 1: ${init.split(' ').slice(0, 2).join(' ')}, sh pid ${self}, exit 9`;
    },
  },
  {
    id: 'docker.kill',
    scenario: 'docker kill -s TERM (trapped, exit 7) and docker kill (SIGKILL, exit 137)',
    async run(t) {
      const e = t.env;
      const a = newName('killterm');
      const { pid } = await runDetached(t, a, ['sh', '-c', 'trap "exit 7" TERM; while :; do usleep 20000; done']);
      await sleep(200); // let sh install its trap
      t.exit(await e.docker(['kill', '-s', 'TERM', a], { timeoutMs: 15000 }), 0, 'docker kill -s TERM');
      const w = await e.docker(['wait', a], { timeoutMs: 15000 });
      t.exit(w, 0, 'docker wait');
      t.eq(w.stdout.trim(), '7', 'exit code after SIGTERM');
      t.ok(!pidAlive(pid), `init ${pid} still alive`);
      const b = newName('killkill');
      const { pid: pid2 } = await runDetached(t, b, ['sleep', '1000']);
      t.exit(await e.docker(['kill', b], { timeoutMs: 15000 }), 0, 'docker kill');
      const w2 = await e.docker(['wait', b], { timeoutMs: 15000 });
      t.eq(w2.stdout.trim(), '137', 'exit code after SIGKILL');
      t.ok(!pidAlive(pid2), `init ${pid2} still alive`);
      return 'TERM → 7, KILL → 137';
    },
  },
  {
    id: 'docker.rm-f',
    scenario: 'docker rm -f of a running container: processes, runtime state and cgroups gone',
    async run(t) {
      const e = t.env;
      const name = newName('rmf');
      const { id, pid } = await runDetached(t, name, ['sh', '-c', 'sleep 1001 & exec sleep 1002']);
      const root = await runtimeRootOf(e, id);
      t.ok(root, 'no runtime state dir for the container');
      const child = await waitFor(() => children(pid)[0], { timeoutMs: 5000 });
      t.exit(await e.docker(['rm', '-f', name], { timeoutMs: 30000 }), 0, 'docker rm -f');
      t.eq((await e.docker(['ps', '-aq', '--filter', `name=${name}`])).stdout.trim(), '', 'docker ps -a after rm -f');
      t.ok(!pidAlive(pid), `init ${pid} still alive`);
      t.ok(!child || !pidAlive(child), `child ${child} still alive`);
      const st = await runtimeState(e, root, id);
      t.ok(st.error, `runtime still has state: ${JSON.stringify(st)}`);
      const gone = await waitFor(() => cgroupDirs(cgPath(e, id)).every((d) => !exists(d)), { timeoutMs: 5000 });
      t.ok(gone, `cgroup directories left: ${cgroupDirs(cgPath(e, id)).filter(exists).join(' ')}`);
      return 'container, processes, state and cgroups gone';
    },
  },
  {
    id: 'docker.run-tty',
    scenario: 'docker run -t under a pty: console is a tty, exit status',
    async run(t) {
      const e = t.env;
      const r = await underPty([e.dockerBin, 'run', '--runtime', 'tsrun', '--rm', '-t', IMAGE_REF, 'sh', '-c', 'tty; [ -t 0 ] && [ -t 1 ] && echo both-tty; stty -a | head -1; exit 3'], dockerEnv(e));
      t.exit(r, 3, 'script -qec "docker run -t ..."');
      const out = r.stdout.replace(/\r/g, '');
      t.ok(/\/dev\/pts\/\d+$/m.test(out), `tty did not print a /dev/pts path: ${short(out)}`);
      t.ok(/^both-tty$/m.test(out), `stdin/stdout not a tty: ${short(out)}`);
      t.ok(/^speed \d+ baud/m.test(out), `stty -a failed: ${short(out)}`);
      return short(out.trim().split('\n').join(' | '), 80);
    },
  },
  {
    id: 'docker.logs',
    scenario: 'docker logs: stdout and stderr of a detached container, kept apart',
    async run(t) {
      const e = t.env;
      const name = newName('logs');
      t.defer(() => e.docker(['rm', '-f', name], { timeoutMs: 30000 }));
      const r = await dockerRun(e, ['-d', '--name', name, IMAGE_REF, 'sh', '-c', 'echo to-stdout; echo to-stderr >&2; echo line2']);
      t.exit(r, 0, 'docker run -d');
      const w = await e.docker(['wait', name], { timeoutMs: 15000 });
      t.eq(w.stdout.trim(), '0', 'exit code');
      const l = await e.docker(['logs', name], { timeoutMs: 15000 });
      t.exit(l, 0, 'docker logs');
      t.eq(l.stdout, 'to-stdout\nline2\n', 'logs stdout');
      t.eq(l.stderr, 'to-stderr\n', 'logs stderr');
      return 'stdout 2 lines, stderr 1 line';
    },
  },
];

function dockerEnv(e) {
  return { ...process.env, DOCKER_HOST: `unix://${e.dockerSock}`, DOCKER_CONFIG: path.join(e.tmp, 'docker-client') };
}
