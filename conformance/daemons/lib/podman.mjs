// A private podman 4.3 (conmon 2.1) driving the runtime under test: `--runtime <abs path>`,
// storage root, runroot, libpod tmpdir, events log, locks, network config and image copy dir
// all under the suite's temp dir; `--cgroup-manager cgroupfs` with a cgroup parent carrying the
// suite's tag; `--events-backend file`; `--network none` on every container (and netns="none"
// in containers.conf); a containers.conf (CONTAINERS_CONF, which conmon also hands to the
// `podman container cleanup` exit command) with default_ulimits under the host's hard limits
// and runtime_supports_json naming the runtime, so that podman passes `--log-format json
// --log <userdata>/oci-log` to it.
//
// What podman 4.3 keeps outside the temp dir whatever it is told, and what we do about it:
// - the runtime's own state: podman (as root) passes no --root, so the runtime uses its default
//   root, /run/<basename> (runc: /run/runc, tsrun: /run/tsrun). `--runtime-flag root=…` would
//   move it, but conmon's exit command (`podman container cleanup`) does not carry runtime
//   flags, so the cleanup would look in the default root and leave the state behind. So the
//   suite lets the runtime use its default root, checks after every case that no state of that
//   case's containers is left there, and removes the root itself at the end if this run created
//   it and it is empty.
// - `podman load` writes containers/image's blob-info cache to /var/lib/containers/cache (no
//   flag or containers.conf key moves it in 4.3) and unpacks under /var/tmp: see start().

import fs from 'node:fs';
import path from 'node:path';
import { run, sleep, waitFor, readText, pidAlive } from './proc.mjs';
import { findPids, mountPoints } from './daemons.mjs';

export const PODMAN_IMAGE_REF = 'localhost/tsrunconf/busybox:latest';

// Paths outside the temp dir that podman, conmon or the runtime could create; each must not
// appear during a case, and what appeared during the run is removed at the end (`how`).
function globalPaths(rtRoot) {
  return [
    { p: '/var/lib/containers', how: 'rm' }, // blob-info cache of `podman load`
    { p: '/run/containers', how: 'rm' },
    { p: '/run/libpod', how: 'rm' },
    { p: '/var/lib/cni', how: 'rmdir' },
    { p: '/run/netns', how: 'rmdir' },
    { p: '/dev/shm/libpod_lock', how: 'rm' },
    { p: '/etc/containers/containers.conf', how: 'report' },
    { p: '/etc/containers/storage.conf', how: 'report' },
    { p: rtRoot, how: 'rmdir' }, // the runtime's default root, see above
  ];
}

export class Podman {
  constructor({ tmp, tag, runtime, log }) {
    this.dir = path.join(tmp, 'podman');
    this.root = path.join(this.dir, 'root');
    this.runroot = path.join(this.dir, 'runroot');
    this.tmpdir = path.join(this.dir, 'libpod');
    this.netDir = path.join(this.dir, 'net');
    this.imgTmp = path.join(this.dir, 'image-tmp');
    this.conf = path.join(this.dir, 'containers.conf');
    this.storageConf = path.join(this.dir, 'storage.conf');
    this.registriesConf = path.join(this.dir, 'registries.conf');
    this.runtime = runtime;
    this.rtName = path.basename(runtime);
    this.rtRoot = `/run/${this.rtName}`;
    this.cgroupParent = `/${tag}-podman`;
    this.bin = process.env.PODMAN || 'podman';
    this.log = log;
    this.started = false;
    this.ids = new Set(); // every container id this run created (for the final cleanup)
    this.globalsBefore = new Map(globalPaths(this.rtRoot).map((g) => [g.p, fs.existsSync(g.p)]));
  }

  // The global options of every podman command line (also what conmon's exit command gets).
  globalArgs() {
    return [
      '--root', this.root,
      '--runroot', this.runroot,
      '--tmpdir', this.tmpdir,
      '--storage-driver', 'overlay',
      '--runtime', this.runtime,
      '--cgroup-manager', 'cgroupfs',
      '--events-backend', 'file',
      '--network-config-dir', this.netDir,
    ];
  }

  env() {
    return {
      ...process.env,
      CONTAINERS_CONF: this.conf,
      CONTAINERS_STORAGE_CONF: this.storageConf,
      CONTAINERS_REGISTRIES_CONF: this.registriesConf,
      TMPDIR: this.imgTmp,
    };
  }

  argv(args) {
    return [this.bin, ...this.globalArgs(), ...args];
  }

  // cwd: conmon inherits podman's working directory and writes its `oom` file there (see
  // podman.memory-oom), so no podman command runs in the caller's directory.
  podman(args, opts = {}) {
    return run(this.argv(args), { timeoutMs: 30000, cwd: this.dir, ...opts, env: this.env() });
  }

  // Options every container gets: no network, our cgroup parent.
  containerArgs() {
    return ['--network', 'none', '--cgroup-parent', this.cgroupParent];
  }

  async start(archive) {
    for (const d of [this.dir, this.root, this.runroot, this.tmpdir, this.netDir, this.imgTmp]) fs.mkdirSync(d, { recursive: true });
    // The host's hard limits (this VM: nofile 20000). podman's defaults (nofile 1048576, nproc
    // 4194304) cannot be set by the runtime here, runc or not; conmon (and so the runtime) runs
    // with an nproc hard limit of 32768, so more fails the same way.
    const hard = (name) => {
      const m = new RegExp(`^Max ${name}\\s+\\S+\\s+(\\d+|unlimited)`, 'm').exec(readText('/proc/self/limits') ?? '');
      return m && m[1] !== 'unlimited' ? Number(m[1]) : Infinity;
    };
    const nofile = Math.min(hard('open files'), 16384);
    const nproc = Math.min(hard('processes'), 32768);
    const q = JSON.stringify;
    fs.writeFileSync(this.conf, [
      '[containers]',
      `default_ulimits = [${q(`nofile=${nofile}:${nofile}`)}, ${q(`nproc=${nproc}:${nproc}`)}]`,
      'log_driver = "k8s-file"',
      'netns = "none"',
      '[engine]',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `events_logfile_path = ${q(path.join(this.tmpdir, 'events', 'events.log'))}`,
      `tmp_dir = ${q(this.tmpdir)}`,
      'lock_type = "file"',
      `runtime_supports_json = ${q([this.rtName])}`,
      `image_copy_tmp_dir = ${q(this.imgTmp)}`,
      `static_dir = ${q(path.join(this.root, 'libpod'))}`,
      `volume_path = ${q(path.join(this.root, 'volumes'))}`,
      '[network]',
      `network_config_dir = ${q(this.netDir)}`,
      '',
    ].join('\n'));
    fs.writeFileSync(this.storageConf, `[storage]\ndriver = "overlay"\nrunroot = ${q(this.runroot)}\ngraphroot = ${q(this.root)}\n`);
    fs.writeFileSync(this.registriesConf, ''); // no registry, no short-name lookups
    // `podman load` first tries the archive as an oci-archive, unpacking it under /var/tmp
    // whatever image_copy_tmp_dir or TMPDIR say (podman 4.3), and it writes the blob-info cache
    // to /var/lib/containers/cache. So it runs in a private mount namespace with our dirs bound
    // over those (over /var/lib/containers only if it exists; else the run creates it and
    // removes it at the end). The image lands in our storage as usual.
    const binds = [[path.join(this.dir, 'var-tmp'), '/var/tmp']];
    if (fs.existsSync('/var/lib/containers')) binds.push([path.join(this.dir, 'var-lib-containers'), '/var/lib/containers']);
    for (const [src] of binds) fs.mkdirSync(src, { recursive: true });
    const script = `${binds.map((_, i) => `mount --bind "$${2 * i + 1}" "$${2 * i + 2}"`).join(' && ')} && shift ${2 * binds.length} && exec "$@"`;
    const r = await run(['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', ...binds.flat(), ...this.argv(['load', '-i', archive])],
      { timeoutMs: 120000, cwd: this.dir, env: this.env() });
    if (r.code !== 0) throw new Error(`podman load failed: ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
    this.started = true;
  }

  async version() {
    const r = await this.podman(['version', '--format', '{{.Client.Version}}'], { timeoutMs: 15000 });
    const c = await run(['conmon', '--version'], { timeoutMs: 5000 });
    return `podman ${r.stdout.trim()} (${c.stdout.trim().split('\n')[0]})`;
  }

  globalsNow() {
    return new Map(globalPaths(this.rtRoot).map((g) => [g.p, fs.existsSync(g.p)]));
  }

  // Everything of ours that is still there: podman's containers, runtime state of `ids`, cgroups
  // under our parent, mounts under our dir, conmon/podman processes, processes in our cgroups,
  // `pids` alive, global paths that did not exist in `globalsBefore`.
  async leftovers(ids, pids, globalsBefore) {
    const left = [];
    const ps = await this.podman(['ps', '-aq', '--no-trunc'], { timeoutMs: 15000 });
    if (ps.stdout.trim()) left.push(`podman ps -a: ${ps.stdout.trim().split('\n').map((s) => s.slice(0, 12)).join(' ')}`);
    for (const id of ids) {
      if (fs.existsSync(path.join(this.rtRoot, id))) left.push(`runtime state ${path.join(this.rtRoot, id)}`);
    }
    for (const d of this.cgroupDirs()) {
      let subs = [];
      try { subs = fs.readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name); } catch { continue; }
      // podman's shared `conmon` cgroup stays (removed at the end); it must hold no process.
      for (const s of subs) {
        if (s === 'conmon') {
          const procs = (readText(path.join(d, s, 'cgroup.procs')) ?? '').trim();
          if (procs) left.push(`processes in ${path.join(d, s)}: ${procs.split('\n').join(' ')}`);
        } else left.push(`cgroup ${path.join(d, s)}`);
      }
    }
    for (const m of mountPoints()) if (m.startsWith(this.dir + '/')) left.push(`mount ${m}`);
    for (const pid of findPids((argv) => argv.some((a) => a.includes(this.dir)))) {
      left.push(`process ${pid} ${(readText(`/proc/${pid}/cmdline`) ?? '').split('\0').slice(0, 3).join(' ')}`);
    }
    for (const pid of findPids(null, (cg) => cg.includes(this.cgroupParent + '/'))) {
      if (pidAlive(pid)) left.push(`process ${pid} in ${this.cgroupParent}`);
    }
    for (const pid of pids) if (pid && pidAlive(pid)) left.push(`pid ${pid} alive`);
    const now = this.globalsNow();
    // The runtime's default root may appear (its per-container state is checked above);
    // /var/lib/containers only comes from `podman load` (setup, or another run's setup).
    const skip = new Set([this.rtRoot, '/var/lib/containers']);
    for (const [p, was] of globalsBefore) if (!was && now.get(p) && !skip.has(p)) left.push(`new global path ${p}`);
    return left;
  }

  // The cgroup directories of our parent in every hierarchy (v1) or the unified one.
  cgroupDirs() {
    const base = '/sys/fs/cgroup';
    if (fs.existsSync(path.join(base, 'cgroup.controllers'))) return [path.join(base, this.cgroupParent)];
    let hier = [];
    try { hier = fs.readdirSync(base); } catch { return []; }
    return hier.map((h) => path.join(base, h, this.cgroupParent)).filter((d) => fs.existsSync(d));
  }

  // Removes every container (stop timeout 0) and waits until nothing of them is left; returns
  // the leftovers (empty when clean).
  async removeAll(ids, pids, globalsBefore, timeoutMs = 15000) {
    const ps = await this.podman(['ps', '-aq', '--no-trunc'], { timeoutMs: 15000 });
    for (const id of ps.stdout.split('\n').filter(Boolean)) { this.ids.add(id); ids.add(id); }
    if (ps.stdout.trim()) await this.podman(['rm', '-af', '-t', '0'], { timeoutMs: 60000 });
    let left = [];
    // conmon and its exit command (`podman container cleanup`) finish after rm returns.
    await waitFor(async () => { left = await this.leftovers(ids, pids, globalsBefore); return left.length === 0; }, { timeoutMs, intervalMs: 250 });
    return left;
  }

  // Best-effort, idempotent; runs before Env.cleanup (which then unmounts what is left under
  // the temp dir, kills what is left in our cgroups, removes them and the temp dir).
  async cleanup() {
    const note = (m) => this.log(`cleanup (podman): ${m}`);
    if (this.started) {
      const ps = await this.podman(['ps', '-aq', '--no-trunc'], { timeoutMs: 15000 });
      for (const id of ps.stdout.split('\n').filter(Boolean)) this.ids.add(id);
      if (ps.stdout.trim()) {
        const r = await this.podman(['rm', '-af', '-t', '0'], { timeoutMs: 60000 });
        if (r.code !== 0) note(`podman rm -af: ${r.stderr.trim().split('\n').pop()}`);
      }
    }
    // conmon, podman's exit commands, a hung podman, script(1) running podman: all name our dir.
    await waitFor(() => findPids((argv) => argv.some((a) => a.includes(this.dir))).length === 0, { timeoutMs: 5000 });
    for (const pid of findPids((argv) => argv.some((a) => a.includes(this.dir)))) {
      note(`killing leftover ${pid} ${(readText(`/proc/${pid}/cmdline`) ?? '').split('\0')[0]}`);
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    for (const pid of findPids(null, (cg) => cg.includes(this.cgroupParent + '/'))) {
      note(`killing leftover container process ${pid}`);
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    await sleep(100);
    // Runtime state of our containers in the runtime's default root.
    for (const id of this.ids) {
      const p = path.join(this.rtRoot, id);
      if (!fs.existsSync(p)) continue;
      note(`runtime state left: ${p}`);
      await run([this.runtime, '--root', this.rtRoot, 'delete', '--force', id], { timeoutMs: 15000 });
      try { fs.rmSync(p, { recursive: true, force: true }); } catch (e) { note(`could not remove ${p}: ${e.message}`); }
    }
    for (const g of globalPaths(this.rtRoot)) {
      if (this.globalsBefore.get(g.p) || !fs.existsSync(g.p)) continue;
      try {
        if (g.how === 'rm') fs.rmSync(g.p, { recursive: true, force: true });
        else if (g.how === 'rmdir') fs.rmdirSync(g.p);
        else { note(`${g.p} appeared during the run, left alone`); continue; }
      } catch (e) {
        note(`could not remove ${g.p} (appeared during the run): ${e.code || e.message}`);
      }
    }
  }
}
