/**
 * Mount destinations behind symlinks (CVE-2021-30465 shape): a destination is resolved by the
 * runtime on the host before the container's root exists; a symlink in the rootfs or in a shared
 * volume, or one swapped in while the runtime resolves the path, must not make it create, mount or
 * write anything outside the rootfs. tsrun resolves destinations with openat2(RESOLVE_IN_ROOT) and
 * mounts on the O_PATH fd (PROTOCOL.md, create step 3).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hostMounts, startSwapper, refusalText, mountChanges, readOut, Sandbox, treePrint, tsrunAsync, withSandbox } from './helpers';

/** A host directory nothing may touch, with a file in it. */
function sentinel(s: Sandbox): string {
  const dir = path.join(s.dir, 'sentinel');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'precious'), 'untouched\n');
  // Rootless (TSRUN_TEST_ROOTLESS=1): the user's, so that only tsrun stands between the
  // container and it (a root-owned one would be safe whatever tsrun did).
  s.chownToUser(dir);
  return dir;
}

function runOk(s: Sandbox, id = s.id): void {
  const r = s.tsrun(['run', '-b', s.bundle, id]);
  assert.is(r.status, 0, `run: ${r.stderr}`);
}

const UP = '../'.repeat(24);

for (const [kind, target] of [
  ['absolute', (S: string) => S],
  ['../..', (S: string) => UP + S.slice(1)],
] as const) {
  withSandbox(test, `mount destinations behind a ${kind} symlink to a host directory stay in the rootfs`, ['true'], (s) => {
    const S = sentinel(s);
    const src = path.join(s.dir, 'src');
    fs.mkdirSync(src);
    fs.symlinkSync(target(S), path.join(s.bundle, 'rootfs/escape'));
    s.config.mounts.push(
      { destination: '/escape', type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] },
      { destination: '/escape/sub/dir', type: 'bind', source: src, options: ['rbind'] },
    );
    s.writeConfig();
    const tree = treePrint(S);
    const mounts = hostMounts();
    runOk(s);
    assert.equal(treePrint(S), tree, 'the host sentinel directory changed');
    assert.equal(mountChanges(mounts, hostMounts(), [s.dir]), [], 'host mount table changed');
    // Resolved inside the root: the mount point was created under the rootfs.
    assert.ok(fs.existsSync(path.join(s.bundle, 'rootfs', S)), 'mount point created inside the rootfs');
    assert.equal(s.leftovers(), []);
  });
}

withSandbox(test, 'control: the same destinations through a bind of the sentinel itself do write it', ['true'], (s) => {
  const S = sentinel(s);
  s.config.mounts.push(
    { destination: '/escape', type: 'bind', source: S, options: ['rbind'] },
    { destination: '/escape/sub/dir', type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] },
  );
  s.writeConfig();
  const tree = treePrint(S);
  runOk(s);
  assert.is.not(treePrint(S).join('\n'), tree.join('\n'), 'the sentinel check sees the created mount point');
  assert.ok(fs.existsSync(path.join(S, 'sub/dir')));
});

/** Victim containers: a shared volume at /shared and a tmpfs (and a bind) below /shared/d. */
function victimBundle(v: Sandbox, shared: string, src: string): void {
  v.config.mounts.push(
    { destination: '/shared', type: 'bind', source: shared, options: ['rbind', 'rw'] },
    { destination: '/shared/d/mnt', type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] },
    { destination: '/shared/d/deep/bind', type: 'bind', source: src, options: ['rbind', 'ro'] },
  );
  // The victims do nothing: the race is in their set-up.
  v.config.process.args = ['true'];
  v.writeConfig();
}

/**
 * Starts up to `count` victims from `v`'s bundle, 4 at a time, for at most `budgetMs`; each
 * victim's stdout goes to `onOutput`. Returns how many started and ran, and the refusals by message.
 */
async function startVictims(v: Sandbox, count: number, budgetMs: number, onOutput: (out: string) => void) {
  const errors = new Map<string, number>();
  let ok = 0;
  let next = 0;
  const started = Date.now();
  const worker = async () => {
    while (next < count && Date.now() - started < budgetMs) {
      const id = `${v.id}-${next++}`;
      const r = await tsrunAsync(v, ['run', '-b', v.bundle, id], 20_000);
      onOutput(r.stdout);
      if (r.status === 0) ok++;
      else {
        const msg = refusalText(r.stderr).replace(/\/\S+/g, '<path>').replace(/\d+/g, 'N').trim().slice(0, 120);
        errors.set(msg, (errors.get(msg) ?? 0) + 1);
        v.tsrun(['delete', '-f', id]);
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  const summary = `${next} victims in ${((Date.now() - started) / 1000).toFixed(1)} s: ${ok} ran, refused: ${JSON.stringify(Object.fromEntries(errors))}`;
  return { started: next, ok, summary };
}

test('race: 200 containers mount below a shared path whose directory a second container keeps swapping with symlinks', async () => {
  const a = new Sandbox(['true'], 'secA');
  const v = new Sandbox(['true'], 'secV');
  try {
    const S = sentinel(a);
    const shared = path.join(a.dir, 'shared');
    const src = path.join(a.dir, 'src');
    fs.mkdirSync(path.join(shared, 'd'), { recursive: true });
    fs.mkdirSync(src);
    fs.symlinkSync(S, path.join(shared, 'l1'));
    fs.symlinkSync(UP + S.slice(1), path.join(shared, 'l2'));
    a.chownToUser(shared);
    a.chownToUser(src);
    const tree = treePrint(S);
    const mounts = hostMounts();

    // Two swappers on the same name: /shared/d is the directory, the absolute or the ../ symlink.
    const ar = await startSwapper(a, shared, '/shared', ['sh', '-c', '/swap 80 /shared/d /shared/l1 & /swap 80 /shared/d /shared/l2 & wait']);

    victimBundle(v, shared, src);
    const { started, ok, summary } = await startVictims(v, 200, 70_000, () => {});
    assert.is(a.tsrun(['delete', '-f', a.id]).status, 0);
    const swaps = readOut(ar.out);
    console.log(`    ${summary}`);

    assert.equal(treePrint(S), tree, 'the host sentinel directory changed');
    assert.equal(mountChanges(mounts, hostMounts(), [a.dir, v.dir]), [], 'host mount table changed');
    assert.match(swaps, /swapping/, `the swapper ran: ${swaps}`);
    // The race was real: victims started through both states of the path.
    assert.ok(started >= 100, `only ${started} victims started`);
    assert.ok(ok > 0, 'no victim ran at all: nothing was raced');
    assert.equal(v.leftovers(), []);
    assert.equal(a.leftovers(), []);
  } finally {
    v.cleanup();
    a.cleanup();
  }
});

/**
 * Victim probe: every mount of the host directory `src` (mountinfo's root field is its host path)
 * with its options, and a write attempt into every directory below /shared/d.
 */
function roProbe(src: string): string[] {
  return ['sh', '-c', `grep -F " ${src} " /proc/self/mountinfo | while read id parent dev root mp opts rest; do echo "SRCMOUNT $mp $opts"; done; for d in /shared/d/*/; do touch "$d/written-by-victim" 2>/dev/null && echo "WROTE $d"; done; echo probe-done`];
}

/** `SRCMOUNT` lines whose options say rw: a bind requested read-only that is writable. */
function rwSrcMounts(out: string): string[] {
  return out.split('\n').filter((l) => /^SRCMOUNT \S+ rw\b/.test(l));
}

test('race: a read-only bind below a shared path stays read-only while a second container swaps its mount point with a symlink to another mount', async () => {
  const a = new Sandbox(['true'], 'secA');
  const v = new Sandbox(['true'], 'secV');
  try {
    const shared = path.join(a.dir, 'shared');
    const src = path.join(a.dir, 'src');
    fs.mkdirSync(path.join(shared, 'd/bind'), { recursive: true });
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'precious'), 'untouched\n');
    // The swap partner: a symlink to a mount point every container has. If the runtime looks the
    // destination up a second time (to remount it read-only), the swap sends that remount there.
    fs.symlinkSync('/dev/shm', path.join(shared, 'd/lnk'));
    a.chownToUser(shared);
    a.chownToUser(src);
    const tree = treePrint(src);

    const ar = await startSwapper(a, shared, '/shared', ['/swap', '80', '/shared/d/bind', '/shared/d/lnk']);

    v.config.mounts.push(
      { destination: '/shared', type: 'bind', source: shared, options: ['rbind', 'rw'] },
      { destination: '/shared/d/bind', type: 'bind', source: src, options: ['rbind', 'ro'] },
    );
    v.config.process.args = roProbe(src);
    v.writeConfig();
    const rw: string[] = [];
    let probes = 0;
    const { started, ok, summary } = await startVictims(v, 120, 35_000, (out) => {
      if (/^probe-done$/m.test(out)) probes++;
      // WROTE lines alone mean nothing (/shared itself is writable): src's tree tells.
      rw.push(...rwSrcMounts(out));
    });
    assert.is(a.tsrun(['delete', '-f', a.id]).status, 0);
    console.log(`    ${summary}; ${probes} probes ran, ${rw.length} saw a writable read-only bind`);
    const srcNow = treePrint(src);
    const written = srcNow.join('\n') !== tree.join('\n') ? 'and the host directory WAS written' : 'the host directory was not written';
    assert.equal(rw.slice(0, 5), [], `a read-only bind was writable in ${rw.length} victims (its remount went elsewhere); ${written}`);
    assert.equal(srcNow, tree, 'the read-only host directory was written');
    assert.ok(started >= 60 && ok > 0, `the race did not run (${summary})`);
    assert.equal(v.leftovers(), []);
    assert.equal(a.leftovers(), []);
  } finally {
    v.cleanup();
    a.cleanup();
  }
});

withSandbox(test, 'control: the same probe reports a writable bind and writes the host directory when the bind is rw', ['true'], (s) => {
  const shared = path.join(s.dir, 'shared');
  const src = path.join(s.dir, 'src');
  fs.mkdirSync(path.join(shared, 'd/bind'), { recursive: true });
  fs.mkdirSync(src);
  s.chownToUser(shared);
  s.chownToUser(src);
  const tree = treePrint(src);
  s.config.mounts.push(
    { destination: '/shared', type: 'bind', source: shared, options: ['rbind', 'rw'] },
    { destination: '/shared/d/bind', type: 'bind', source: src, options: ['rbind', 'rw'] },
  );
  s.config.process.args = roProbe(src);
  s.writeConfig();
  const r = s.tsrun(['run', '-b', s.bundle, s.id]);
  assert.is(r.status, 0, r.stderr);
  assert.equal(rwSrcMounts(r.stdout).length, 1, r.stdout);
  assert.match(r.stdout, /^WROTE \/shared\/d\/bind\/$/m);
  assert.is.not(treePrint(src).join('\n'), tree.join('\n'));
});

test.run();
