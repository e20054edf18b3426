/**
 * tsrun-init driven directly through src/native/init-process.ts with hand-built plans: no CLI, no
 * spec conversion. Each test runs real containers as root and cleans up in a finally (processes
 * killed, temp dirs removed).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnInit, type InitEvent, type InitProcess } from '../src/native/init-process';
import type { CreatePlan, ExecPlan, PlanMountStep, PlanProcess } from '../src/native/init-plan';
import { MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_SLAVE } from '../src/bundle/mount-options';
import { copyRootfs } from './helpers/rootfs';
import { makeInit } from './helpers/tsrun';

makeInit();

function processPlan(args: string[], over: Partial<PlanProcess> = {}): PlanProcess {
  return {
    args,
    env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root'],
    cwd: '/',
    uid: 0,
    gid: 0,
    additionalGids: [],
    umask: 0o22,
    terminal: false,
    consoleWidth: 0,
    consoleHeight: 0,
    rlimits: [],
    oomScoreAdj: null,
    noNewPrivileges: true,
    capabilities: { bounding: [], effective: [], permitted: [], inheritable: [], ambient: [] },
    seccomp: null,
    apparmorProfile: '',
    selinuxLabel: '',
    preserveFds: 0,
    ...over,
  };
}

function mountStep(source: string, destination: string, fstype: string, flags: number, data = '', over: Partial<PlanMountStep> = {}): PlanMountStep {
  return { kind: 'mount', source, destination, fstype, flags, data, remountFlags: 0, propagation: [], recursiveAttrSet: 0, recursiveAttrClear: 0, sourceIsDir: true, ...over } as PlanMountStep;
}

const procMount = () => mountStep('proc', '/proc', 'proc', MS_NOSUID | MS_NODEV | MS_NOEXEC, '', { sourceIsDir: false });

class Sandbox {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-native-'));
  readonly rootfs = path.join(this.dir, 'rootfs');
  readonly inits: InitProcess[] = [];
  readonly pids: number[] = [];
  readonly fds: number[] = [];
  private outputs = 0;

  constructor() {
    copyRootfs(this.rootfs);
  }

  plan(args: string[], over: Partial<CreatePlan> = {}, proc: Partial<PlanProcess> = {}): CreatePlan {
    return {
      mode: 'create',
      id: path.basename(this.dir),
      process: processPlan(args, proc),
      consoleSocket: '',
      waitForExit: true,
      namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'uts' }, { type: 'ipc' }, { type: 'network' }],
      uidMappings: [],
      gidMappings: [],
      timeOffsets: {},
      hostname: null,
      domainname: null,
      rootfs: this.rootfs,
      rootfsReadonly: false,
      rootPropagation: MS_SLAVE | MS_REC,
      rootPropagationExplicit: false,
      mountSteps: [procMount()],
      devices: [],
      devSymlinks: [],
      setupDev: false,
      devRemountFlags: 0,
      noPivot: false,
      sysctl: [],
      maskedPaths: [],
      readonlyPaths: [],
      syncRuntimeHooks: false,
      createContainerHooks: [],
      startContainerHooks: [],
      statePrefix: '{"ociVersion":"1.2.0","id":"t","status":"creating","pid":',
      stateSuffix: ',"bundle":"/nonexistent"}',
      execFifo: '',
      personality: -1,
      ...over,
    };
  }

  /** Spawns the init with stdout/stderr going to files, sends the plan. */
  async start(plan: CreatePlan | ExecPlan, extraFds: number[] = []) {
    const n = this.outputs++;
    const outPath = path.join(this.dir, `stdout-${n}`);
    const errPath = path.join(this.dir, `stderr-${n}`);
    const nul = fs.openSync('/dev/null', 'r');
    const out = fs.openSync(outPath, 'w');
    const err = fs.openSync(errPath, 'w');
    let init: InitProcess;
    try {
      init = await spawnInit({ stdio: [nul, out, err], extraFds });
    } finally {
      for (const fd of [nul, out, err]) fs.closeSync(fd);
    }
    this.inits.push(init);
    init.sendPlan(plan);
    return {
      init,
      stdout: () => fs.readFileSync(outPath, 'utf8'),
      stderr: () => fs.readFileSync(errPath, 'utf8'),
    };
  }

  /** Reads messages until `until` matches (or eof/exit/error), with a deadline. */
  async collect(init: InitProcess, until: (e: InitEvent) => boolean = () => false, ms = 15000): Promise<InitEvent[]> {
    const seen: InitEvent[] = [];
    const deadline = Date.now() + ms;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no message within ${ms} ms (got ${JSON.stringify(seen)})`);
      let timer: NodeJS.Timeout | undefined;
      const e = await Promise.race([init.next(), new Promise<null>((r) => (timer = setTimeout(() => r(null), left)))]);
      clearTimeout(timer);
      if (!e) continue;
      seen.push(e);
      if (e.type === 'pid') {
        this.pids.push(e.pid);
        // No cgroup here: the init waits for this before it releases the container process.
        init.sendPlaced();
      }
      if (until(e) || e.type === 'eof' || e.type === 'error' || e.type === 'exit') return seen;
    }
  }

  /** Runs a create plan with waitForExit to the end. */
  async run(plan: CreatePlan | ExecPlan, extraFds: number[] = []) {
    const h = await this.start(plan, extraFds);
    const msgs = await this.collect(h.init);
    const exit = msgs.find((m) => m.type === 'exit') as { status: number } | undefined;
    const error = msgs.find((m) => m.type === 'error') as { message: string } | undefined;
    const pid = (msgs.find((m) => m.type === 'pid') as { pid: number } | undefined)?.pid ?? 0;
    return { msgs, status: exit?.status, error: error?.message, pid, stdout: h.stdout(), stderr: h.stderr(), init: h.init };
  }

  cleanup() {
    for (const i of this.inits) i.kill();
    for (const p of this.pids) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {}
    }
    for (const fd of this.fds) {
      try {
        fs.closeSync(fd);
      } catch {}
    }
    // A killed pid namespace init takes a moment to go; its mounts go with its mount namespace.
    const deadline = Date.now() + 5000;
    while (this.pids.some(alive) && Date.now() < deadline) spawnSync('sleep', ['0.05']);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

function sandboxTest(name: string, body: (s: Sandbox) => Promise<void>) {
  test(name, async () => {
    const s = new Sandbox();
    try {
      await body(s);
    } finally {
      s.cleanup();
    }
  });
}

sandboxTest('echo: output, exit status 0, pid reported before exit', async (s) => {
  const r = await s.run(s.plan(['echo', 'hello from tsrun-init']));
  assert.is(r.error, undefined);
  assert.is(r.stdout, 'hello from tsrun-init\n');
  assert.is(r.status, 0);
  assert.equal(r.msgs.map((m) => m.type), ['pid', 'ready', 'exit']);
  assert.ok(r.pid > 1);
});

sandboxTest('exit codes and signals are reported', async (s) => {
  assert.is((await s.run(s.plan(['sh', '-c', 'exit 3']))).status, 3);
  // pid 1 cannot be killed from inside its namespace: the signal comes from here.
  const h = await s.start(s.plan(['sleep', '30']));
  const msgs = await s.collect(h.init, (e) => e.type === 'ready');
  process.kill((msgs[0] as { pid: number }).pid, 'SIGKILL');
  const rest = await s.collect(h.init);
  assert.equal(rest, [{ type: 'exit', status: 128 + 9 }]);
});

sandboxTest('hostname, domainname, pid 1, cwd and env', async (s) => {
  const plan = s.plan(['sh', '-c', 'hostname; cat /proc/sys/kernel/domainname; echo $$; pwd; echo $FOO'], { hostname: 'box1', domainname: 'ex.test' }, { cwd: '/tmp', env: ['PATH=/bin', 'FOO=bar'] });
  const r = await s.run(plan);
  assert.is(r.error, undefined);
  assert.is(r.stdout, 'box1\nex.test\n1\n/tmp\nbar\n');
});

sandboxTest('tmpfs mount with flags and data, dirs created', async (s) => {
  const plan = s.plan(['sh', '-c', 'grep " /a/b/data " /proc/self/mountinfo']);
  plan.mountSteps.push(mountStep('tmpfs', '/a/b/data', 'tmpfs', MS_NOSUID | MS_NODEV, 'size=1024k,mode=700'));
  const r = await s.run(plan);
  assert.is(r.error, undefined);
  assert.match(r.stdout, /\/a\/b\/data rw,nosuid,nodev.* - tmpfs tmpfs rw.*size=1024k.*mode=700/);
  assert.ok(fs.statSync(path.join(s.rootfs, 'a/b/data')).isDirectory(), 'mount point created in the rootfs');
});

sandboxTest('bind mounts: directory, file (created), read-only remount', async (s) => {
  const src = path.join(s.dir, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'hello'), 'from the host\n');
  const file = path.join(s.dir, 'file.txt');
  fs.writeFileSync(file, 'single file\n');
  const plan = s.plan(['sh', '-c', 'cat /mnt/src/hello /etc/bound.txt; touch /mnt/src/new 2>/dev/null || echo ro-refused']);
  plan.mountSteps.push(mountStep(src, '/mnt/src', '', MS_BIND | MS_REC, '', { remountFlags: MS_RDONLY }));
  plan.mountSteps.push(mountStep(file, '/etc/bound.txt', '', MS_BIND | MS_REC, '', { sourceIsDir: false }));
  const r = await s.run(plan);
  assert.is(r.error, undefined);
  assert.is(r.stdout, 'from the host\nsingle file\nro-refused\n');
  assert.ok(fs.statSync(path.join(s.rootfs, 'etc/bound.txt')).isFile(), 'file mount point created');
  assert.not.ok(fs.existsSync(path.join(src, 'new')));
});

sandboxTest('symlinked destinations pointing outside the rootfs stay inside it', async (s) => {
  const host = path.join(s.dir, 'host-target');
  const host2 = path.join(s.dir, 'host-target2');
  for (const d of [host, host2]) {
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'keep'), 'untouched');
  }
  // An absolute host path, and a relative path climbing far above the root.
  fs.symlinkSync(host, path.join(s.rootfs, 'abs-escape'));
  fs.symlinkSync(`../../../../../../..${host2}/rel`, path.join(s.rootfs, 'rel-escape'));
  const plan = s.plan(['sh', '-c', `grep -c " ${host} " /proc/self/mountinfo; grep -c " ${host2}/rel/sub " /proc/self/mountinfo; ls -A /abs-escape/`]);
  plan.mountSteps.push(mountStep('tmpfs', '/abs-escape', 'tmpfs', 0, 'size=64k'));
  plan.mountSteps.push(mountStep('tmpfs', '/rel-escape/sub', 'tmpfs', 0, 'size=64k'));
  const r = await s.run(plan);
  assert.is(r.error, undefined);
  // Both mounts landed on the container-side path, i.e. <rootfs><host>, shadowing nothing.
  assert.is(r.stdout, '1\n1\n');
  for (const d of [host, host2]) {
    assert.equal(fs.readdirSync(d), ['keep']);
    assert.is(fs.readFileSync(path.join(d, 'keep'), 'utf8'), 'untouched');
  }
  assert.ok(fs.statSync(path.join(s.rootfs, host2, 'rel/sub')).isDirectory(), 'created inside the rootfs');
  assert.ok(fs.statSync(path.join(s.rootfs, host)).isDirectory(), 'created inside the rootfs');
});

sandboxTest('a /proc destination that is a symlink is refused, nothing runs', async (s) => {
  fs.rmSync(path.join(s.rootfs, 'proc'), { recursive: true });
  fs.symlinkSync('/tmp', path.join(s.rootfs, 'proc'));
  const r = await s.run(s.plan(['touch', '/tmp/ran']));
  assert.match(r.error ?? '', /\/proc/);
  assert.match(r.error ?? '', /symlink/);
  assert.is(r.status, undefined);
  assert.not.ok(fs.existsSync(path.join(s.rootfs, 'tmp/ran')));
  const exit = await r.init.stage0Exit;
  assert.is(exit.code, 1);
  assert.not.ok(alive(r.pid), 'container init is gone');
});

sandboxTest('missing or non-executable executables: runc\'s messages, before ready', async (s) => {
  fs.writeFileSync(path.join(s.rootfs, 'bin/noexec'), '#!/bin/sh\n', { mode: 0o644 });
  const cases: [string, string][] = [
    ['nope', 'exec: "nope": executable file not found in $PATH'],
    ['/bin/nope', 'exec: "/bin/nope": stat /bin/nope: no such file or directory'],
    ['/bin/noexec', 'exec: "/bin/noexec": permission denied'],
    ['/tmp', 'exec: "/tmp": permission denied'],
  ];
  for (const [arg, msg] of cases) {
    const r = await s.run(s.plan([arg]));
    assert.is(r.error, msg);
    assert.equal(r.msgs.map((m) => m.type), ['pid', 'error']);
    assert.is((await r.init.stage0Exit).code, 1);
  }
});

sandboxTest('a cwd reached through a host fd (/proc/self/fd/3) is refused', async (s) => {
  const hostDir = fs.openSync(s.dir, 'r');
  s.fds.push(hostDir);
  const plan = s.plan(['sh', '-c', 'echo escaped; ls'], {}, { cwd: '/proc/self/fd/3', preserveFds: 1 });
  const r = await s.run(plan, [hostDir]);
  assert.match(r.error ?? '', /cwd \/proc\/self\/fd\/3 is outside of the container root/, `error: ${r.error}, stdout: ${r.stdout}`);
  assert.not.match(r.stdout, 'escaped');
});

sandboxTest('fds beyond preserveFds do not reach the container; preserved ones do', async (s) => {
  // libuv dups the extra fd into the init without close-on-exec, like a leaked fd would be.
  const leaky = fs.openSync(path.join(s.dir, 'secret'), 'w');
  s.fds.push(leaky);
  const list = ['sh', '-c', 'ls /proc/self/fd | sort -n | tr "\\n" " "'];
  const leaked = await s.run(s.plan(list, {}, { preserveFds: 0 }), [leaky]);
  assert.is(leaked.error, undefined);
  assert.is(leaked.stdout.trim(), '0 1 2 3', 'only stdio (+ ls\'s own directory fd)');
  const kept = await s.run(s.plan(['sh', '-c', 'readlink /proc/self/fd/3'], {}, { preserveFds: 1 }), [leaky]);
  assert.is(kept.stdout.trim(), path.join(s.dir, 'secret'));
});

sandboxTest('the waiting init: memfd exe, RSS under 4 MB, runs only after the fifo byte', async (s) => {
  const fifo = path.join(s.dir, 'exec.fifo');
  assert.is(spawnSync('mkfifo', ['-m', '0600', fifo]).status, 0);
  const plan = s.plan(['sh', '-c', 'echo started'], { execFifo: fifo, waitForExit: false });
  const h = await s.start(plan);
  const msgs = await s.collect(h.init, (e) => e.type === 'ready');
  assert.equal(msgs.map((m) => m.type), ['pid', 'ready']);
  const pid = (msgs[0] as { pid: number }).pid;
  const exit = await h.init.stage0Exit;
  assert.is(exit.code, 0, 'stage 0 exits once the init is ready');

  assert.match(fs.readlinkSync(`/proc/${pid}/exe`), /^\/memfd:tsrun-init/);
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
  console.log(`    waiting init VmRSS: ${rss} kB`);
  assert.ok(rss < 4096, `VmRSS ${rss} kB`);
  await new Promise((r) => setTimeout(r, 300));
  assert.is(h.stdout(), '', 'nothing ran before start');
  assert.ok(alive(pid));
  const w = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  fs.writeSync(w, '0');
  fs.closeSync(w);
  const deadline = Date.now() + 5000;
  while (h.stdout() === '' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.is(h.stdout(), 'started\n');
});

sandboxTest('user namespace: uid/gid maps written, root inside; the init is not dumpable, the process is', async (s) => {
  fs.chmodSync(s.dir, 0o755); // the mapped root must be able to reach its rootfs
  const fifo = path.join(s.dir, 'exec.fifo');
  assert.is(spawnSync('mkfifo', ['-m', '0600', fifo]).status, 0);
  const plan = s.plan(['sh', '-c', 'cat /proc/self/uid_map /proc/self/gid_map; id -u; readlink /proc/self/ns/user; exec sleep 100'], {
    namespaces: [{ type: 'user' }, { type: 'pid' }, { type: 'mount' }, { type: 'uts' }, { type: 'ipc' }, { type: 'network' }],
    uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
    gidMappings: [{ containerID: 0, hostID: 200000, size: 65536 }],
    execFifo: fifo,
  });
  // As the runtime makes it (src/container/create.ts): 0600 and root's, no chown for the
  // container's root. Stage 0 opens it before the user namespace exists; the init inherits the fd.
  assert.is(fs.statSync(fifo).mode & 0o777, 0o600);
  const h = await s.start(plan);
  const msgs = await s.collect(h.init, (e) => e.type === 'ready');
  assert.equal(msgs.map((m) => m.type), ['pid', 'ready'], JSON.stringify(msgs));
  const pid = (msgs[0] as { pid: number }).pid;
  assert.match(fs.readFileSync(`/proc/${pid}/status`, 'utf8'), /\nUid:\s+100000\s/);
  // Files under /proc/<pid> of a non-dumpable process belong to root, of a dumpable one to its
  // (host) uid (the directory itself is exempt).
  assert.is(fs.statSync(`/proc/${pid}/environ`).uid, 0, 'waiting init is not dumpable');
  const w = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  fs.writeSync(w, '0');
  fs.closeSync(w);
  const deadline = Date.now() + 5000;
  while (h.stdout().split('\n').length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const lines = h.stdout().trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '));
  assert.equal(lines.slice(0, 3), ['0 100000 65536', '0 200000 65536', '0']);
  assert.is.not(lines[3], fs.readlinkSync('/proc/self/ns/user'));
  assert.is(fs.statSync(`/proc/${pid}/environ`).uid, 100000, 'the exec\'d process is dumpable again');
});

sandboxTest('createContainer hook gets the state on stdin; a slow hook times out', async (s) => {
  const out = path.join(s.dir, 'hook-state.json');
  const plan = s.plan(['true'], {
    createContainerHooks: [{ path: '/bin/sh', args: ['sh', '-c', `cat > ${out}; echo; echo "$HOOKVAR"`], env: ['HOOKVAR=yes'], timeout: 0 }],
  });
  const r = await s.run(plan);
  assert.is(r.error, undefined);
  const json = fs.readFileSync(out, 'utf8');
  const env = r.stdout.trim();
  assert.is(JSON.parse(json).pid, r.pid);
  assert.is(env, 'yes');

  const slow = s.plan(['true'], { createContainerHooks: [{ path: '/bin/sleep', args: ['sleep', '30'], env: [], timeout: 1 }] });
  const t0 = Date.now();
  const r2 = await s.run(slow);
  assert.is(r2.error, 'createContainer hook /bin/sleep timed out');
  assert.ok(Date.now() - t0 < 10000);
  // 4294968 s is 4294968000 ms: as poll()'s int of milliseconds it wraps to 704 ms, which killed
  // a one-second hook as "timed out"; the schema allows timeouts up to a year.
  const long = s.plan(['true'], { createContainerHooks: [{ path: '/bin/sleep', args: ['sleep', '1'], env: [], timeout: 4294968 }] });
  assert.is((await s.run(long)).error, undefined, 'a hook with a timeout beyond 2^31 ms finishes');
  const failing = s.plan(['true'], { createContainerHooks: [{ path: '/bin/sh', args: ['sh', '-c', 'exit 4'], env: [], timeout: 0 }] });
  assert.is((await s.run(failing)).error, 'error running createContainer hook /bin/sh: exit status 4');
});

sandboxTest('exec mode: joins a running container\'s namespaces', async (s) => {
  const c = await s.start(s.plan(['sleep', '100'], { hostname: 'execbox', waitForExit: false }));
  const msgs = await s.collect(c.init, (e) => e.type === 'ready');
  const initPid = (msgs[0] as { pid: number }).pid;
  assert.is(msgs[1].type, 'ready');
  const exec: ExecPlan = {
    mode: 'exec',
    id: 'x',
    initPid,
    initStartTime: Number(fs.readFileSync(`/proc/${initPid}/stat`, 'utf8').split(') ')[1].split(' ')[19]),
    joinNamespaces: ['pid', 'mount', 'uts', 'ipc', 'network'],
    process: processPlan(['sh', '-c', 'hostname; cat /proc/1/cmdline | tr "\\0" " "; echo; cat /proc/self/oom_score_adj; exit 7'], { oomScoreAdj: 123 }),
    consoleSocket: '',
    waitForExit: true,
  };
  const r = await s.run(exec);
  assert.is(r.error, undefined);
  assert.is(r.stdout, 'execbox\nsleep 100 \n123\n');
  assert.is(r.status, 7);
  assert.ok(r.pid > 0 && r.pid !== initPid);
  const bad = await s.run({ ...exec, process: processPlan(['nope']) });
  assert.is(bad.error, 'exec: "nope": executable file not found in $PATH');
});

sandboxTest('user, groups, capabilities (bounding, ambient), no_new_privs, umask, rlimits', async (s) => {
  const NET_BIND = 10;
  const KILL = 5;
  const plan = s.plan(['sh', '-c', 'grep -E "^(Uid|Gid|Groups|Cap...|NoNewPrivs):" /proc/self/status; umask; ulimit -n'], {}, {
    uid: 1000,
    gid: 1001,
    additionalGids: [10, 20],
    umask: 0o27,
    noNewPrivileges: true,
    rlimits: [{ resource: 7 /* RLIMIT_NOFILE */, soft: 123, hard: 456 }],
    capabilities: { bounding: [NET_BIND, KILL, 62], effective: [NET_BIND], permitted: [NET_BIND, KILL], inheritable: [NET_BIND], ambient: [NET_BIND] },
  });
  const r = await s.run(plan);
  assert.is(r.error, undefined);
  const f = Object.fromEntries(r.stdout.trim().split('\n').filter((l) => l.includes(':')).map((l) => l.split(/:\s*/)).map(([k, v]) => [k, v.trim().split(/\s+/).join(' ')]));
  assert.is(f.Uid, '1000 1000 1000 1000');
  assert.is(f.Gid, '1001 1001 1001 1001');
  assert.is(f.Groups, '10 20');
  // Non-root after exec: permitted and effective are what the ambient set carries.
  assert.is(f.CapBnd, '0000000000000420');
  assert.is(f.CapInh, '0000000000000400');
  assert.is(f.CapPrm, '0000000000000400');
  assert.is(f.CapEff, '0000000000000400');
  assert.is(f.CapAmb, '0000000000000400');
  assert.is(f.NoNewPrivs, '1');
  assert.match(r.stdout, /\n0027\n123\n$/);
});

sandboxTest('terminal: master fd on the console socket (one fd, pty name), slave is stdio, size set', async (s) => {
  const sock = path.join(s.dir, 'console.sock');
  const receiver = spawn('python3', ['-c', `
import socket, array, os, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1); print('listening', flush=True)
c, _ = s.accept()
msg, anc, flags, addr = c.recvmsg(1024, socket.CMSG_SPACE(16))
fds = []
for lvl, typ, data in anc:
    fds += array.array('i', data[:len(data) - len(data) % 4])
print('fds', len(fds), 'name', msg.decode(), flush=True)
out = b''
while True:
    try:
        b = os.read(fds[0], 4096)
    except OSError:
        break
    if not b:
        break
    out += b
sys.stdout.write(out.decode(errors='replace')); sys.stdout.flush()
`, sock], { stdio: ['ignore', 'pipe', 'inherit'] });
  s.pids.push(receiver.pid!);
  let output = '';
  receiver.stdout!.on('data', (d) => (output += d));
  const done = new Promise((r) => receiver.on('exit', r));
  const deadline = Date.now() + 5000;
  while (!output.includes('listening') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const plan = s.plan(['sh', '-c', 'tty; stty size; stat -c %t:%T /dev/console $(tty); echo console-ok'], { consoleSocket: sock }, { terminal: true, consoleWidth: 100, consoleHeight: 30 });
  plan.mountSteps.push(
    mountStep('tmpfs', '/dev', 'tmpfs', MS_NOSUID, 'mode=755'),
    mountStep('devpts', '/dev/pts', 'devpts', MS_NOSUID | MS_NOEXEC, 'newinstance,ptmxmode=0666,mode=0620'),
  );
  plan.devSymlinks = [{ target: 'pts/ptmx', linkPath: '/dev/ptmx' }];
  const r = await s.run(plan);
  assert.is(r.error, undefined);
  assert.is(r.status, 0);
  await done;
  const lines = output.replace(/\r/g, '').trim().split('\n');
  assert.match(lines[1], /^fds 1 name \/dev\/pts\/\d+$/);
  const name = lines[1].split(' ')[3];
  assert.is(lines[2], name, 'stdin is the pty slave');
  assert.is(lines[3], '30 100');
  assert.is(lines[4], lines[5], '/dev/console is the slave (same device numbers)');
  assert.match(lines[4], /^88:\d+$/);
  assert.is(lines[6], 'console-ok');
});


// Every error says in which phase of the init it happened and with which errno (0: not a system
// call's), so that callers branch on those and never on the message's wording.
sandboxTest('errors carry their phase and errno', async (s) => {
  const errorOf = async (plan: any) => (await s.run(plan)).msgs.find((m) => m.type === 'error') as { phase?: string; errno?: number; message: string } | undefined;
  const bad = s.plan(['true']) as any;
  bad.surprise = 1;
  assert.equal(await errorOf(bad), { type: 'error', phase: 'plan', errno: 0, message: 'plan: /surprise: unknown field' });
  const nsPath = s.plan(['true']) as any;
  nsPath.namespaces = [...nsPath.namespaces.filter((n: any) => n.type !== 'uts'), { type: 'uts', path: '/nonexistent-ns' }];
  const ns = await errorOf(nsPath);
  assert.equal([ns?.phase, ns?.errno], ['namespaces', 2], ns?.message);
  const fs1 = s.plan(['true']);
  fs1.mountSteps.push(mountStep('none', '/mnt', 'no-such-fstype', 0));
  const rootfs = await errorOf(fs1);
  assert.equal([rootfs?.phase, rootfs?.errno], ['rootfs', 19], rootfs?.message); // ENODEV
  const hook = await errorOf(s.plan(['true'], { createContainerHooks: [{ path: '/bin/sh', args: ['sh', '-c', 'exit 4'], env: [], timeout: 0 }] }));
  assert.equal([hook?.phase, hook?.errno, hook?.message], ['hooks', 0, 'error running createContainer hook /bin/sh: exit status 4']);
  const exe = await errorOf(s.plan(['/no/such/binary']));
  assert.equal([exe?.phase, exe?.errno], ['process', 2], exe?.message);
  // Control: a good plan reports no error at all.
  assert.is(await errorOf(s.plan(['true'])), undefined);
});

// The init checks the whole plan before it acts: each bad value is refused with its pointer, no
// pid is ever reported (nothing was cloned), and the rootfs is untouched. Control: the same plan
// with the value in range runs.
sandboxTest('a bad plan is refused as a whole before anything happens: ids, caps, enums, unknown fields', async (s) => {
  const marker = path.join(s.rootfs, 'tmp/ran');
  const bad: [string, (p: any) => void, RegExp][] = [
    ['uid -1 as u32', (p) => (p.process.uid = 4294967295), /\/process\/uid: 4294967295 is out of range/],
    ['gid -1 as u32', (p) => (p.process.gid = 4294967295), /\/process\/gid: 4294967295 is out of range/],
    ['additional gid', (p) => (p.process.additionalGids = [5, 2147483648]), /\/process\/additionalGids\/1: /],
    ['negative uid', (p) => (p.process.uid = -1), /\/process\/uid: -1 is out of range/],
    ['uid map reaching (u32)-1', (p) => (p.uidMappings = [{ containerID: 0, hostID: 4294900000, size: 67296 }]), /\/uidMappings\/0: range ends/],
    ['capability 64', (p) => (p.process.capabilities.bounding = [64]), /\/process\/capabilities\/bounding\/0: 64 is out of range/],
    ['capabilities absent', (p) => (p.process.capabilities = null), /\/process\/capabilities: must be an object/],
    ['rlimit resource', (p) => (p.process.rlimits = [{ resource: 16, soft: 1, hard: 1 }]), /\/process\/rlimits\/0\/resource/],
    ['soft above hard', (p) => (p.process.rlimits = [{ resource: 7, soft: 2, hard: 1 }]), /soft limit above hard/],
    ['namespace type', (p) => (p.namespaces = [...p.namespaces, { type: 'bogus' }]), /\/namespaces\/5\/type: unknown namespace type/],
    ['device type', (p) => (p.devices = [{ path: '/dev/x', type: 'q', major: 1, minor: 1, fileMode: 0o666, uid: 0, gid: 0, bind: false }]), /\/devices\/0\/type: unknown value/],
    ['unknown field', (p) => (p.surprise = 1), /\/surprise: unknown field/],
    ['relative cwd', (p) => (p.process.cwd = 'tmp'), /\/process\/cwd: must be an absolute path/],
    ['NUL in an arg', (p) => (p.process.args = ['touch', '/tmp/ran\u0000x']), /\/process\/args\/1: contains a NUL byte/],
    ['sysctl climbing out', (p) => (p.sysctl = [{ key: '../../etc/x', value: '1' }]), /\/sysctl\/0\/key: not a sysctl name/],
    ['oom score', (p) => (p.process.oomScoreAdj = 1001), /\/process\/oomScoreAdj: 1001 is out of range/],
    // An id-mapped bind: both lists or none, none only with a joined user namespace, binds only.
    ...((): [string, (p: any) => void, RegExp][] => {
      const maps = [{ containerID: 0, hostID: 100000, size: 10 }];
      const step = (idmap: object, flags = MS_BIND) => (p: any) => p.mountSteps.push(mountStep('/tmp', '/mnt', '', flags, '', { idmap } as any));
      return [
        ['idmap without a joined user namespace', step({ recursive: false, uidMappings: [], gidMappings: [] }), /\/mountSteps\/\d+\/idmap: no mappings and no joined user namespace/],
        ['idmap with uid maps only', step({ recursive: false, uidMappings: maps, gidMappings: [] }), /\/idmap: uidMappings and gidMappings go together/],
        ['idmap of a non-bind', step({ recursive: false, uidMappings: maps, gidMappings: maps }, 0), /\/idmap: only for bind mounts/],
        ['idmap map range', step({ recursive: true, uidMappings: [{ containerID: 0, hostID: 4294967290, size: 10 }], gidMappings: maps }), /\/idmap\/uidMappings\/0: range ends/],
        ['idmap unknown member', step({ recursive: true, uidMappings: maps, gidMappings: maps, userns: '/x' }), /\/idmap\/userns: unknown field/],
      ];
    })(),
    // Without a mount namespace nothing may be mounted (it would be the host's mount namespace).
    ['mounts without a mount namespace', (p) => (p.namespaces = p.namespaces.filter((n: any) => n.type !== 'mount')), /\/(mountSteps|devices|devSymlinks|setupDev): must be (empty|false) without a mount namespace/],
  ];
  for (const [what, change, expected] of bad) {
    const plan = s.plan(['touch', '/tmp/ran']) as any;
    change(plan);
    const r = await s.run(plan);
    assert.match(r.error ?? '', expected, `${what}: ${r.error}`);
    assert.match(r.error ?? '', /^plan: /, what);
    assert.is(r.pid, 0, `${what}: no process was created`);
    assert.not.ok(fs.existsSync(marker), `${what}: nothing ran`);
  }
  const ok = await s.run(s.plan(['touch', '/tmp/ran'], {}, { uid: 2147483647, gid: 2147483647, additionalGids: [0] }));
  assert.is(ok.error, undefined, 'control: the largest valid ids run');
  assert.is(ok.status, 0);
  assert.ok(fs.existsSync(marker), 'control: the process ran');
});
test.run();
