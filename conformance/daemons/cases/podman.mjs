// podman 4.3 with conmon 2.1 driving the runtime under test (`podman --runtime <abs path>`, see
// lib/podman.mjs for the configuration). Every case proves what it can on the host (pids,
// namespaces, the runtime's own `state`, cgroup files, mounts) and ends by removing its
// containers and proving that nothing of them is left: no podman container, no runtime state
// dir (<runtime root>/<id>), no cgroup under our parent but podman's shared (empty) `conmon` one,
// no mount under podman's dirs, no conmon or podman process, no process in our cgroups, no
// global path (/var/lib/containers, /run/libpod, …) that was not there before the case.

import fs from 'node:fs';
import path from 'node:path';
import { PODMAN_IMAGE_REF as IMAGE } from '../lib/podman.mjs';
import { waitFor, pidAlive, nsLink, cmdline, short, sleep, children, readText } from '../lib/proc.mjs';
import { underPty, COUNTER_CMD, counter, counterFrozen, freezerState, runtimeState, exists, cgroupDirs, memoryLimit } from '../lib/common.mjs';

const OOM_CMD = ['sh', '-c', 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo ${#x}'];
// The stub /sbin/init for --systemd=always: reports what systemd would look at, then waits for
// SIGRTMIN+3 (signal 37), podman's stop signal in systemd mode.
const INIT_STUB = [
  '#!/bin/sh',
  'trap "echo got-SIGRTMIN+3; exit 0" 37',
  'echo "container=$container pid=$$"',
  'for m in /run /run/lock /tmp /var/log/journal /sys/fs/cgroup /sys/fs/cgroup/systemd; do',
  '  echo "mount $m $(awk -v m=$m \'$2 == m { t = $3 " " $4 } END { print t }\' /proc/self/mounts)"',
  'done',
  'cat /run/tsrunconf-copyup',
  // systemd makes cgroups below its own: probe that in the container's own cgroup (v1: the
  // name=systemd hierarchy; v2: the unified one), never at the host's hierarchy root.
  'p=$(sed -n "s/^[0-9]*:name=systemd://p" /proc/self/cgroup); d=/sys/fs/cgroup/systemd',
  '[ -n "$p" ] || { p=$(sed -n "s/^0:://p" /proc/self/cgroup); d=/sys/fs/cgroup; }',
  'mkdir "$d$p/tsrunconf-probe" && rmdir "$d$p/tsrunconf-probe" && echo cgroup-writable',
  'echo ready',
  'while :; do sleep 1 & wait $!; done',
  '',
].join('\n');

let seq = 0;
const newName = (n) => `pm-${n}-${process.pid}-${++seq}`;

// One case: `body(t, p, k)` with k tracking the case's container ids and host pids; afterwards
// every container is removed and nothing of them may be left (a failure of its own).
function pcase(id, scenario, body) {
  return {
    id,
    scenario,
    async run(t) {
      const p = t.env.podman;
      const k = { ids: new Set(), pids: [] };
      const globals = p.globalsNow();
      let detail;
      let err = null;
      try {
        detail = await body(t, p, k);
      } catch (e) {
        err = e;
      }
      const left = await p.removeAll(k.ids, k.pids, globals);
      if (err) {
        if (left.length) t.note(`left behind: ${short(left.join('; '), 400)}`);
        throw err;
      }
      t.ok(left.length === 0, `left behind after removing the containers: ${short(left.join('; '), 400)}`);
      return detail;
    },
  };
}

// podman run with our container options; `--cidfile` records the id even of a --rm run.
async function prun(t, p, k, args, opts = {}) {
  const cid = path.join(p.dir, `cid-${++seq}`);
  const r = await p.podman(['run', '--cidfile', cid, ...p.containerArgs(), ...args], { timeoutMs: 60000, ...opts });
  const id = readText(cid)?.trim();
  if (id) { k.ids.add(id); p.ids.add(id); }
  r.id = id;
  return r;
}

async function inspect(p, name, fmt) {
  const r = await p.podman(['inspect', '--format', fmt, name], { timeoutMs: 15000 });
  return r.code === 0 ? r.stdout.trim() : null;
}

// podman run -d; returns { id, pid, conmon } once running, with the runtime's own state agreeing.
async function runDetached(t, p, k, name, cmd, extra = []) {
  const r = await prun(t, p, k, ['-d', '--name', name, ...extra, IMAGE, ...cmd]);
  t.exit(r, 0, `podman run -d ${extra.join(' ')}`);
  const id = r.stdout.trim().split('\n').pop();
  k.ids.add(id); p.ids.add(id);
  const info = await waitFor(async () => {
    const s = await inspect(p, name, '{{.State.Status}} {{.State.Pid}} {{.State.ConmonPid}}');
    return s?.startsWith('running ') && s;
  }, { timeoutMs: 10000 });
  t.ok(info, `container not running after podman run -d: ${await inspect(p, name, '{{json .State}}')}`);
  const [, pid, conmon] = info.split(' ').map(Number);
  k.pids.push(pid, conmon);
  t.ok(pidAlive(pid), `State.Pid ${pid} is not alive on the host`);
  // The runtime under test knows the container, with the same pid: podman really used it.
  const st = await runtimeState(t.env, p.rtRoot, id);
  t.ok(!st.error, `${p.runtime} --root ${p.rtRoot} state ${id.slice(0, 12)}: ${st.error}`);
  t.eq(st.pid, pid, 'runtime state pid vs podman State.Pid');
  return { id, pid, conmon, st };
}

const cgPath = (p, id) => `${p.cgroupParent}/libpod-${id}`;

// The mount of `dest` in /proc/<pid>/mountinfo: { fstype, opts (mount + super options), source }.
function mountOf(pid, dest) {
  const s = readText(`/proc/${pid}/mountinfo`) ?? '';
  let found = null;
  for (const l of s.split('\n').filter(Boolean)) {
    const f = l.split(' ');
    if (f[4] !== dest) continue;
    const sep = f.indexOf('-');
    found = { fstype: f[sep + 1], source: f[sep + 2], opts: `${f[5]},${f[sep + 3]}`, root: f[3] };
  }
  return found;
}

export default [
  pcase('podman.run-rm', 'podman run --rm: output, stdout/stderr apart, exit status, own pid ns, container removed', async (t, p, k) => {
    const name = newName('rm');
    const r = await prun(t, p, k, ['--rm', '--name', name, IMAGE, 'sh', '-c', 'echo hello-out; echo hello-err >&2; readlink /proc/self/ns/pid; echo "HOME=$HOME"; exit 3']);
    t.exit(r, 3, 'podman run --rm');
    const lines = r.stdout.trim().split('\n');
    t.eq(lines[0], 'hello-out', 'stdout');
    t.eq(lines[2], 'HOME=/root', 'HOME (podman sets it from the image\'s /etc/passwd)');
    t.eq(r.stderr.trim(), 'hello-err', 'stderr (and nothing else: no podman error)');
    t.ok(/^pid:\[\d+\]$/.test(lines[1]) && lines[1] !== nsLink('self', 'pid'), `container pid ns ${lines[1]} is the host's`);
    t.ok(r.id, 'no --cidfile written');
    t.eq((await p.podman(['ps', '-aq', '--filter', `name=${name}`])).stdout.trim(), '', 'podman ps -a after --rm');
    return 'exit 3, stdout/stderr apart, removed';
  }),
  pcase('podman.run-error', 'podman run of a missing / non-executable command: 127 / 126, the runtime\'s error text through --log-format json --log', async (t, p, k) => {
    const name = newName('enoent');
    const a = await prun(t, p, k, ['--name', name, IMAGE, '/nonexistent']);
    t.exit(a, 127, 'podman run … /nonexistent');
    const text = 'exec: "/nonexistent": stat /nonexistent: no such file or directory';
    t.ok(a.stderr.includes(text), `stderr lacks runc's text: ${short(a.stderr)}`);
    // One error line: no second one from a failing `delete --force` after the failed create.
    t.eq(a.stderr.trim().split('\n').length, 1, `one error line, got: ${short(a.stderr)}`);
    // podman read the message from the runtime's JSON log (runtime_supports_json).
    const logFile = path.join(p.runroot, 'overlay-containers', a.id ?? '?', 'userdata', 'oci-log');
    const lines = (readText(logFile) ?? '').split('\n').filter(Boolean);
    t.ok(lines.length > 0, `no runtime log in ${logFile}`);
    let recs;
    try { recs = lines.map((l) => JSON.parse(l)); } catch { t.fail(`runtime log is not JSON lines: ${short(lines.join(' | '))}`); }
    const err = recs.filter((r) => r.level === 'error').pop();
    t.ok(err && typeof err.msg === 'string' && err.msg.includes(text) && a.stderr.includes(err.msg), `runtime log's error record vs podman's message: ${short(lines.join(' | '))}`);
    const b = await prun(t, p, k, ['--rm', IMAGE, '/etc/passwd']);
    t.exit(b, 126, 'podman run … /etc/passwd');
    t.ok(b.stderr.includes('exec: "/etc/passwd": permission denied'), `stderr lacks runc's text: ${short(b.stderr)}`);
    t.eq(b.stderr.trim().split('\n').length, 1, `one error line, got: ${short(b.stderr)}`);
    return `127, oci-log ${JSON.stringify(err.msg).slice(0, 90)}…; 126`;
  }),
  pcase('podman.run-d', 'podman run -d: running, init a child of conmon in libpod-<id> cgroup, runtime state agrees, json log flags passed', async (t, p, k) => {
    const name = newName('det');
    const { id, pid, conmon, st } = await runDetached(t, p, k, name, ['sleep', '1000']);
    t.eq(st.status, 'running', 'runtime state status');
    t.eq(cmdline(pid)?.join(' '), 'sleep 1000', 'init cmdline on the host');
    t.ok(nsLink(pid, 'pid') !== nsLink('self', 'pid'), 'container shares the host pid namespace');
    const ppid = Number((readText(`/proc/${pid}/stat`) ?? '').split(') ')[1]?.split(' ')[1]);
    t.eq(ppid, conmon, 'init\'s parent vs State.ConmonPid');
    const cm = cmdline(conmon) ?? [];
    t.eq(cm[cm.indexOf('-r') + 1], p.runtime, 'conmon -r (runtime path)');
    t.ok(cm.includes('--log-format=json') && cm.includes('--log'), `conmon does not pass --log-format json --log to the runtime: ${short(cm.join(' '))}`);
    const cg = readText(`/proc/${pid}/cgroup`) ?? '';
    t.ok(cg.includes(cgPath(p, id)), `init not in ${cgPath(p, id)}: ${short(cg)}`);
    // Only container processes in the container's cgroup (no runtime helper left there).
    for (const d of cgroupDirs(cgPath(p, id))) {
      const procs = (readText(path.join(d, 'cgroup.procs')) ?? '').trim().split('\n').filter(Boolean).map(Number);
      t.eq(JSON.stringify(procs), JSON.stringify([pid]), `${d}/cgroup.procs`);
    }
    return `pid ${pid}, conmon ${conmon}, cgroup libpod-${id.slice(0, 12)}`;
  }),
  pcase('podman.stdin-null', 'no -i: fd 0 is the container\'s own /dev/null, opened read-write, as runc (run --rm and run -d)', async (t, p, k) => {
    // conmon hands the runtime the host's /dev/null, read-only. runc (reOpenDevNull, after
    // pivot_root) replaces any of fds 0-2 that is /dev/null by the container's /dev/null, O_RDWR.
    const r = await prun(t, p, k, ['--rm', IMAGE, 'sh', '-c', [
      'exec 3</dev/null',
      'readlink /proc/self/fd/0',
      'sed -n "s/^flags:[[:space:]]*//p" /proc/self/fdinfo/0',
      'sed -n "s/^mnt_id:[[:space:]]*//p" /proc/self/fdinfo/0',
      'sed -n "s/^mnt_id:[[:space:]]*//p" /proc/self/fdinfo/3',
      'echo x >&0 && echo wrote-fd0',
      'exit 0',
    ].join('; ')]);
    t.exit(r, 0, 'podman run --rm');
    const [target, flags, mnt0, mnt3, wrote] = r.stdout.trim().split('\n');
    t.eq(target, '/dev/null', 'fd 0 of podman run --rm');
    t.eq(Number.parseInt(flags, 8) & 3, 2, `fd 0 access mode (flags ${flags}; 2 = O_RDWR, 0 = O_RDONLY)`);
    t.eq(mnt0, mnt3, 'mount of fd 0 vs the container\'s /dev/null (mnt_id; another one is the host\'s /dev)');
    t.eq(wrote, 'wrote-fd0', `writing to fd 0 (stderr: ${short(r.stderr)})`);
    const name = newName('stdin');
    const { pid } = await runDetached(t, p, k, name, ['sleep', '1000']);
    const fl = /^flags:\s*(\d+)/m.exec(readText(`/proc/${pid}/fdinfo/0`) ?? '')?.[1];
    t.eq(fs.readlinkSync(`/proc/${pid}/fd/0`), '/dev/null', 'fd 0 of the run -d init');
    t.eq(Number.parseInt(fl, 8) & 3, 2, `fd 0 access mode of the run -d init (flags ${fl})`);
    return `fd 0: the container's /dev/null (mnt_id ${mnt0}), flags ${flags} (O_RDWR)`;
  }),
  pcase('podman.logs', 'podman logs: stdout and stderr of a detached container, kept apart', async (t, p, k) => {
    const name = newName('logs');
    const r = await prun(t, p, k, ['-d', '--name', name, IMAGE, 'sh', '-c', 'echo to-stdout; echo to-stderr >&2; echo line2']);
    t.exit(r, 0, 'podman run -d');
    const w = await p.podman(['wait', name], { timeoutMs: 15000 });
    t.eq(w.stdout.trim(), '0', 'podman wait');
    const l = await p.podman(['logs', name], { timeoutMs: 15000 });
    t.exit(l, 0, 'podman logs');
    t.eq(l.stdout, 'to-stdout\nline2\n', 'logs stdout');
    t.eq(l.stderr, 'to-stderr\n', 'logs stderr');
    return 'stdout 2 lines, stderr 1 line';
  }),
  pcase('podman.exec', 'podman exec: output, exit status, in the container\'s namespaces', async (t, p, k) => {
    const name = newName('exec');
    const { pid } = await runDetached(t, p, k, name, ['sleep', '1000']);
    const r = await p.podman(['exec', name, 'sh', '-c', 'echo exec-out; readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt; echo "HOME=$HOME"; echo err >&2; exit 6']);
    t.exit(r, 6, 'podman exec');
    const [out, pidns, mntns, home] = r.stdout.trim().split('\n');
    t.eq(home, 'HOME=/root', 'HOME in exec');
    t.eq(out, 'exec-out', 'stdout');
    t.eq(r.stderr.trim(), 'err', 'stderr');
    t.eq(pidns, nsLink(pid, 'pid'), 'exec pid ns vs init');
    t.eq(mntns, nsLink(pid, 'mnt'), 'exec mnt ns vs init');
    const z = await p.podman(['exec', name, 'true']);
    t.exit(z, 0, 'podman exec true');
    return 'exit 6 then 0, same pid/mnt ns';
  }),
  pcase('podman.exec-tty', 'podman exec -it under a pty: a tty in the container (group tty), exit status', async (t, p, k) => {
    const name = newName('exect');
    await runDetached(t, p, k, name, ['sleep', '1000']);
    const r = await underPty(p.argv(['exec', '-it', name, 'sh', '-c', 'tty; [ -t 0 ] && [ -t 1 ] && echo both-tty; stty -a | head -1; stat -c "owner %u:%g %a" $(tty); exit 2']), p.env(), 30000, p.dir);
    t.exit(r, 2, 'script -qec "podman exec -it ..."');
    // conmon writes a NUL to the terminal before the output (runc or not).
    const out = r.stdout.replace(/[\r\0]|\^@/g, '');
    t.ok(/\/dev\/pts\/\d+$/m.test(out), `tty did not print a /dev/pts path: ${short(out)}`);
    t.ok(/^both-tty$/m.test(out), `stdin/stdout not a tty: ${short(out)}`);
    t.ok(/^speed \d+ baud/m.test(out), `stty -a failed: ${short(out)}`);
    // The pty is the container's devpts' (gid=5 in podman's mount options): the process's uid,
    // the devpts gid (runc chowns only the owner; the kernel gives the group).
    t.eq(/^owner .*$/m.exec(out)?.[0], 'owner 0:5 620', 'owner, group and mode of the exec\'s tty');
    return short(out.trim().split('\n').join(' | '), 80);
  }),
  pcase('podman.run-tty', 'podman run -it --rm --user 1234:1234 under a pty: console is a tty owned by 1234, group tty (5), exit status', async (t, p, k) => {
    const cid = path.join(p.dir, `cid-tty-${++seq}`);
    // The sleep first: podman's attach to conmon can miss what the container prints right after
    // start (an empty transcript with exit 3, seen with runc as well: 3 of 30 runs on a loaded host).
    const r = await underPty(p.argv(['run', '--cidfile', cid, ...p.containerArgs(), '--rm', '-it', '--user', '1234:1234', IMAGE, 'sh', '-c', 'sleep 0.5; tty; [ -t 0 ] && [ -t 1 ] && echo both-tty; stty -a | head -1; stat -c "owner %u:%g %a" $(tty) /dev/console; exit 3']), p.env(), 60000, p.dir);
    const id = readText(cid)?.trim();
    if (id) { k.ids.add(id); p.ids.add(id); }
    t.exit(r, 3, 'script -qec "podman run -it ..."');
    const out = r.stdout.replace(/[\r\0]|\^@/g, '');
    t.ok(/\/dev\/pts\/\d+$/m.test(out), `tty did not print a /dev/pts path: ${short(out)}`);
    t.ok(/^both-tty$/m.test(out), `stdin/stdout not a tty: ${short(out)}`);
    t.ok(/^speed \d+ baud/m.test(out), `stty -a failed: ${short(out)}`);
    // runc: the console belongs to the process's uid, its group stays the devpts gid (5).
    t.eq(out.match(/^owner .*$/gm)?.join(','), 'owner 1234:5 620,owner 1234:5 620', 'owner, group and mode of the tty and /dev/console (--user 1234:1234)');
    return short(out.trim().split('\n').join(' | '), 80);
  }),
  pcase('podman.ps', 'podman ps: a running container Up with its pid, an exited one Exited (N) only with -a', async (t, p, k) => {
    const up = newName('psup');
    const { pid } = await runDetached(t, p, k, up, ['sleep', '1000']);
    const ex = newName('psex');
    const r = await prun(t, p, k, ['--name', ex, IMAGE, 'sh', '-c', 'exit 5']);
    t.exit(r, 5, 'podman run (exit 5)');
    const fmt = '{{.Names}}|{{.Status}}|{{.Pid}}';
    const a = await p.podman(['ps', '--format', fmt]);
    t.exit(a, 0, 'podman ps');
    const rows = a.stdout.trim().split('\n').map((l) => l.split('|'));
    t.eq(rows.length, 1, `podman ps rows: ${short(a.stdout)}`);
    t.eq(rows[0][0], up, 'podman ps name');
    t.ok(rows[0][1].startsWith('Up '), `status: ${rows[0][1]}`);
    t.eq(Number(rows[0][2]), pid, 'podman ps pid');
    const all = await p.podman(['ps', '-a', '--format', fmt]);
    const exRow = all.stdout.trim().split('\n').map((l) => l.split('|')).find((c) => c[0] === ex);
    t.ok(exRow && /^Exited \(5\)/.test(exRow[1]), `podman ps -a row for the exited one: ${short(all.stdout)}`);
    return `${rows[0][1]}; ${exRow[1]}`;
  }),
  pcase('podman.top', 'podman top: the container\'s processes with their host pids (hpid)', async (t, p, k) => {
    const name = newName('top');
    const { pid } = await runDetached(t, p, k, name, ['sh', '-c', 'sleep 1001 & exec sleep 1002']);
    const child = await waitFor(() => { const c = children(pid); return c.length === 1 && c[0]; }, { timeoutMs: 5000 });
    t.ok(child, `init ${pid} has no single child`);
    const r = await p.podman(['top', name, 'pid', 'hpid', 'args']);
    t.exit(r, 0, 'podman top');
    const rows = r.stdout.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
    const hpids = rows.map((c) => Number(c[1])).sort((a, b) => a - b);
    t.eq(JSON.stringify(hpids), JSON.stringify([pid, child].sort((a, b) => a - b)), 'HPID column');
    t.ok(rows.some((c) => c[0] === '1'), `no PID 1 in the PID column: ${short(r.stdout)}`);
    t.ok(r.stdout.includes('sleep 1001') && r.stdout.includes('sleep 1002'), `COMMAND column: ${short(r.stdout)}`);
    return `hpids ${hpids.join(',')}`;
  }),
  pcase('podman.stats', 'podman stats --no-stream: PIDs and memory of the container', async (t, p, k) => {
    const name = newName('stats');
    await runDetached(t, p, k, name, ['sh', '-c', 'sleep 1001 & sleep 1002 & wait']);
    let r;
    await waitFor(async () => {
      r = await p.podman(['stats', '--no-stream', '--format', '{{.PIDs}}|{{.MemUsage}}', name]);
      return r.stdout.startsWith('3|');
    }, { timeoutMs: 8000, intervalMs: 200 });
    t.exit(r, 0, 'podman stats');
    const [pids, mem] = r.stdout.trim().split('|');
    t.eq(pids, '3', 'PIDs (sh + two sleeps)');
    const used = /^([\d.]+)([kKMG]i?B|B) \//.exec(mem ?? '');
    t.ok(used && Number(used[1]) > 0, `MemUsage: ${mem}`);
    return `PIDs ${pids}, MemUsage ${mem}`;
  }),
  pcase('podman.pause-unpause', 'podman pause/unpause: paused (podman, runtime state, freezer), a counter stops, then moves again', async (t, p, k) => {
    const name = newName('pause');
    const { id, pid } = await runDetached(t, p, k, name, COUNTER_CMD);
    t.ok(await waitFor(() => counter(pid) > 0, { timeoutMs: 5000 }), 'counter never started');
    t.exit(await p.podman(['pause', name]), 0, 'podman pause');
    t.eq(await inspect(p, name, '{{.State.Status}}'), 'paused', 'State.Status after pause');
    t.eq((await runtimeState(t.env, p.rtRoot, id)).status, 'paused', 'runtime state after pause');
    t.eq(freezerState(cgPath(p, id)), 'FROZEN', 'freezer state');
    const f = await counterFrozen(pid);
    t.ok(f.frozen, `counter moved while paused (${f.a} → ${f.b})`);
    t.exit(await p.podman(['unpause', name]), 0, 'podman unpause');
    t.eq(await inspect(p, name, '{{.State.Status}}'), 'running', 'State.Status after unpause');
    t.eq((await runtimeState(t.env, p.rtRoot, id)).status, 'running', 'runtime state after unpause');
    const g = await counterFrozen(pid);
    t.ok(!g.frozen && g.b > g.a, `counter did not move after unpause (${g.a} → ${g.b})`);
    return `frozen at ${f.a}, moving again ${g.a}→${g.b}`;
  }),
  pcase('podman.kill', 'podman kill -s TERM (trapped, exit 7) and podman kill (SIGKILL, exit 137)', async (t, p, k) => {
    const a = newName('killterm');
    const { pid } = await runDetached(t, p, k, a, ['sh', '-c', 'trap "exit 7" TERM; while :; do usleep 20000; done']);
    await sleep(200);
    t.exit(await p.podman(['kill', '-s', 'TERM', a]), 0, 'podman kill -s TERM');
    const w = await p.podman(['wait', a], { timeoutMs: 15000 });
    t.eq(w.stdout.trim(), '7', 'exit code after SIGTERM');
    t.ok(!pidAlive(pid), `init ${pid} still alive`);
    const b = newName('killkill');
    const { pid: pid2 } = await runDetached(t, p, k, b, ['sleep', '1000']);
    t.exit(await p.podman(['kill', b]), 0, 'podman kill');
    const w2 = await p.podman(['wait', b], { timeoutMs: 15000 });
    t.eq(w2.stdout.trim(), '137', 'exit code after SIGKILL');
    t.ok(!pidAlive(pid2), `init ${pid2} still alive`);
    return 'TERM → 7, KILL → 137';
  }),
  pcase('podman.stop', 'podman stop: SIGTERM (trapped, exit 4); TERM ignored → SIGKILL after -t 2 (exit 137)', async (t, p, k) => {
    const a = newName('stopterm');
    const { pid } = await runDetached(t, p, k, a, ['sh', '-c', 'trap "exit 4" TERM; while :; do usleep 20000; done']);
    await sleep(200);
    const r = await p.podman(['stop', '-t', '10', a], { timeoutMs: 20000 });
    t.exit(r, 0, 'podman stop -t 10');
    t.ok(r.ms < 5000, `stop of a TERM-handling container took ${r.ms} ms`);
    t.eq(await inspect(p, a, '{{.State.ExitCode}}'), '4', 'exit code after SIGTERM');
    t.ok(!pidAlive(pid), `init ${pid} still alive`);
    const b = newName('stopkill');
    const { pid: pid2 } = await runDetached(t, p, k, b, ['sh', '-c', 'trap "" TERM; while :; do usleep 20000; done']);
    await sleep(200);
    const s = await p.podman(['stop', '-t', '2', b], { timeoutMs: 20000 });
    t.exit(s, 0, 'podman stop -t 2');
    t.ok(s.ms >= 1900, `SIGKILL came after ${s.ms} ms, before the 2 s timeout`);
    t.eq(await inspect(p, b, '{{.State.ExitCode}}'), '137', 'exit code after SIGKILL');
    t.ok(!pidAlive(pid2), `init ${pid2} still alive`);
    return `TERM → 4 in ${r.ms} ms; TERM ignored → KILL → 137 after ${s.ms} ms`;
  }),
  pcase('podman.restart', 'podman restart: a new init (new pid), running, the runtime\'s state follows', async (t, p, k) => {
    const name = newName('restart');
    const { id, pid } = await runDetached(t, p, k, name, ['sh', '-c', 'trap "exit 0" TERM; while :; do usleep 20000; done']);
    await sleep(200);
    const r = await p.podman(['restart', '-t', '5', name], { timeoutMs: 30000 });
    t.exit(r, 0, 'podman restart');
    const info = await waitFor(async () => {
      const s = await inspect(p, name, '{{.State.Status}} {{.State.Pid}} {{.RestartCount}}');
      return s?.startsWith('running ') && s;
    }, { timeoutMs: 10000 });
    t.ok(info, `not running after restart: ${await inspect(p, name, '{{json .State}}')}`);
    const pid2 = Number(info.split(' ')[1]);
    k.pids.push(pid2);
    t.ok(pid2 !== pid && pidAlive(pid2) && !pidAlive(pid), `pids: before ${pid}, after ${pid2}`);
    const st = await runtimeState(t.env, p.rtRoot, id);
    t.eq(st.status, 'running', 'runtime state after restart');
    t.eq(st.pid, pid2, 'runtime state pid after restart');
    const e = await p.podman(['exec', name, 'echo', 'ok']);
    t.exit(e, 0, 'podman exec after restart');
    return `pid ${pid} → ${pid2}`;
  }),
  pcase('podman.rm-f', 'podman rm -f of a running container: processes, runtime state, cgroups and mounts gone', async (t, p, k) => {
    const name = newName('rmf');
    const { id, pid } = await runDetached(t, p, k, name, ['sh', '-c', 'sleep 1001 & exec sleep 1002']);
    const child = await waitFor(() => children(pid)[0], { timeoutMs: 5000 });
    const merged = await inspect(p, name, '{{.GraphDriver.Data.MergedDir}}');
    t.ok(merged && mountOf('self', merged), `rootfs ${merged} not mounted`);
    // -t 1: sleep as pid 1 ignores SIGTERM; podman's default would wait 10 s before SIGKILL.
    t.exit(await p.podman(['rm', '-f', '-t', '1', name], { timeoutMs: 30000 }), 0, 'podman rm -f -t 1');
    t.eq((await p.podman(['ps', '-aq', '--filter', `name=${name}`])).stdout.trim(), '', 'podman ps -a after rm -f');
    t.ok(!pidAlive(pid), `init ${pid} still alive`);
    t.ok(!child || !pidAlive(child), `child ${child} still alive`);
    const st = await runtimeState(t.env, p.rtRoot, id);
    t.ok(st.error, `runtime still has state: ${JSON.stringify(st)}`);
    t.ok(!exists(path.join(p.rtRoot, id)), `${path.join(p.rtRoot, id)} left`);
    const gone = await waitFor(() => cgroupDirs(cgPath(p, id)).every((d) => !exists(d)), { timeoutMs: 5000 });
    t.ok(gone, `cgroup directories left: ${cgroupDirs(cgPath(p, id)).filter(exists).join(' ')}`);
    t.ok(!mountOf('self', merged), `rootfs ${merged} still mounted`);
    return 'container, processes, state, cgroups and rootfs mount gone';
  }),
  pcase('podman.memory-oom', 'podman --memory 32m: ~100 MB is OOM-killed (exit 137, OOMKilled), host limit 32 MiB, fine with 512m', async (t, p, k) => {
    const name = newName('oom');
    const r = await prun(t, p, k, ['--name', name, '--memory', '32m', IMAGE, ...OOM_CMD]);
    t.exit(r, 137, 'podman run --memory 32m (100 MB string in sh)');
    t.eq(await inspect(p, name, '{{.HostConfig.Memory}}'), String(32 << 20), 'HostConfig.Memory');
    // podman 4.3 reads OOMKilled from <bundle>/oom, but Debian's conmon 2.1.6 (given no
    // --persist-dir by this podman) writes `oom` into its working directory, podman's. So
    // State.OOMKilled is only true when podman starts the container from its bundle dir:
    // create, then start -a there (what a podman user sees once the two agree).
    const name2 = newName('oomk');
    const cid = path.join(p.dir, `cid-oom-${++seq}`);
    const c = await p.podman(['create', '--cidfile', cid, ...p.containerArgs(), '--name', name2, '--memory', '32m', IMAGE, ...OOM_CMD]);
    t.exit(c, 0, 'podman create --memory 32m');
    const id2 = readText(cid).trim();
    k.ids.add(id2); p.ids.add(id2);
    const bundle = await inspect(p, name2, '{{.StaticDir}}');
    t.ok(bundle && exists(bundle), `bundle dir ${bundle}`);
    const s = await p.podman(['start', '-a', name2], { timeoutMs: 60000, cwd: bundle });
    t.exit(s, 137, 'podman start -a (cwd: the bundle)');
    t.eq(await inspect(p, name2, '{{.State.OOMKilled}}'), 'true', 'State.OOMKilled');
    // The limit is the cgroup's: check it on the host while a container with it runs.
    const lim = newName('oomlim');
    const { id } = await runDetached(t, p, k, lim, ['sleep', '1000'], ['--memory', '32m']);
    t.eq(memoryLimit(cgPath(p, id)), String(32 << 20), 'host memory limit of libpod-<id>');
    // Control: the same command with room to spare succeeds, so the limit is what killed it.
    const ctl = await prun(t, p, k, ['--rm', '--memory', '512m', IMAGE, ...OOM_CMD]);
    t.exit(ctl, 0, 'control run with --memory 512m');
    t.eq(ctl.stdout.trim(), '100000000', 'control output (string length)');
    return 'exit 137 + OOMKilled at 32m (host limit 33554432); 512m prints 100000000';
  }),
  pcase('podman.read-only', 'podman run --read-only: rootfs read-only, /tmp /var/tmp /run writable tmpfs with the image\'s content copied up', async (t, p, k) => {
    const r = await prun(t, p, k, ['--rm', '--read-only', IMAGE, 'sh', '-c', [
      'touch /etc/x 2>/dev/null && echo etc-writable || echo etc-ro',
      'for d in /tmp /var/tmp /run; do touch $d/x && echo "$d $(awk -v m=$d \'$2 == m { print $3 }\' /proc/self/mounts)"; done',
      'cat /run/tsrunconf-copyup',
      'stat -c "%n %a" /run /tmp',
    ].join('; ')]);
    t.exit(r, 0, 'podman run --read-only');
    const out = r.stdout.trim().split('\n');
    t.eq(out[0], 'etc-ro', 'write to /etc');
    t.eq(out.slice(1, 4).join(','), '/tmp tmpfs,/var/tmp tmpfs,/run tmpfs', 'writable tmpfs mounts');
    t.eq(out[4], 'copied-up', '/run/tsrunconf-copyup (tmpcopyup of the image\'s /run)');
    // A tmpfs without mode= over an existing directory takes that directory's mode (runc 1.1.5
    // chmods it after the mount; runc >= 1.1.8 and crun pass it as mode=): the image's /run is
    // 0755, its /tmp 1777.
    t.eq(out.slice(5).join(','), '/run 755,/tmp 1777', 'modes of the tmpfs roots (the covered directories\')');
    return 'rootfs ro; /tmp /var/tmp /run tmpfs, rw, /run copied up, modes 755/1777 as the image\'s dirs';
  }),
  pcase('podman.tmpfs', 'podman run --tmpfs /x and --tmpfs /run:size=2m,mode=750: tmpfs mounts, options applied, /run\'s content copied up', async (t, p, k) => {
    const name = newName('tmpfs');
    const { pid } = await runDetached(t, p, k, name, ['sleep', '1000'], ['--tmpfs', '/x', '--tmpfs', '/run:size=2m,mode=750']);
    const x = mountOf(pid, '/x');
    t.ok(x && x.fstype === 'tmpfs', `/x: ${JSON.stringify(x)}`);
    t.ok(/(^|,)nosuid(,|$)/.test(x.opts) && /(^|,)nodev(,|$)/.test(x.opts), `/x options: ${x.opts}`);
    const run = mountOf(pid, '/run');
    t.ok(run && run.fstype === 'tmpfs' && run.opts.includes('size=2048k') && run.opts.includes('mode=750'), `/run: ${JSON.stringify(run)}`);
    const r = await p.podman(['exec', name, 'sh', '-c', 'echo hi > /x/f && cat /x/f; cat /run/tsrunconf-copyup']);
    t.exit(r, 0, 'podman exec (write /x, read /run)');
    t.eq(r.stdout, 'hi\ncopied-up\n', 'exec output');
    return `/x ${x.opts}; /run size=2048k mode=750, copied up`;
  }),
  pcase('podman.mount-tmpfs', 'podman run --mount type=tmpfs,destination=/y,tmpfs-size=1m and one over /run: tmpfs, size, /run copied up with its mode', async (t, p, k) => {
    const name = newName('mnttmpfs');
    const { pid } = await runDetached(t, p, k, name, ['sleep', '1000'], ['--mount', 'type=tmpfs,destination=/y,tmpfs-size=1m', '--mount', 'type=tmpfs,destination=/run']);
    const y = mountOf(pid, '/y');
    t.ok(y && y.fstype === 'tmpfs' && y.opts.includes('size=1024k'), `/y: ${JSON.stringify(y)}`);
    const r = await p.podman(['exec', name, 'sh', '-c', 'echo hi > /y/f && cat /y/f; cat /run/tsrunconf-copyup; stat -c "%n %a" /y /run']);
    t.exit(r, 0, 'podman exec');
    const out = r.stdout.trim().split('\n');
    t.eq(out.slice(0, 2).join(','), 'hi,copied-up', 'write to /y, /run copied up');
    t.eq(out.slice(2).join(','), '/y 1777,/run 755', 'modes of the tmpfs roots (/y new: 1777; /run: the image dir\'s 755)');
    return `/y ${y.opts}; /run copied up, mode 755`;
  }),
  pcase('podman.systemd', 'podman run --systemd=always with a stub /sbin/init: tmpfs /run /run/lock /tmp /var/log/journal, cgroup rw, stop by SIGRTMIN+3', async (t, p, k) => {
    const stub = path.join(p.dir, 'init-stub');
    fs.writeFileSync(stub, INIT_STUB, { mode: 0o755 });
    const name = newName('systemd');
    const { pid } = await runDetached(t, p, k, name, ['/sbin/init'], ['--systemd=always', '-v', `${stub}:/sbin/init:ro`]);
    let logs;
    await waitFor(async () => { logs = (await p.podman(['logs', name])).stdout; return logs.includes('ready'); }, { timeoutMs: 10000 });
    t.ok(logs.includes('ready'), `stub init did not get to "ready": ${short(logs)}`);
    t.eq(await inspect(p, name, '{{.Config.StopSignal}}'), '37', 'StopSignal (SIGRTMIN+3)');
    t.ok(/^container=podman pid=1$/m.test(logs), `env/pid: ${short(logs)}`);
    for (const m of ['/run', '/run/lock', '/tmp', '/var/log/journal']) {
      t.ok(new RegExp(`^mount ${m} tmpfs rw`, 'm').test(logs), `${m} not a rw tmpfs: ${short(logs, 500)}`);
    }
    t.ok(/^mount \/sys\/fs\/cgroup\/systemd cgroup rw/m.test(logs) || /^mount \/sys\/fs\/cgroup cgroup2 rw/m.test(logs), `systemd cgroup not rw: ${short(logs, 500)}`);
    t.ok(logs.includes('copied-up'), `/run not copied up: ${short(logs)}`);
    t.ok(logs.includes('cgroup-writable'), `cannot mkdir in the systemd cgroup: ${short(logs)}`);
    const s = await p.podman(['stop', '-t', '10', name], { timeoutMs: 20000 });
    t.exit(s, 0, 'podman stop');
    t.ok(s.ms < 5000, `stop took ${s.ms} ms (SIGRTMIN+3 not delivered?)`);
    t.eq(await inspect(p, name, '{{.State.ExitCode}}'), '0', 'exit code after SIGRTMIN+3');
    t.ok((await p.podman(['logs', name])).stdout.includes('got-SIGRTMIN+3'), 'stub did not see SIGRTMIN+3');
    t.ok(!pidAlive(pid), `init ${pid} still alive`);
    return `stub init ran in systemd mode, stopped by SIGRTMIN+3 in ${s.ms} ms`;
  }),
  pcase('podman.userns', 'podman run --uidmap 0:100000:65536 --gidmap 0:100000:65536: root in the container is 100000 on the host, owns /dev/mqueue', async (t, p, k) => {
    const map = ['--uidmap', '0:100000:65536', '--gidmap', '0:100000:65536'];
    const r = await prun(t, p, k, ['--rm', ...map, IMAGE, 'sh', '-c', 'cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /tmp/x && echo wrote; exit 4']);
    t.exit(r, 4, 'podman run --rm --uidmap …');
    const out = r.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '));
    t.eq(out[0], '0 100000 65536', 'uid_map');
    t.eq(out[1], '0 100000 65536', 'gid_map');
    t.eq(out.slice(2).join(','), '0,wrote', 'id -u and a write');
    const name = newName('userns');
    const { pid } = await runDetached(t, p, k, name, ['sleep', '1000'], map);
    const uid = /^Uid:\s+(\d+)/m.exec(readText(`/proc/${pid}/status`) ?? '')?.[1];
    t.eq(uid, '100000', 'host uid of the init');
    t.ok(nsLink(pid, 'user') !== nsLink('self', 'user'), 'init shares the host user namespace');
    const e = await p.podman(['exec', name, 'sh', '-c', 'id -u; exit 3']);
    t.exit(e, 3, 'podman exec in the user namespace');
    t.eq(e.stdout.trim(), '0', 'exec id -u');
    // The IPC namespace's mqueue filesystem belongs to the container's root (runc creates the
    // user namespace first and the IPC one as root in it), so root can chmod /dev/mqueue.
    const mq = fs.statSync(`/proc/${pid}/root/dev/mqueue`);
    const c = await p.podman(['exec', name, 'sh', '-c', 'stat -c %u /dev/mqueue; chmod 1777 /dev/mqueue && echo chmod-ok']);
    t.exit(await p.podman(['stop', '-t', '0', name], { timeoutMs: 20000 }), 0, 'podman stop');
    t.ok(!pidAlive(pid), `init ${pid} still alive after stop`);
    t.eq(mq.uid, 100000, 'host uid owning the container\'s /dev/mqueue');
    t.eq(c.stdout.trim().split('\n').join(','), '0,chmod-ok', `/dev/mqueue owner and chmod in the container (stderr: ${short(c.stderr)})`);
    return 'uid_map 0 100000 65536; host uid 100000; exec exit 3';
  }),
  pcase('podman.volume-O', 'podman run -v DIR:/o:O: the host dir seen through an overlay, writes stay in the container', async (t, p, k) => {
    const dir = fs.mkdtempSync(path.join(p.dir, 'vol-O-'));
    fs.writeFileSync(path.join(dir, 'f'), 'from-host\n');
    const name = newName('volO');
    const { pid } = await runDetached(t, p, k, name, ['sleep', '1000'], ['-v', `${dir}:/o:O`]);
    const m = mountOf(pid, '/o');
    t.ok(m && m.fstype === 'overlay' && m.opts.includes(`lowerdir=${dir}`), `/o: ${JSON.stringify(m)}`);
    const r = await p.podman(['exec', name, 'sh', '-c', 'cat /o/f; echo new > /o/g; echo changed > /o/f; cat /o/g /o/f']);
    t.exit(r, 0, 'podman exec');
    t.eq(r.stdout, 'from-host\nnew\nchanged\n', 'exec output');
    t.eq(fs.readFileSync(path.join(dir, 'f'), 'utf8'), 'from-host\n', 'host file after the container changed it');
    t.ok(!exists(path.join(dir, 'g')), 'a file the container created appeared on the host');
    return 'overlay on /o (lowerdir = host dir), host dir unchanged';
  }),
  pcase('podman.volume-z', 'podman run -v DIR:/z:z: a bind mount (no SELinux here: relabel is a no-op), writes reach the host', async (t, p, k) => {
    const dir = fs.mkdtempSync(path.join(p.dir, 'vol-z-'));
    fs.writeFileSync(path.join(dir, 'f'), 'from-host\n');
    const r = await prun(t, p, k, ['--rm', '-v', `${dir}:/z:z`, IMAGE, 'sh', '-c', 'cat /z/f; echo from-ctr > /z/g']);
    t.exit(r, 0, 'podman run -v …:z');
    t.eq(r.stdout, 'from-host\n', 'read in the container');
    t.eq(readText(path.join(dir, 'g')), 'from-ctr\n', 'container\'s write on the host');
    return 'bind read-write both ways';
  }),
  pcase('podman.volume-U', 'podman run --user 1234:1234 -v DIR:/u:U: the host dir chowned to 1234:1234, writable by the user', async (t, p, k) => {
    const dir = fs.mkdtempSync(path.join(p.dir, 'vol-U-'));
    fs.chmodSync(dir, 0o755);
    fs.writeFileSync(path.join(dir, 'f'), 'from-host\n');
    const r = await prun(t, p, k, ['--rm', '--user', '1234:1234', '-v', `${dir}:/u:U`, IMAGE, 'sh', '-c', 'id -u; echo from-ctr > /u/g && ls -ln /u | awk \'NR > 1 { print $3 ":" $4 " " $9 }\'']);
    t.exit(r, 0, 'podman run -v …:U');
    t.eq(r.stdout, '1234\n1234:1234 f\n1234:1234 g\n', 'id and ownership in the container');
    const st = fs.statSync(dir);
    t.eq(`${st.uid}:${st.gid}`, '1234:1234', 'host dir owner');
    t.eq(`${fs.statSync(path.join(dir, 'g')).uid}`, '1234', 'host owner of the container\'s file');
    return 'chowned to 1234:1234 on the host, written by uid 1234';
  }),
  pcase('podman.healthcheck', 'podman healthcheck run (exec through the runtime): unhealthy, then healthy; ps shows it', async (t, p, k) => {
    const name = newName('health');
    // No systemd here to run podman's healthcheck timer: interval disabled, run by hand.
    await runDetached(t, p, k, name, ['sleep', '1000'], ['--health-cmd', 'test -e /tmp/ok', '--health-interval', 'disable', '--health-retries', '1']);
    const a = await p.podman(['healthcheck', 'run', name]);
    t.exit(a, 1, 'podman healthcheck run (no /tmp/ok)');
    t.eq(await inspect(p, name, '{{.State.Health.Status}}'), 'unhealthy', 'Health.Status');
    t.exit(await p.podman(['exec', name, 'touch', '/tmp/ok']), 0, 'podman exec touch');
    const b = await p.podman(['healthcheck', 'run', name]);
    t.exit(b, 0, 'podman healthcheck run (with /tmp/ok)');
    t.eq(await inspect(p, name, '{{.State.Health.Status}}'), 'healthy', 'Health.Status');
    const ps = await p.podman(['ps', '--format', '{{.Status}}', '--filter', `name=${name}`]);
    t.ok(/\(healthy\)/.test(ps.stdout), `podman ps status: ${short(ps.stdout)}`);
    return 'unhealthy (1) → healthy (0)';
  }),
  pcase('podman.pid-host-stop', 'podman run --pid host, podman stop: SIGTERM to every process (runtime kill --all), all gone', async (t, p, k) => {
    const dir = fs.mkdtempSync(path.join(p.dir, 'pidhost-'));
    const name = newName('pidhost');
    const { pid } = await runDetached(t, p, k, name, ['sh', '-c',
      'sh -c "trap \\"echo child-term >> /log/l; exit 0\\" TERM; while :; do usleep 20000; done" & trap "echo parent-term >> /log/l; exit 5" TERM; while :; do usleep 20000; done'],
    ['--pid', 'host', '-v', `${dir}:/log`]);
    t.eq(nsLink(pid, 'pid'), nsLink('self', 'pid'), 'init in the host pid namespace');
    const child = await waitFor(() => children(pid)[0], { timeoutMs: 5000 });
    t.ok(child, `init ${pid} has no child`);
    k.pids.push(child);
    await sleep(300);
    const s = await p.podman(['stop', '-t', '10', name], { timeoutMs: 20000 });
    t.exit(s, 0, 'podman stop');
    t.ok(s.ms < 5000, `stop took ${s.ms} ms (SIGTERM not delivered to all?)`);
    t.eq(await inspect(p, name, '{{.State.ExitCode}}'), '5', 'exit code (init trapped TERM)');
    const got = (readText(path.join(dir, 'l')) ?? '').trim().split('\n').sort().join(',');
    t.eq(got, 'child-term,parent-term', 'processes that saw SIGTERM');
    t.ok(!pidAlive(pid) && !pidAlive(child), `alive after stop: ${[pid, child].filter(pidAlive).join(' ')}`);
    return `SIGTERM reached init and child; exit 5 in ${s.ms} ms`;
  }),
];
