/**
 * The 2025 runc advisories: the runtime trusts the container's /dev. CVE-2025-31133: masked paths
 * are covered by a bind of the container's /dev/null, which the container can have replaced by a
 * symlink to a file it wants exposed writable. CVE-2025-52565: /dev/pts (and /dev/console) are
 * symlinks when the runtime mounts them. CVE-2025-52881: runtime writes redirected by mounts and
 * symlinks the container arranged. Here the hostile /dev comes from the bundle (a /dev bind mount
 * of a directory the attacker filled, or symlinks in the image), and the assertions are on the
 * host: the sentinel file/directory unchanged, the host mount table unchanged.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hostMounts, startSwapper, refusalText, mountChanges, readOut, runWithConsole, Sandbox, sha256, treePrint, tsrunAsync, withSandbox } from './helpers';

/** Probe: what each masked path is, and a write through it (never through /dev/null itself). */
const MASK_PROBE = ['sh', '-c', 'for p in /masked /proc/kcore /proc/keys /proc/timer_list; do echo "MASK $p $(stat -L -c \'%F %t:%T\' $p 2>&1)"; (echo PWNED >> $p) 2>&1 && echo "WROTE $p"; done; echo probe-done'];

/** A host directory with a sentinel file; the bundle gets a /masked file that is masked. */
function setup(s: Sandbox): { S: string; sentinel: string } {
  const S = path.join(s.dir, 'sentinel');
  fs.mkdirSync(S);
  const sentinel = path.join(S, 'file');
  fs.writeFileSync(sentinel, 'untouched\n');
  // Rootless (TSRUN_TEST_ROOTLESS=1): the target is the user's, so that only tsrun stands between
  // the container and it (a root-owned one would be safe whatever tsrun did).
  s.chownToUser(S);
  fs.writeFileSync(path.join(s.bundle, 'rootfs/masked'), 'secret\n');
  s.config.linux.maskedPaths.push('/masked');
  s.config.process.args = MASK_PROBE;
  return { S, sentinel };
}

/** /dev as a bind mount of a host directory the attacker prepared (instead of runc's tmpfs). */
function devFromHostDir(s: Sandbox, fill: (dev: string) => void): string {
  const dev = path.join(s.dir, 'devdir');
  fs.mkdirSync(dev);
  fill(dev);
  s.chownToUser(dev);
  s.config.mounts = s.config.mounts.filter((m: any) => m.destination !== '/dev');
  s.config.mounts.splice(1, 0, { destination: '/dev', type: 'bind', source: dev, options: ['rbind', 'rw'] });
  return dev;
}

function mknodNull(dir: string): void {
  execFileSync('mknod', ['-m', '666', path.join(dir, 'null'), 'c', '1', '3']);
}

/** Runs; the container may refuse, but if it ran no masked path may be a regular file. */
function runAndCheck(s: Sandbox, S: string): string {
  const tree = treePrint(S);
  const mounts = hostMounts();
  const r = s.tsrun(['run', '-b', s.bundle, s.id]);
  console.log(`    ${r.status === 0 ? 'ran' : `refused: ${r.stderr.trim().slice(0, 150)}`}`);
  assert.equal(treePrint(S), tree, `host sentinel directory changed (stdout: ${r.stdout})`);
  assert.equal(mountChanges(mounts, hostMounts(), [s.dir]), [], 'host mount table changed');
  if (r.status === 0) {
    assert.match(r.stdout, /^probe-done$/m);
    assert.not.match(r.stdout, /^MASK \S+ regular file/m, `a masked path is a file:\n${r.stdout}`);
  }
  assert.equal(s.leftovers(), []);
  return r.stdout;
}

withSandbox(test, 'maskedPaths with /dev/null a symlink to a host file the container can reach (CVE-2025-31133)', ['true'], (s) => {
  const { S } = setup(s);
  devFromHostDir(s, (dev) => fs.symlinkSync('/hostshare/file', path.join(dev, 'null')));
  // The sentinel's directory is in the container (the attacker's target must be reachable), but
  // the probe writes only through the masked paths: a change means a mask exposed the file.
  s.config.mounts.push({ destination: '/hostshare', type: 'bind', source: S, options: ['rbind', 'rw'] });
  s.writeConfig();
  runAndCheck(s, S);
});

withSandbox(test, 'maskedPaths with the image\'s /dev/null a symlink to an absolute host path, no /dev mount', ['true'], (s) => {
  const { S, sentinel } = setup(s);
  // No /dev mount at all: the runtime populates the image's own /dev.
  s.config.mounts = s.config.mounts.filter((m: any) => !m.destination.startsWith('/dev'));
  fs.symlinkSync(sentinel, path.join(s.bundle, 'rootfs/dev/null'));
  s.writeConfig();
  runAndCheck(s, S);
});

withSandbox(test, '/dev/pts and /dev/console symlinked to host paths in a /dev bind (CVE-2025-52565 shape)', ['true'], (s) => {
  const { S, sentinel } = setup(s);
  devFromHostDir(s, (dev) => {
    mknodNull(dev);
    fs.symlinkSync(S, path.join(dev, 'pts'));
    fs.symlinkSync(sentinel, path.join(dev, 'console'));
    fs.symlinkSync(sentinel, path.join(dev, 'ptmx'));
  });
  s.writeConfig();
  runAndCheck(s, S);
});

for (const [kind, link] of [
  ['absolute', (S: string) => S],
  ['../..', (S: string) => '../'.repeat(24) + S.slice(1)],
] as const) {
  withSandbox(test, `/dev a ${kind} symlink out of the rootfs, with runc's /dev mounts`, ['true'], (s) => {
    const { S } = setup(s);
    fs.rmdirSync(path.join(s.bundle, 'rootfs/dev'));
    fs.symlinkSync(link(S), path.join(s.bundle, 'rootfs/dev'));
    s.writeConfig();
    runAndCheck(s, S);
  });

  withSandbox(test, `/dev a ${kind} symlink out of the rootfs, no /dev mounts (the runtime creates the nodes)`, ['true'], (s) => {
    const { S } = setup(s);
    s.config.mounts = s.config.mounts.filter((m: any) => !m.destination.startsWith('/dev'));
    fs.rmdirSync(path.join(s.bundle, 'rootfs/dev'));
    fs.symlinkSync(link(S), path.join(s.bundle, 'rootfs/dev'));
    s.writeConfig();
    runAndCheck(s, S);
  });
}

withSandbox(test, 'control: a host file bound over the masked path is reported by the probe and written', ['true'], (s) => {
  const { sentinel } = setup(s);
  const sum = sha256(sentinel);
  s.config.linux.maskedPaths = s.config.linux.maskedPaths.filter((p: string) => p !== '/masked');
  s.config.mounts.push({ destination: '/masked', type: 'bind', source: sentinel, options: ['bind', 'rw'] });
  s.writeConfig();
  const r = s.tsrun(['run', '-b', s.bundle, s.id]);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /^MASK \/masked regular file/m);
  assert.match(r.stdout, /^WROTE \/masked$/m);
  assert.is.not(sha256(sentinel), sum);
});

withSandbox(test, 'control: /dev a symlink to a bind of the sentinel directory: the created nodes show up in it', ['true'], (s) => {
  const { S } = setup(s);
  const tree = treePrint(S);
  s.config.mounts = s.config.mounts.filter((m: any) => !m.destination.startsWith('/dev'));
  s.config.mounts.push({ destination: '/shared', type: 'bind', source: S, options: ['rbind', 'rw'] });
  fs.rmdirSync(path.join(s.bundle, 'rootfs/dev'));
  fs.symlinkSync('/shared', path.join(s.bundle, 'rootfs/dev'));
  s.writeConfig();
  const r = s.tsrun(['run', '-b', s.bundle, s.id]);
  assert.is(r.status, 0, r.stderr);
  assert.is.not(treePrint(S).join('\n'), tree.join('\n'), 'the tree check sees device nodes created in the host directory');
  assert.ok(fs.existsSync(path.join(S, 'null')));
});

test('race: /dev/null swapped with a symlink to a host file by a second container while 100 containers mask paths (CVE-2025-31133)', async () => {
  const a = new Sandbox(['true'], 'secA');
  const v = new Sandbox(['true'], 'secV');
  try {
    const { S, sentinel } = setup(v);
    const sum = sha256(sentinel);
    // The shared /dev: a real null device and, next to it, the symlink it is swapped with.
    const dev = devFromHostDir(v, (d) => {
      mknodNull(d);
      fs.symlinkSync('/hostshare/file', path.join(d, 'evil'));
    });
    v.config.mounts.push({ destination: '/hostshare', type: 'bind', source: S, options: ['rbind', 'rw'] });
    v.writeConfig();
    const mounts = hostMounts();

    const ar = await startSwapper(a, dev, '/shareddev', ['/swap', '80', '/shareddev/null', '/shareddev/evil']);

    const exposed: string[] = [];
    const errors = new Map<string, number>();
    let ok = 0;
    let next = 0;
    const started = Date.now();
    const worker = async () => {
      while (next < 100 && Date.now() - started < 30_000) {
        const id = `${v.id}-${next++}`;
        const r = await tsrunAsync(v, ['run', '-b', v.bundle, id], 20_000);
        exposed.push(...r.stdout.split('\n').filter((l) => /^MASK \S+ regular file/.test(l)));
        if (r.status === 0) ok++;
        else {
          const msg = refusalText(r.stderr).replace(/\d+/g, 'N').trim().slice(0, 100);
          errors.set(msg, (errors.get(msg) ?? 0) + 1);
          v.tsrun(['delete', '-f', id]);
        }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    assert.is(a.tsrun(['delete', '-f', a.id]).status, 0);
    console.log(`    ${next} victims: ${ok} ran, ${exposed.length} masked paths exposed a file, refused: ${JSON.stringify(Object.fromEntries(errors))}`);
    assert.match(readOut(ar.out), /swapping/);
    const written = sha256(sentinel) !== sum;
    assert.equal(exposed.slice(0, 5), [], `masked paths bound to the host file in ${exposed.length} cases; sentinel ${written ? 'WAS' : 'not'} written`);
    assert.not.ok(written, 'the host sentinel was written through a masked path');
    assert.equal(mountChanges(mounts, hostMounts(), [a.dir, v.dir]), [], 'host mount table changed');
    assert.ok(next >= 50 && ok > 0, 'the race did not run');
    assert.equal(v.leftovers(), []);
    assert.equal(a.leftovers(), []);
  } finally {
    v.cleanup();
    a.cleanup();
  }
});

/**
 * With a terminal the runtime opens the container's /dev/ptmx, and binds the pty slave
 * (/dev/pts/N) onto /dev/console: both through the container's /dev.
 */
function terminalRun(s: Sandbox, S: string): string {
  s.config.process.terminal = true;
  s.config.process.args = ['sh', '-c', `tty; test -c /dev/console && echo console-ok; ${MASK_PROBE[2]}`];
  s.writeConfig();
  const tree = treePrint(S);
  const mounts = hostMounts();
  const r = runWithConsole(s);
  if (r.status === 0) {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && !/"status":\s*"stopped"/.test(s.tsrun(['state', s.id]).stdout)) {}
  }
  s.tsrun(['delete', '-f', s.id]);
  console.log(`    ${r.status === 0 ? 'ran' : `refused: ${r.stderr.trim().slice(-150)}`}`);
  assert.equal(treePrint(S), tree, `host sentinel directory changed (output: ${r.stdout})`);
  assert.equal(mountChanges(mounts, hostMounts(), [s.dir]), [], 'host mount table changed');
  assert.not.match(r.stdout, /^MASK \S+ regular file/m, `a masked path is a file:\n${r.stdout}`);
  assert.equal(s.leftovers(), []);
  return r.stdout;
}

withSandbox(test, 'terminal: /dev/pts a symlink to a host directory in a /dev bind (CVE-2025-52565)', ['true'], (s) => {
  const { S } = setup(s);
  devFromHostDir(s, (dev) => {
    mknodNull(dev);
    fs.symlinkSync(S, path.join(dev, 'pts'));
    fs.symlinkSync('pts/ptmx', path.join(dev, 'ptmx'));
  });
  terminalRun(s, S);
});

withSandbox(test, 'terminal: /dev/console a symlink to a host file in a /dev bind (CVE-2025-52565)', ['true'], (s) => {
  const { S, sentinel } = setup(s);
  devFromHostDir(s, (dev) => {
    mknodNull(dev);
    fs.mkdirSync(path.join(dev, 'pts'));
    fs.symlinkSync('pts/ptmx', path.join(dev, 'ptmx'));
    fs.symlinkSync(sentinel, path.join(dev, 'console'));
  });
  terminalRun(s, S);
});

withSandbox(test, 'control: the terminal path runs with an ordinary /dev (the probe gets its pty and /dev/console)', ['true'], (s) => {
  const { S } = setup(s);
  const out = terminalRun(s, S);
  assert.match(out, /\/dev\/pts\/\d+/);
  assert.match(out, /console-ok/);
  assert.match(out, /probe-done/);
});

test.run();
