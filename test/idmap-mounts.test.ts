/**
 * Id-mapped bind mounts (runtime-spec 1.2 "idmap"/"ridmap" and mounts[].uidMappings/gidMappings,
 * runc 1.2's rules): the ids of files seen through the mount are translated by its mapping, and
 * ids written through it are translated back. Each case has its control: the same bind without
 * the idmapping shows the files' real ids.
 *
 * Debian's runc 1.1.5 has no id-mapped mounts, so RUNTIME=/usr/sbin/runc fails here by design;
 * crun 1.x (if installed) passes the same cases.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Sandbox } from './helpers/tsrun';

const MAP = [{ containerID: 0, hostID: 100000, size: 65536 }];

/** A source directory on the test's own filesystem: a root-owned file and one owned by 1000:1000. */
function source(s: Sandbox): string {
  const src = path.join(s.dir, 'src');
  fs.mkdirSync(src);
  fs.chmodSync(s.dir, 0o755);
  fs.chmodSync(src, 0o777);
  fs.writeFileSync(path.join(src, 'root-file'), 'x');
  fs.writeFileSync(path.join(src, 'user-file'), 'x');
  fs.chownSync(path.join(src, 'user-file'), 1000, 1000);
  // The mount point exists: a mapped root cannot create it in the host root's rootfs.
  fs.mkdirSync(path.join(s.bundle, 'rootfs/x'));
  return src;
}

function runIn(s: Sandbox, script: string, mount: object, mutate?: () => void): { status: number | null; stdout: string; stderr: string } {
  s.config.process.args = ['sh', '-c', script];
  s.config.mounts.push({ destination: '/x', type: 'bind', ...mount });
  mutate?.();
  s.writeConfig();
  const r = s.tsrun(['run', '-b', s.bundle, s.id]);
  s.config.mounts.pop();
  return r;
}

function userns(s: Sandbox): void {
  s.config.linux.namespaces.push({ type: 'user' });
  s.config.linux.uidMappings = MAP;
  s.config.linux.gidMappings = MAP;
  // sysfs belongs to the network namespace's owner: not mountable from this user namespace.
  s.config.mounts = s.config.mounts.filter((m: { destination: string }) => !m.destination.startsWith('/sys'));
}

const STAT = 'stat -c "%n=%u:%g" /x/root-file /x/user-file';

test('idmap without a user namespace: the mount\'s own mappings translate the ids (control: a plain bind)', () => {
  const s = new Sandbox([], 'idmap');
  try {
    const src = source(s);
    const plain = runIn(s, STAT, { source: src, options: ['rbind'] });
    assert.is(plain.status, 0, plain.stderr);
    assert.is(plain.stdout, '/x/root-file=0:0\n/x/user-file=1000:1000\n');
    const mapped = runIn(s, STAT, { source: src, options: ['rbind', 'idmap'], uidMappings: MAP, gidMappings: [{ containerID: 0, hostID: 200000, size: 65536 }] });
    assert.is(mapped.status, 0, mapped.stderr);
    assert.is(mapped.stdout, '/x/root-file=100000:200000\n/x/user-file=101000:201000\n');
    // Mappings without "idmap" are an idmapped mount too (runc 1.2).
    const noOption = runIn(s, STAT, { source: src, options: ['rbind'], uidMappings: MAP, gidMappings: MAP });
    assert.is(noOption.status, 0, noOption.stderr);
    assert.is(noOption.stdout, '/x/root-file=100000:100000\n/x/user-file=101000:101000\n');
    // The host's view of the source is unchanged, and nothing is left.
    assert.is(fs.statSync(path.join(src, 'user-file')).uid, 1000);
    assert.equal(s.leftovers(), []);
  } finally {
    s.cleanup();
  }
});

test('idmap in a user namespace: the container\'s mappings, so the host\'s root files are root\'s inside, and its writes land as host root (control: nobody)', () => {
  const s = new Sandbox([], 'idmapuserns');
  try {
    const src = source(s);
    userns(s);
    const write = 'stat -c "%n=%u:%g" /x/root-file; touch /x/made-inside && echo wrote';
    const plain = runIn(s, write, { source: src, options: ['rbind'] });
    assert.is(plain.status, 0, plain.stderr);
    // Control: host root is unmapped in the container (the overflow id), and its write is 100000's.
    assert.is(plain.stdout, '/x/root-file=65534:65534\nwrote\n');
    assert.is(fs.statSync(path.join(src, 'made-inside')).uid, 100000);
    fs.rmSync(path.join(src, 'made-inside'));
    const mapped = runIn(s, write, { source: src, options: ['rbind', 'idmap'] });
    assert.is(mapped.status, 0, mapped.stderr);
    assert.is(mapped.stdout, '/x/root-file=0:0\nwrote\n');
    const made = fs.statSync(path.join(src, 'made-inside'));
    assert.equal([made.uid, made.gid], [0, 0]);
    assert.equal(s.leftovers(), []);
  } finally {
    s.cleanup();
  }
});

test('idmap in a joined user namespace: that namespace\'s mappings (control: the same join without idmap)', () => {
  const holder = new Sandbox(['sleep', '300'], 'idmapholder');
  const s = new Sandbox([], 'idmapjoin');
  try {
    fs.chmodSync(holder.dir, 0o755);
    userns(holder);
    holder.writeConfig();
    const c = holder.tsrun(['create', '-b', holder.bundle, holder.id]);
    assert.is(c.status, 0, c.stderr);
    const src = source(s);
    s.config.linux.namespaces.push({ type: 'user', path: `/proc/${holder.state().pid}/ns/user` });
    s.config.mounts = s.config.mounts.filter((m: { destination: string }) => !m.destination.startsWith('/sys'));
    const plain = runIn(s, STAT, { source: src, options: ['rbind'] });
    assert.is(plain.status, 0, plain.stderr);
    assert.is(plain.stdout, '/x/root-file=65534:65534\n/x/user-file=65534:65534\n');
    const mapped = runIn(s, STAT, { source: src, options: ['rbind', 'idmap'] });
    assert.is(mapped.status, 0, mapped.stderr);
    assert.is(mapped.stdout, '/x/root-file=0:0\n/x/user-file=1000:1000\n');
    assert.equal(s.leftovers(), []);
  } finally {
    s.cleanup();
    holder.cleanup();
  }
});

test('ridmap idmaps every mount of an rbind, idmap only the top one; ro stays read-only', () => {
  const s = new Sandbox([], 'ridmap');
  const src = source(s);
  const sub = path.join(src, 'sub');
  fs.mkdirSync(sub);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tsrun-idmap-test', sub]);
  try {
    fs.writeFileSync(path.join(sub, 'f'), 'x');
    const script = 'stat -c "%n=%u" /x/root-file /x/sub/f';
    const top = runIn(s, script, { source: src, options: ['rbind', 'idmap'], uidMappings: MAP, gidMappings: MAP });
    assert.is(top.status, 0, top.stderr);
    assert.is(top.stdout, '/x/root-file=100000\n/x/sub/f=0\n');
    const all = runIn(s, script, { source: src, options: ['rbind', 'ridmap'], uidMappings: MAP, gidMappings: MAP });
    assert.is(all.status, 0, all.stderr);
    assert.is(all.stdout, '/x/root-file=100000\n/x/sub/f=100000\n');
    const ro = runIn(s, 'touch /x/new 2>&1; stat -c "%u" /x/root-file', { source: src, options: ['rbind', 'ro', 'idmap'], uidMappings: MAP, gidMappings: MAP });
    assert.is(ro.status, 0, ro.stderr);
    assert.match(ro.stdout, /Read-only file system\n100000\n$/);
    assert.ok(!fs.existsSync(path.join(src, 'new')));
    assert.equal(s.leftovers().filter((l) => l !== `mount ${sub}`), []);
  } finally {
    execFileSync('umount', [sub]);
    s.cleanup();
  }
});

test('idmap errors: a filesystem that cannot be idmapped, and config rules; nothing left behind', () => {
  const s = new Sandbox([], 'idmaperr');
  try {
    // procfs has no FS_ALLOW_IDMAP: the kernel refuses, before any namespace was made.
    const r = runIn(s, 'true', { source: '/proc/sys', options: ['rbind', 'idmap'], uidMappings: MAP, gidMappings: MAP });
    assert.is(r.status, 1);
    assert.match(r.stderr, /id-mapped mount \/proc\/sys on \/x \(mount_setattr MOUNT_ATTR_IDMAP; the source's filesystem must support id-mapped mounts\): invalid argument/);
    assert.equal(s.leftovers(), []);
    const noMaps = runIn(s, 'true', { source: '/tmp', options: ['rbind', 'idmap'] });
    assert.is(noMaps.status, 1);
    assert.match(noMaps.stderr, /\/mounts\/\d+: id-mapped mounts must have both uid and gid mappings specified/);
    assert.equal(s.leftovers(), []);
  } finally {
    s.cleanup();
  }
});

test.run();
