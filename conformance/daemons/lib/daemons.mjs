// Installing, starting and stopping a private containerd and dockerd, and putting the host back.
// Everything lives under one temp dir and one tag (in the containerd namespace and the cgroup
// paths), so that cleanup can find exactly what this run created and nothing else.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { run, startDaemon, sleep, waitFor, readText } from './proc.mjs';

const PACKAGES = [
  // [binary that proves it is installed, Debian package]
  ['/usr/bin/containerd', 'containerd'],
  ['/usr/bin/ctr', 'containerd'],
  ['/usr/bin/containerd-shim-runc-v2', 'containerd'],
  ['/usr/sbin/dockerd', 'docker.io'],
  // dockerd looks up docker-init for `run --init`; Debian's tini package ships it.
  ['/usr/bin/docker-init', 'tini'],
  // script(1) gives `run -t` and `exec -t` a real pseudo-terminal.
  ['/usr/bin/script', 'bsdutils'],
  // The podman.* cases: podman 4.3 drives the runtime through conmon (a dependency).
  ['/usr/bin/podman', 'podman'],
  ['/usr/bin/conmon', 'conmon'],
];

export async function ensurePackages(log) {
  const missing = [...new Set(PACKAGES.filter(([bin]) => !fs.existsSync(bin)).map(([, pkg]) => pkg))];
  if (missing.length === 0) return { ok: true };
  log(`installing ${missing.join(' ')} (apt-get)`);
  // Without systemd, the packages' maintainer scripts would start the system dockerd/containerd
  // through invoke-rc.d on the default sockets; policy-rc.d (exit 101) forbids that.
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !fs.existsSync(policy);
  if (ownPolicy) fs.writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const upd = await run(['apt-get', 'update', '-q'], { env, timeoutMs: 300000 });
    if (upd.code !== 0) return { ok: false, reason: `apt-get update failed: ${lastLine(upd.stderr)}` };
    const inst = await run(['apt-get', 'install', '-y', '-q', '--no-install-recommends', ...missing], { env, timeoutMs: 600000 });
    if (inst.code !== 0) return { ok: false, reason: `apt-get install ${missing.join(' ')} failed: ${lastLine(inst.stderr || inst.stdout)}` };
  } finally {
    if (ownPolicy) fs.rmSync(policy, { force: true });
  }
  const still = PACKAGES.filter(([bin]) => !fs.existsSync(bin)).map(([bin]) => bin);
  if (still.length) return { ok: false, reason: `still missing after apt-get: ${still.join(' ')}` };
  return { ok: true };
}

const lastLine = (s) => s.trim().split('\n').pop() ?? '';

export class Env {
  constructor({ tmp, tag, runtime, shim, log }) {
    this.tmp = tmp;
    this.tag = tag;
    this.runtime = runtime;
    this.shim = shim; // the runtime-v2 shim binary of the shim.* cases (ctr run --runtime <path>)
    this.log = log;
    this.ns = tag; // containerd namespace for ctr cases
    this.ctrdSock = path.join(tmp, 'ctrd.sock');
    this.runcRoot = path.join(tmp, 'runc-root'); // --runc-root for ctr: the runtime's --root
    this.dockerSock = path.join(tmp, 'docker.sock');
    this.dockerExec = path.join(tmp, 'dx'); // short: libnetwork puts unix sockets under it
    this.dockerData = path.join(tmp, 'docker-data');
    this.dockerNs = `${tag}-moby`;
    this.cgroupParent = `/${tag}-docker`;
    // dockerd passes `--root <exec-root>/runtime-<name>/<containerd namespace>` to the runtime.
    this.dockerRuntimeRoot = path.join(this.dockerExec, 'runtime-tsrun', this.dockerNs);
    this.dockerBin = process.env.DOCKER || 'docker';
    this.containerd = null;
    this.dockerd = null;
    this.mountsBefore = new Set(mountPoints());
    this.keyJsonExisted = fs.existsSync('/etc/docker/key.json');
  }

  // ctr with our address and namespace.
  ctr(args, opts) {
    return run(['ctr', '--address', this.ctrdSock, '--namespace', this.ns, ...args], opts);
  }

  docker(args, opts = {}) {
    const env = { ...process.env, DOCKER_HOST: `unix://${this.dockerSock}`, DOCKER_CONFIG: path.join(this.tmp, 'docker-client') };
    return run([this.dockerBin, ...args], { ...opts, env });
  }

  // The runtime under test, pointed at the state dir the daemon gave it.
  rt(root, args, opts) {
    return run([this.runtime, '--root', root, ...args], opts);
  }

  async startContainerd() {
    const dir = path.join(this.tmp, 'containerd');
    fs.mkdirSync(dir, { recursive: true });
    const q = JSON.stringify;
    const config = [
      'version = 2',
      `root = ${q(path.join(dir, 'root'))}`,
      `state = ${q(path.join(dir, 'state'))}`,
      // No Kubernetes here: the CRI plugin would only add start-up time and noise.
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = ${q(this.ctrdSock)}`,
      '[ttrpc]',
      `  address = ${q(this.ctrdSock + '.ttrpc')}`,
      '[debug]',
      '  level = "info"',
      `  address = ${q(path.join(dir, 'debug.sock'))}`,
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = ${q(path.join(dir, 'opt'))}`,
      '',
    ].join('\n');
    const cfg = path.join(dir, 'config.toml');
    fs.writeFileSync(cfg, config);
    this.containerdConfig = cfg;
    this.containerdLog = path.join(this.tmp, 'containerd.log');
    await this.launchContainerd();
  }

  // Starts containerd on the config written by startContainerd and waits until it answers.
  async launchContainerd() {
    this.containerd = startDaemon(['containerd', '--config', this.containerdConfig], this.containerdLog);
    const ok = await waitFor(async () => {
      if (this.containerd.exitCode !== null) return 'exited';
      const r = await run(['ctr', '--address', this.ctrdSock, 'version'], { timeoutMs: 5000 });
      return r.code === 0;
    }, { timeoutMs: 30000, intervalMs: 200 });
    if (ok !== true) throw new Error(`containerd did not start (${ok === 'exited' ? 'exited' : 'timeout'}): ${tail(this.containerdLog)}`);
  }

  // Stops containerd with SIGTERM (shims and their tasks keep running, as on a daemon upgrade)
  // and starts it again on the same config, root and state: it reconnects to the shims it finds
  // in its state dir. Returns { stoppedMs, startedMs }.
  async restartContainerd() {
    const t0 = Date.now();
    const old = this.containerd;
    if (old && old.exitCode === null) {
      try { old.kill('SIGTERM'); } catch { /* gone */ }
      const r = await Promise.race([old.exited, sleep(20000).then(() => null)]);
      if (r === null) throw new Error('containerd ignored SIGTERM for 20 s');
    }
    const t1 = Date.now();
    fs.appendFileSync(this.containerdLog, `--- restart (conformance/daemons) ---\n`);
    await this.launchContainerd();
    return { stoppedMs: t1 - t0, startedMs: Date.now() - t1 };
  }

  /** dockerd's daemon.json: the runtime under test as the default (bench/clients.mjs adds runc beside it). */
  dockerConfig() {
    return { runtimes: { tsrun: { path: this.runtime } }, 'default-runtime': 'tsrun' };
  }

  async startDockerd() {
    fs.mkdirSync(this.dockerData, { recursive: true });
    fs.mkdirSync(path.join(this.tmp, 'docker-client'), { recursive: true });
    const cfg = path.join(this.tmp, 'daemon.json');
    fs.writeFileSync(cfg, JSON.stringify(this.dockerConfig(), null, 2));
    this.dockerdLog = path.join(this.tmp, 'dockerd.log');
    this.dockerd = startDaemon([
      'dockerd',
      '--config-file', cfg,
      '-H', `unix://${this.dockerSock}`,
      '--data-root', this.dockerData,
      '--exec-root', this.dockerExec,
      '--pidfile', path.join(this.tmp, 'dockerd.pid'),
      // Our private containerd, in a namespace of its own (no second containerd to clean up).
      '--containerd', this.ctrdSock,
      '--containerd-namespace', this.dockerNs,
      '--containerd-plugins-namespace', `${this.dockerNs}-plugins`,
      // No network is available and none is needed: no bridge, no iptables rules on the host.
      '--iptables=false', '--ip6tables=false', '--bridge=none', '--ip-masq=false', '--ip-forward=false',
      // No systemd on the host.
      '--exec-opt', 'native.cgroupdriver=cgroupfs',
      '--cgroup-parent', this.cgroupParent,
      '--init-path', '/usr/bin/docker-init',
      '--userland-proxy=false',
    ], this.dockerdLog);
    const ok = await waitFor(async () => {
      if (this.dockerd.exitCode !== null) return 'exited';
      const r = await this.docker(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 5000 });
      return r.code === 0 && r.stdout.trim().length > 0;
    }, { timeoutMs: 60000, intervalMs: 300 });
    if (ok !== true) throw new Error(`dockerd did not start (${ok === 'exited' ? 'exited' : 'timeout'}): ${tail(this.dockerdLog)}`);
  }

  // Best-effort, idempotent, each step independent: called from normal exit, errors and signals.
  async cleanup() {
    const note = (m) => this.log(`cleanup: ${m}`);
    if (this.dockerd && this.dockerd.exitCode === null) {
      const ids = await this.docker(['ps', '-aq'], { timeoutMs: 10000 });
      const list = ids.stdout.split('\n').filter(Boolean);
      if (list.length) {
        const r = await this.docker(['rm', '-f', ...list], { timeoutMs: 60000 });
        if (r.code !== 0) note(`docker rm -f: ${lastLine(r.stderr)}`);
      }
      await stopDaemon(this.dockerd, 'dockerd', note);
    }
    if (this.containerd && this.containerd.exitCode === null) {
      for (const ns of [this.ns, this.dockerNs]) {
        const t = await run(['ctr', '--address', this.ctrdSock, '-n', ns, 'task', 'ls', '-q'], { timeoutMs: 10000 });
        for (const id of t.stdout.split('\n').filter(Boolean)) {
          await run(['ctr', '--address', this.ctrdSock, '-n', ns, 'task', 'kill', '-s', 'SIGKILL', id], { timeoutMs: 10000 });
          await waitFor(async () => {
            const r = await run(['ctr', '--address', this.ctrdSock, '-n', ns, 'task', 'ls'], { timeoutMs: 5000 });
            return !new RegExp(`^${id}\\s+\\d+\\s+RUNNING`, 'm').test(r.stdout);
          }, { timeoutMs: 5000 });
          await run(['ctr', '--address', this.ctrdSock, '-n', ns, 'task', 'rm', '-f', id], { timeoutMs: 10000 });
        }
        const c = await run(['ctr', '--address', this.ctrdSock, '-n', ns, 'container', 'ls', '-q'], { timeoutMs: 10000 });
        for (const id of c.stdout.split('\n').filter(Boolean)) {
          await run(['ctr', '--address', this.ctrdSock, '-n', ns, 'container', 'rm', id], { timeoutMs: 10000 });
        }
      }
      await stopDaemon(this.containerd, 'containerd', note);
    }
    // Shims outlive containerd by design; ours are the ones pointed at our socket. A shim run
    // by an interpreter (`node …/containerd-shim-tsrun-v2`) has the name in argv[1], not argv[0].
    for (const pid of findPids((argv) => argv.some((a) => a.includes('containerd-shim')) && argv.includes(this.ctrdSock))) {
      note(`killing leftover shim ${pid}`);
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    // tsrun's shim daemon serves every group of one containerd through a control socket named
    // after containerd's address (src/shim/control.ts); a killed daemon leaves it behind.
    const control = path.join('/run/containerd/s', `tsrun-${crypto.createHash('sha256').update(this.ctrdSock).digest('hex').slice(0, 32)}`);
    if (fs.existsSync(control)) {
      note(`removing the shim daemon's control socket ${control}`);
      fs.rmSync(control, { force: true });
    }
    // Container processes left behind by a runtime that failed to clean up: found by our cgroup tag.
    for (const pid of findPids(null, (cg) => cg.includes(`/${this.tag}`))) {
      note(`killing leftover container process ${pid}`);
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    await sleep(200);
    // Mounts this run created (overlay rootfs, shm, netns bind mounts): deepest first, lazily.
    const leaked = mountPoints().filter((m) => !this.mountsBefore.has(m));
    for (const m of leaked.sort((a, b) => b.length - a.length)) {
      if (m.startsWith(this.tmp + '/') || m.startsWith('/run/docker/netns/') || m.startsWith('/var/run/docker/netns/')) {
        const r = await run(['umount', '-l', m], { timeoutMs: 10000 });
        if (r.code !== 0) note(`umount ${m}: ${lastLine(r.stderr)}`);
      } else {
        note(`a mount appeared during the run outside our dirs, left alone: ${m}`);
      }
    }
    removeCgroups(this.tag, note);
    // Shims given no runtime root (ctr run --runtime <path> passes no options) keep their
    // runtime's state under /run/containerd/<runtime>/<namespace>, e.g. runc's
    // /run/containerd/runc/<ns>; the namespace carries our tag, so those dirs are ours.
    for (const ns of [this.ns, this.dockerNs]) {
      let rts = [];
      try { rts = fs.readdirSync('/run/containerd', { withFileTypes: true }).filter((d) => d.isDirectory()); } catch { break; }
      for (const d of rts) {
        const p = path.join('/run/containerd', d.name, ns);
        if (fs.existsSync(p)) {
          try { fs.rmSync(p, { recursive: true, force: true }); } catch (e) { note(`could not remove ${p}: ${e.message}`); }
        }
      }
    }
    // dockerd 20.10 writes /etc/docker/key.json whatever --config-file says.
    if (this.dockerd && !this.keyJsonExisted) fs.rmSync('/etc/docker/key.json', { force: true });
    try {
      fs.rmSync(this.tmp, { recursive: true, force: true });
    } catch (e) {
      note(`could not remove ${this.tmp}: ${e.message}`);
    }
  }
}

async function stopDaemon(child, name, note) {
  try { child.kill('SIGTERM'); } catch { /* gone */ }
  const r = await Promise.race([child.exited, sleep(20000).then(() => null)]);
  if (r === null) {
    note(`${name} ignored SIGTERM for 20 s, SIGKILL`);
    try { child.kill('SIGKILL'); } catch { /* gone */ }
    await Promise.race([child.exited, sleep(5000)]);
  }
}

export function tail(file, n = 5) {
  const s = readText(file) ?? '';
  return s.trim().split('\n').slice(-n).join(' | ');
}

export function mountPoints() {
  const s = readText('/proc/self/mountinfo') ?? '';
  return s.split('\n').filter(Boolean).map((l) => l.split(' ')[4].replace(/\\040/g, ' '));
}

// Pids whose argv matches argvPred (or, with cgroupPred, whose /proc/<pid>/cgroup matches).
export function findPids(argvPred, cgroupPred) {
  const out = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    if (argvPred) {
      const s = readText(`/proc/${e}/cmdline`);
      if (s && argvPred(s.split('\0'))) out.push(Number(e));
    } else if (cgroupPred) {
      const s = readText(`/proc/${e}/cgroup`);
      if (s && cgroupPred(s)) out.push(Number(e));
    }
  }
  return out;
}

// rmdir (bottom-up) every cgroup directory under /sys/fs/cgroup/<hierarchy>/ whose top-level
// name starts with our tag: ctr's default cgroup path is /<namespace>/<id>, dockerd's is
// <cgroup-parent>/<id>, and both carry the tag.
function removeCgroups(tag, note) {
  const base = '/sys/fs/cgroup';
  let hier = [];
  try { hier = fs.readdirSync(base); } catch { return; }
  for (const h of hier) {
    let tops = [];
    try { tops = fs.readdirSync(path.join(base, h)).filter((n) => n.startsWith(tag)); } catch { continue; }
    for (const t of tops) rmdirTree(path.join(base, h, t), note);
  }
}

function rmdirTree(dir, note) {
  let entries = [];
  try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { return; }
  for (const e of entries) if (e.isDirectory()) rmdirTree(path.join(dir, e.name), note);
  try { fs.rmdirSync(dir); } catch (e) { note(`rmdir ${dir}: ${e.code}`); }
}
