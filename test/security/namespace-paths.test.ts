/**
 * A namespace path of the wrong type must never be joined. `setns(fd, 0)` accepts any nsfs file,
 * so an ipc namespace bind-mounted onto a file (bind-mounted namespace files are not symlinks:
 * only ioctl(NS_GET_NSTYPE) tells their type, TypeScript cannot) and given as the `network` path
 * joins that ipc namespace instead and leaves the container in the HOST's network namespace (no
 * CLONE_NEWNET: "network" has a path); as `user` it runs in the host's user namespace; as `mount`
 * the rootfs set-up and pivot_root happen in the caller's mount namespace; as `pid`/`uts` the
 * container shares the host's pid / uts namespace.
 *
 * Every attack runs tsrun under `unshare --mount --uts --propagation private`: if the hole is
 * open, the pivot_root of a "mount" join and the sethostname of a "uts" join land in that
 * throw-away namespace instead of re-rooting every process of the host. The net, user and pid
 * namespaces stay the host's, so those comparisons are against the real host.
 *
 * The container's command first creates a marker file on a bind mount of a host directory, so
 * "no container process ever ran" is checked on the host, whatever the runtime printed.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ROOTLESS_BY_ENV } from '../helpers/tsrun';
import { IS_RUNC, nsBind, stillMounted, tsrunBash, withSandbox, type Result, type Sandbox } from './helpers';

const CONTAIN = ['unshare', '--mount', '--uts', '--propagation', 'private', '--'];
const NS_FILES = ['net', 'user', 'mnt', 'pid', 'uts', 'ipc'];

/** The namespaces of this (host) process, as `readlink /proc/self/ns/<x>` shows them. */
function hostNs(): Record<string, string> {
  return Object.fromEntries(NS_FILES.map((t) => [t, fs.readlinkSync(`/proc/${process.pid}/ns/${t}`)]));
}

/**
 * The container writes a marker on a bind mount of <sandbox>/marks and prints its namespaces.
 * `type` gets `nsPath` (a `user` entry is added for it), every other namespace is new.
 */
function configure(s: Sandbox, type: string, nsPath: string): string {
  const marks = path.join(s.dir, 'marks');
  fs.mkdirSync(marks, { recursive: true });
  s.chownToUser(marks); // rootless: the container's root must be able to leave its marker
  if (!s.config.mounts.some((m: any) => m.destination === '/marks')) s.config.mounts.push({ destination: '/marks', type: 'bind', source: marks, options: ['rbind', 'rw'] });
  s.config.process.args = ['sh', '-c', `touch /marks/RAN; for t in ${NS_FILES.join(' ')}; do echo "NS $t $(readlink /proc/self/ns/$t)"; done > /marks/ns; cat /marks/ns; echo container-done`];
  s.config.linux.namespaces = s.config.linux.namespaces.filter((n: any) => n.type !== 'user').map((n: any) => ({ type: n.type }));
  if (type === 'user') {
    s.config.linux.namespaces.unshift({ type: 'user', path: nsPath });
    // runc wants the mappings even for a joined user namespace; the host's own (identity) ones.
    s.config.linux.uidMappings = [{ containerID: 0, hostID: 0, size: 65536 }];
    s.config.linux.gidMappings = [{ containerID: 0, hostID: 0, size: 65536 }];
  } else {
    const ns = s.config.linux.namespaces.find((n: any) => n.type === type);
    assert.ok(ns, `the base config has a ${type} namespace`);
    ns.path = nsPath;
  }
  s.writeConfig();
  return path.join(marks, 'RAN');
}

/** The container's namespaces: from its output, or from the file it wrote (when tsrun's own output broke off). */
function containerNs(out: string, s?: Sandbox): Record<string, string> {
  const file = s && path.join(s.dir, 'marks', 'ns');
  if (file && fs.existsSync(file)) out = fs.readFileSync(file, 'utf8');
  return Object.fromEntries([...out.matchAll(/^NS (\w+) (.*)$/gm)].map((m) => [m[1], m[2]]));
}

/** `run` inside the throw-away mount + uts namespaces; their ids are recorded for the comparison. */
function runContained(s: Sandbox, id: string): Result {
  const file = path.join(s.dir, 'contained-ns');
  const record = ['sh', '-c', `readlink /proc/self/ns/mnt /proc/self/ns/uts > ${file}; exec "$@"`, 'sh'];
  return tsrunBash(s, '', ['run', '-b', s.bundle, id], { wrap: [...CONTAIN, ...record] });
}

const PROC_NAME: Record<string, string> = { network: 'net', user: 'user', mount: 'mnt', pid: 'pid', uts: 'uts', ipc: 'ipc' };

/**
 * Which of the namespaces the config lists (new or joined) the container shares with this
 * process (the real host for net, user, pid and ipc; for mnt and uts the unshare'd ones tsrun ran in).
 */
function sharedWithHost(s: Sandbox, out: string): string[] {
  const host = hostNs();
  const file = path.join(s.dir, 'contained-ns');
  if (fs.existsSync(file)) [host.mnt, host.uts] = fs.readFileSync(file, 'utf8').trim().split('\n');
  const c = containerNs(out, s);
  return s.config.linux.namespaces.map((n: any) => PROC_NAME[n.type]).filter((t: string) => t && c[t] !== undefined && c[t] === host[t]).sort();
}

if (ROOTLESS_BY_ENV) rootlessCases();
else for (const type of ['network', 'user', 'mount', 'pid', 'uts']) {
  withSandbox(test, `an ipc namespace bind-mounted onto a file and given as the ${type} path is refused: no container process runs`, ['true'], (s) => {
    const ipc = nsBind(`/proc/${process.pid}/ns/ipc`, 'ipc-ns');
    const id = `${s.id}-${type}`;
    try {
      const marker = configure(s, type, ipc.path);
      const r = runContained(s, id);
      const shared = sharedWithHost(s, r.stdout);
      assert.not.ok(fs.existsSync(marker), `a container process ran with an ipc namespace as its ${type} namespace (shares the host's ${shared.join(', ') || 'nothing visible'}):\n${r.stdout}${r.stderr}`);
      assert.is.not(r.status, 0, `run succeeded:\n${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /namespace/i, r.stderr);
      if (IS_RUNC) {
        // runc names only the type it expected ("failed to setns into net namespace: Invalid
        // argument"), not the field, the path or the type it found.
        console.log(`    runc: ${r.stderr.split('\n').find((l) => /setns|namespace/i.test(l))?.trim()}`);
      } else {
        assert.ok(r.stderr.includes(ipc.path) || r.stderr.includes('linux.namespaces'), `the error names neither the field nor the path: ${r.stderr}`);
        assert.match(r.stderr, /\bipc\b/, `the error does not say what the file really is: ${r.stderr}`);
        assert.ok(r.stderr.includes(type) || r.stderr.includes(PROC_NAME[type]), `the error does not name the expected type: ${r.stderr}`);
      }
      s.tsrun(['delete', '-f', id]);
      assert.equal(s.leftovers(), []);
    } finally {
      ipc.release();
    }
    assert.not.ok(stillMounted(ipc.path), `${ipc.path} is still mounted`);
  });
}

if (!ROOTLESS_BY_ENV) withSandbox(test, 'control: the same bind-mounted ipc file as the ipc path, and the host netns bind-mounted as the network path, are joined (the detectors see the host)', ['true'], (s) => {
  const ipc = nsBind(`/proc/${process.pid}/ns/ipc`, 'ipc-ns');
  const net = nsBind(`/proc/${process.pid}/ns/net`, 'net-ns');
  try {
    // The ipc file is a valid namespace of its own type: only the type mismatch is refused above.
    const marker = configure(s, 'ipc', ipc.path);
    const r1 = runContained(s, `${s.id}-ipc`);
    assert.is(r1.status, 0, r1.stderr);
    assert.ok(fs.existsSync(marker), 'the marker detector sees a container process');
    assert.equal(sharedWithHost(s, r1.stdout), ['ipc'], `expected only the ipc namespace shared:\n${r1.stdout}`);
    fs.rmSync(marker);

    // The host's network namespace, given correctly: the container is "in the host netns".
    configure(s, 'network', net.path);
    const r2 = runContained(s, `${s.id}-net`);
    assert.is(r2.status, 0, r2.stderr);
    assert.ok(fs.existsSync(marker));
    const c = containerNs(r2.stdout);
    assert.is(c.net, hostNs().net, `container not in the host netns:\n${r2.stdout}`);
    assert.equal(sharedWithHost(s, r2.stdout), ['net'], r2.stdout);
    assert.equal(s.leftovers(), []);
  } finally {
    ipc.release();
    net.release();
  }
  assert.not.ok(stillMounted(ipc.path) || stillMounted(net.path), 'namespace bind mounts left behind');
});

/**
 * Rootless (TSRUN_TEST_ROOTLESS=1): the user cannot bind-mount namespace files, but can name the
 * namespaces of a process of its own: a helper in a user namespace of the user's with new ipc,
 * net, uts, pid and mount namespaces. The container joins the helper's user namespace (as a pod
 * would) and gets the helper's ipc namespace as its `type` path: refused by the init's
 * NS_GET_NSTYPE check (readlink would tell, but the init trusts no path). The control joins the
 * helper's namespaces of the right types and must share them.
 */
function rootlessCases(): void {
  const PROC: Record<string, string> = { network: 'net', mount: 'mnt', pid: 'pid', uts: 'uts', ipc: 'ipc' };
  /** The user's helper process, in namespaces of its own; returns its pid and a kill. */
  async function helper(s: Sandbox): Promise<{ pid: number; ns: Record<string, string>; kill: () => void }> {
    const child = spawn('unshare', ['--user', '--map-root-user', '--ipc', '--net', '--uts', '--mount', '--pid', '--fork', 'sleep', '120'], {
      uid: s.user!.uid,
      gid: s.user!.gid,
      stdio: 'ignore',
    });
    // The sleep (unshare's child, pid 1 of the new pid namespace) is the process whose namespaces are all new.
    let pid = 0;
    for (let i = 0; i < 100 && !pid; i++) {
      await new Promise((r) => setTimeout(r, 20));
      const kids = fs.existsSync(`/proc/${child.pid}/task/${child.pid}/children`) ? fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim() : '';
      pid = Number(kids.split(/\s+/)[0]) || 0;
    }
    assert.ok(pid > 0, 'the helper started');
    const ns = Object.fromEntries(['user', ...Object.values(PROC)].map((t) => [t, fs.readlinkSync(`/proc/${pid}/ns/${t}`)]));
    assert.is.not(ns.net, hostNs().net, 'the helper has a network namespace of its own');
    return { pid, ns, kill: () => void child.kill('SIGKILL') };
  }

  function joinConfig(s: Sandbox, pid: number, paths: Record<string, string>): string {
    const marker = configure(s, 'ipc', '/nonexistent');
    s.config.linux.namespaces = [
      { type: 'user', path: `/proc/${pid}/ns/user` },
      ...['pid', 'ipc', 'uts', 'mount', 'network'].map((t) => (paths[t] ? { type: t, path: paths[t] } : { type: t })),
    ];
    // runc wants the mappings of a joined user namespace too: the helper's (root = the user).
    s.config.linux.uidMappings = [{ containerID: 0, hostID: s.user!.uid, size: 1 }];
    s.config.linux.gidMappings = [{ containerID: 0, hostID: s.user!.gid, size: 1 }];
    s.writeConfig();
    return marker;
  }

  for (const type of ['network', 'mount', 'pid', 'uts']) {
    withSandbox(test, `rootless: the user's own ipc namespace given as the ${type} path is refused: no container process runs`, ['true'], async (s) => {
      const h = await helper(s);
      try {
        const marker = joinConfig(s, h.pid, { [type]: `/proc/${h.pid}/ns/ipc` });
        const r = tsrunBash(s, '', ['run', '-b', s.bundle, s.id]);
        assert.not.ok(fs.existsSync(marker), `a container process ran with an ipc namespace as its ${type} namespace:\n${r.stdout}${r.stderr}`);
        assert.is.not(r.status, 0, `run succeeded:\n${r.stdout}${r.stderr}`);
        assert.match(r.stderr, /linux[./]namespaces/, `the error does not name the field: ${r.stderr}`);
        assert.match(r.stderr, /\bipc\b/, `the error does not say what the file really is: ${r.stderr}`);
        s.tsrun(['delete', '-f', s.id]);
        assert.equal(s.leftovers(), []);
      } finally {
        h.kill();
      }
    });
  }

  withSandbox(test, 'rootless control: the helper\'s namespaces given with their own types are joined (the detector sees them shared)', ['true'], async (s) => {
    const h = await helper(s);
    try {
      const marker = joinConfig(s, h.pid, { network: `/proc/${h.pid}/ns/net`, ipc: `/proc/${h.pid}/ns/ipc`, uts: `/proc/${h.pid}/ns/uts` });
      const r = tsrunBash(s, '', ['run', '-b', s.bundle, s.id]);
      assert.is(r.status, 0, r.stderr);
      assert.ok(fs.existsSync(marker), 'the marker detector sees a container process');
      const c = containerNs(r.stdout, s);
      assert.equal([c.user, c.net, c.ipc, c.uts], [h.ns.user, h.ns.net, h.ns.ipc, h.ns.uts], `not in the helper's namespaces:\n${r.stdout}`);
      assert.is.not(c.mnt, h.ns.mnt, 'the mount namespace is new');
      assert.equal(s.leftovers(), []);
    } finally {
      h.kill();
    }
  });
}

test.run();
