/**
 * Files and directories the runtime creates on the host, attacked by another user of the machine:
 * symlinks planted at the names root will write (--pid-file and its temp name, --log, `spec`'s
 * config.json), a hostile --root (owned by someone else, writable by others, a symlink, holding a
 * planted state.json), a rootfs that is a symlink, and linux.intelRdt on a host without resctrl.
 *
 * Every attack has a positive control showing its detector sees the breach when the hole is open:
 * the test itself writes the way a careless runtime would (O_TRUNC through the planted name), or
 * runs the same operation where it is legitimate.
 *
 * TSRUN_TEST_ROOTLESS=1 runs the same as the sandbox's user: the runtime is the user's, the
 * sentinels, the "trusted" --root and the victim process are the user's (what a breach of a
 * rootless runtime would reach), and uid 1000 or "others" stay the other users of the machine.
 *
 * Runs against another runtime with RUNTIME=/usr/sbin/runc; tests of tsrun-only behaviour (runc
 * 1.1.5 does not defend against them) are skipped there, each with its reason printed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readProcStat } from '../../src/container/proc';
import { asSandboxUser, Sandbox, TSRUN, type Result } from './helpers';

const OTHER_RUNTIME = path.basename(TSRUN) !== 'tsrun';

/** --root directories a test used besides its sandbox's own: force-deleted at the end. */
const extraRoots = new WeakMap<Sandbox, string[]>();

/** A test with a fresh sandbox, cleaned up pass or fail; `tsrunOnly` gives the reason to skip it against another runtime. */
function attack(name: string, body: (s: Sandbox) => Promise<void> | void, tsrunOnly?: string): void {
  if (tsrunOnly && OTHER_RUNTIME) {
    console.log(`skipped against ${TSRUN}: ${name}: ${tsrunOnly}`);
    test.skip(name);
    return;
  }
  test(name, async () => {
    const s = new Sandbox(['true'], 'files');
    extraRoots.set(s, []);
    try {
      await body(s);
    } finally {
      for (const root of extraRoots.get(s)!) forceDeleteAll(root);
      s.cleanup();
    }
  });
}

/** delete -f of everything in a --root other than the sandbox's own (which cleanup handles). */
function forceDeleteAll(root: string): void {
  let names: string[] = [];
  try {
    names = fs.readdirSync(root).filter((n) => !n.startsWith('.'));
  } catch {}
  for (const n of names) spawnSync(TSRUN, ['--root', root, 'delete', '-f', n], { timeout: 20_000 });
}

/**
 * The runtime with the container's stdio on a file (a created init keeps its stdio), any --root.
 * Registers `root` for clean-up when it is not the sandbox's.
 */
function runtime(s: Sandbox, args: string[], root = s.root): Result {
  if (root !== s.root) extraRoots.get(s)!.push(root);
  const out = path.join(s.dir, `out-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  const r = spawnSync('sh', ['-c', 'exec </dev/null >>"$0" 2>&1; exec "$@"', out, TSRUN, '--root', root, ...args], {
    ...asSandboxUser(s),
    encoding: 'utf8',
    cwd: s.dir,
    timeout: 30_000,
  });
  if (r.error) throw r.error;
  const text = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '';
  fs.rmSync(out, { force: true });
  return { status: r.status, signal: r.signal, stdout: text, stderr: text };
}

// ---------------------------------------------------------------------------------------------
// Sentinels: files outside the attacked directory that a breach would change or create

interface Print {
  exists: boolean;
  text: string;
  ino: number;
  mtimeMs: number;
  mode: number;
}

function print(file: string): Print {
  try {
    const st = fs.lstatSync(file);
    return { exists: true, text: fs.readFileSync(file, 'utf8'), ino: st.ino, mtimeMs: st.mtimeMs, mode: st.mode };
  } catch {
    return { exists: false, text: '', ino: 0, mtimeMs: 0, mode: 0 };
  }
}

function sentinel(s: Sandbox, name = 'sentinel'): { file: string; before: Print; changed: () => boolean } {
  const file = path.join(s.dir, name);
  fs.writeFileSync(file, 'SENTINEL: must never be written by the runtime\n');
  s.chownToUser(file);
  const before = print(file);
  return { file, before, changed: () => JSON.stringify(print(file)) !== JSON.stringify(before) };
}

/** What a careless runtime does: open the name for writing (O_CREAT|O_TRUNC, following symlinks). */
function naiveWrite(file: string, text: string): void {
  fs.writeFileSync(file, text);
}

/** A directory other users can write (what /tmp-like or group-shared pid file directories are). */
function sharedDir(s: Sandbox, name: string): string {
  const d = path.join(s.dir, name);
  fs.mkdirSync(d);
  fs.chmodSync(d, 0o777);
  return d;
}

// ---------------------------------------------------------------------------------------------
// --pid-file

attack('--pid-file: a symlink planted at the temp name .<name> is refused ("file exists"), its target untouched', (s) => {
  const sent = sentinel(s);
  const dir = sharedDir(s, 'piddir');
  const pidFile = path.join(dir, 'pid');
  const planted = path.join(dir, '.pid');

  // Positive control: writing through the planted name, as an O_TRUNC open does, changes the sentinel.
  fs.symlinkSync(sent.file, planted);
  naiveWrite(planted, '4242');
  assert.ok(sent.changed(), 'control: a write through the planted symlink must change the sentinel');
  fs.writeFileSync(sent.file, sent.before.text);
  const again = sentinel(s); // fresh print after the repair

  const r = runtime(s, ['create', '-b', s.bundle, '--pid-file', pidFile, s.id]);
  assert.is.not(r.status, 0, `create with a planted ${planted} must fail:\n${r.stderr}`);
  assert.match(r.stderr, /file exists/, r.stderr);
  assert.not.ok(again.changed(), 'the sentinel behind the planted symlink was written');
  assert.ok(fs.lstatSync(planted).isSymbolicLink(), 'the planted symlink was replaced or removed');
  assert.not.ok(fs.existsSync(pidFile), 'a pid file was written although create failed');
  assert.equal(s.leftovers(), []);
});

attack('--pid-file: a dangling symlink at the temp name does not create its target', (s) => {
  const dir = sharedDir(s, 'piddir');
  const target = path.join(s.dir, 'created-by-root');
  const planted = path.join(dir, '.pid');

  // Positive control: an O_CREAT open through a dangling symlink creates the target.
  fs.symlinkSync(target, planted);
  naiveWrite(planted, '1');
  assert.ok(fs.existsSync(target), 'control: an O_CREAT open through the dangling symlink must create its target');
  fs.rmSync(target);

  const r = runtime(s, ['create', '-b', s.bundle, '--pid-file', path.join(dir, 'pid'), s.id]);
  assert.is.not(r.status, 0, r.stderr);
  assert.match(r.stderr, /file exists/, r.stderr);
  assert.not.ok(fs.existsSync(target), `the runtime created ${target} through the planted symlink`);
  assert.equal(s.leftovers(), []);
});

attack('--pid-file: a symlink planted at the pid file\'s own name is replaced, not written through', async (s) => {
  const sent = sentinel(s);
  const dir = sharedDir(s, 'piddir');
  const pidFile = path.join(dir, 'pid');
  fs.symlinkSync(sent.file, pidFile);
  // Positive control: the pid file name leads to the sentinel as planted.
  assert.is(fs.readFileSync(pidFile, 'utf8'), sent.before.text, 'control: the planted name must lead to the sentinel');

  const r = runtime(s, ['create', '-b', s.bundle, '--pid-file', pidFile, s.id]);
  assert.is(r.status, 0, r.stderr);
  assert.not.ok(sent.changed(), 'the sentinel behind the planted pid file name was written');
  const st = fs.lstatSync(pidFile);
  assert.ok(st.isFile(), 'the pid file is not a regular file of its own');
  const pid = s.state().pid;
  assert.is(fs.readFileSync(pidFile, 'utf8'), String(pid), 'pid file: decimal, no newline');
  assert.equal(fs.readdirSync(dir), ['pid'], 'a temp file was left next to the pid file');
  assert.is(runtime(s, ['delete', '-f', s.id]).status, 0);
  assert.equal(s.leftovers(), []);
});

attack('exec --pid-file: a planted temp name fails the exec, its target untouched', async (s) => {
  s.config.process.args = ['sleep', '30'];
  s.writeConfig();
  const sent = sentinel(s);
  const dir = sharedDir(s, 'piddir');
  const planted = path.join(dir, '.exec.pid');
  fs.symlinkSync(sent.file, planted);
  assert.is(runtime(s, ['run', '-d', '-b', s.bundle, s.id]).status, 0);
  const r = runtime(s, ['exec', '-d', '--pid-file', path.join(dir, 'exec.pid'), s.id, 'sleep', '30']);
  assert.is.not(r.status, 0, r.stderr);
  assert.match(r.stderr, /file exists/, r.stderr);
  assert.not.ok(sent.changed(), 'the sentinel behind the planted symlink was written');
  assert.not.ok(fs.existsSync(path.join(dir, 'exec.pid')));
  assert.is(runtime(s, ['delete', '-f', s.id]).status, 0);
  assert.equal(s.leftovers(), []);
});

// ---------------------------------------------------------------------------------------------
// --root

const RUNC_ROOT = 'runc 1.1.5 uses any existing --root as it is (owner and mode unchecked)';

/** An existing --root directory with the given owner and mode. */
function rootDir(s: Sandbox, name: string, uid: number, mode: number): string {
  const d = path.join(s.dir, name);
  fs.mkdirSync(d);
  // Rootless, the runtime's own user takes root's place.
  fs.chownSync(d, uid === 0 && s.user ? s.user.uid : uid, 0);
  fs.chmodSync(d, mode);
  return d;
}

attack('--root: a root-owned 0700 directory that exists already works (control for the refusals below)', (s) => {
  const root = rootDir(s, 'goodroot', 0, 0o700);
  const r = runtime(s, ['create', '-b', s.bundle, s.id], root);
  assert.is(r.status, 0, r.stderr);
  assert.equal(fs.readdirSync(root), [s.id]);
  assert.is(runtime(s, ['delete', '-f', s.id], root).status, 0);
  assert.equal(fs.readdirSync(root), []);
  assert.equal(s.leftovers(), []);
});

attack('--root owned by uid 1000 is refused, nothing is created in it', (s) => {
  const root = rootDir(s, 'root1000', 1000, 0o700);
  const r = runtime(s, ['create', '-b', s.bundle, s.id], root);
  assert.is.not(r.status, 0, 'create in a --root owned by uid 1000 must fail');
  assert.ok(r.stderr.includes(root), `the error must name the directory:\n${r.stderr}`);
  // Rootless, a 0700 directory of uid 1000 cannot even be opened: refused by the kernel first.
  assert.match(r.stderr, s.user ? /owned by uid 1000|: permission denied/ : /owned by uid 1000/, r.stderr);
  assert.equal(fs.readdirSync(root), []);
  const st = fs.statSync(root);
  assert.is(st.uid, 1000, 'the runtime changed the owner of the refused directory');
  assert.equal(s.leftovers(), []);
}, RUNC_ROOT);

attack('--root writable by others (0777, 1777, 0770) is refused, not chmod-ed, nothing created in it', (s) => {
  for (const mode of [0o777, 0o1777, 0o770]) {
    const root = rootDir(s, `root${mode.toString(8)}`, 0, mode);
    const r = runtime(s, ['create', '-b', s.bundle, s.id], root);
    assert.is.not(r.status, 0, `create in a --root of mode ${mode.toString(8)} must fail`);
    assert.ok(r.stderr.includes(root), `the error must name the directory:\n${r.stderr}`);
    assert.match(r.stderr, /writable by group or others/, r.stderr);
    assert.equal(fs.readdirSync(root), []);
    assert.is(fs.statSync(root).mode & 0o7777, mode, 'the refused directory was chmod-ed');
  }
  assert.equal(s.leftovers(), []);
}, RUNC_ROOT);

attack('--root that is a symlink (last component) is refused, nothing created behind it', (s) => {
  const target = rootDir(s, 'realroot', 0, 0o700);
  const link = path.join(s.dir, 'rootlink');
  fs.symlinkSync(target, link);
  const r = runtime(s, ['create', '-b', s.bundle, s.id], link);
  assert.is.not(r.status, 0, r.stderr);
  assert.match(r.stderr, /is a symlink/, r.stderr);
  assert.equal(fs.readdirSync(target), []);
  assert.equal(s.leftovers(), []);
}, 'runc 1.1.5 follows a symlinked --root');

/** A process outside any container, the victim of a planted state.json. */
function victim(s: Sandbox): ChildProcess {
  return spawn('sleep', ['60'], { stdio: 'ignore', ...(s.user ? { uid: s.user.uid, gid: s.user.gid } : {}) });
}

/** A tsrun state.json naming `pid` as the container's init, planted in `<root>/<id>/`. */
function plantState(root: string, id: string, pid: number, s: Sandbox): void {
  fs.mkdirSync(path.join(root, id), { mode: 0o711 });
  const state = {
    id,
    initPid: pid,
    initStartTime: readProcStat(pid)!.startTime,
    bundle: s.bundle,
    rootfs: path.join(s.bundle, 'rootfs'),
    created: new Date().toISOString(),
    owner: '',
    config: s.config,
    cgroup: null,
    started: true,
  };
  fs.writeFileSync(path.join(root, id, 'state.json'), JSON.stringify(state));
}

const alive = (p: ChildProcess) => p.exitCode === null && p.signalCode === null && fs.existsSync(`/proc/${p.pid}`);

attack('--root writable by others: a planted state.json cannot make root kill a process of the attacker\'s choosing', async (s) => {
  // Positive control: in a trusted root the same planted state does get its "init" killed, so the
  // detector (is the victim alive?) sees the breach.
  const good = rootDir(s, 'trusted', 0, 0o700);
  const v1 = victim(s);
  try {
    await new Promise((r) => setTimeout(r, 100));
    plantState(good, 'planted', v1.pid!, s);
    const k = runtime(s, ['kill', 'planted', 'KILL'], good);
    assert.is(k.status, 0, `control: kill through a state.json in a trusted root: ${k.stderr}`);
    await new Promise((r) => setTimeout(r, 200));
    assert.not.ok(alive(v1), 'control: the planted state must reach its victim in a trusted root');
  } finally {
    v1.kill('SIGKILL');
    fs.rmSync(path.join(good, 'planted'), { recursive: true, force: true });
  }

  const bad = rootDir(s, 'shared', 0, 0o777);
  const v2 = victim(s);
  try {
    await new Promise((r) => setTimeout(r, 100));
    plantState(bad, 'planted', v2.pid!, s);
    for (const args of [['kill', 'planted', 'KILL'], ['delete', '-f', 'planted'], ['state', 'planted'], ['list']]) {
      const r = runtime(s, args, bad);
      assert.is.not(r.status, 0, `${args.join(' ')} trusted a --root others can write:\n${r.stdout}`);
      assert.match(r.stderr, /writable by group or others/, r.stderr);
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(alive(v2), 'the victim named by the planted state.json was killed');
  } finally {
    v2.kill('SIGKILL');
    fs.rmSync(path.join(bad, 'planted'), { recursive: true, force: true });
  }
  assert.equal(s.leftovers(), []);
}, 'tsrun\'s state.json format (runc keeps its own state files)');

attack('container state dir: an existing one is "container with given ID already exists"', (s) => {
  fs.mkdirSync(s.root, { mode: 0o700 });
  fs.mkdirSync(path.join(s.root, s.id), { mode: 0o711 });
  s.chownToUser(s.root);
  const r = runtime(s, ['create', '-b', s.bundle, s.id]);
  assert.is.not(r.status, 0);
  assert.match(r.stderr, /container with given ID already exists/, r.stderr);
  assert.equal(fs.readdirSync(path.join(s.root, s.id)), [], 'the existing directory was written into');
  fs.rmdirSync(path.join(s.root, s.id));
  assert.equal(s.leftovers(), []);
});

// ---------------------------------------------------------------------------------------------
// root.path

const RUNC_ROOTFS = 'invalid rootfs: not an absolute path, or a symlink';

function copyToRealfs(s: Sandbox): string {
  const real = path.join(s.bundle, 'realfs');
  fs.renameSync(path.join(s.bundle, 'rootfs'), real);
  return real;
}

attack('root.path that is a symlink is refused with runc\'s message; the same rootfs as a real directory works', (s) => {
  copyToRealfs(s);
  // Control: the real directory as root.path.
  s.config.root.path = 'realfs';
  s.writeConfig();
  const ok = runtime(s, ['run', '-b', s.bundle, `${s.id}-ok`]);
  assert.is(ok.status, 0, `control: the real directory must work: ${ok.stderr}`);

  fs.symlinkSync('realfs', path.join(s.bundle, 'rootfs'));
  s.config.root.path = 'rootfs';
  s.writeConfig();
  const r = runtime(s, ['run', '-b', s.bundle, s.id]);
  assert.is.not(r.status, 0, 'a symlinked rootfs must be refused');
  assert.ok(r.stderr.includes(RUNC_ROOTFS), r.stderr);
  assert.equal(s.leftovers(), []);
});

attack('root.path: an absolute path through a symlink is refused; a bundle reached through a symlink is fine', (s) => {
  const real = copyToRealfs(s);
  const bundleLink = path.join(s.dir, 'bundlelink');
  fs.symlinkSync(s.bundle, bundleLink);
  // Fine (runc too): -b through a symlink, relative root.path.
  s.config.root.path = 'realfs';
  s.writeConfig();
  const ok = runtime(s, ['run', '-b', bundleLink, `${s.id}-ok`]);
  assert.is(ok.status, 0, `a bundle reached through a symlink must work: ${ok.stderr}`);
  // Fine: the absolute real path.
  s.config.root.path = real;
  s.writeConfig();
  const ok2 = runtime(s, ['run', '-b', s.bundle, `${s.id}-ok2`]);
  assert.is(ok2.status, 0, `an absolute real root.path must work: ${ok2.stderr}`);
  // Refused (runc too): an absolute root.path through the symlink.
  s.config.root.path = path.join(bundleLink, 'realfs');
  s.writeConfig();
  const r = runtime(s, ['run', '-b', s.bundle, s.id]);
  assert.is.not(r.status, 0);
  assert.ok(r.stderr.includes(RUNC_ROOTFS), r.stderr);
  assert.equal(s.leftovers(), []);
});

// ---------------------------------------------------------------------------------------------
// linux.intelRdt (this host has no resctrl)

const resctrl = fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(' - resctrl ');

attack('linux.intelRdt with a schema: refused up front (runc\'s wording), nothing left; without it the bundle runs', (s) => {
  if (resctrl) {
    console.log('resctrl is mounted here: the no-resctrl wording is not checked');
    return;
  }
  const ok = runtime(s, ['run', '-b', s.bundle, `${s.id}-ok`]);
  assert.is(ok.status, 0, `control: the bundle without intelRdt must run: ${ok.stderr}`);
  for (const [field, text] of [
    ['l3CacheSchema', 'intelRdt.l3CacheSchema is specified in config, but Intel RDT/CAT is not enabled'],
    ['memBwSchema', 'intelRdt.memBwSchema is specified in config, but Intel RDT/MBA is not enabled'],
  ]) {
    s.config.linux.intelRdt = { closID: 'tsrun-test', [field]: field === 'l3CacheSchema' ? 'L3:0=f' : 'MB:0=50' };
    s.writeConfig();
    const r = runtime(s, ['run', '-b', s.bundle, s.id]);
    assert.is.not(r.status, 0, `intelRdt.${field} must be refused`);
    assert.ok(r.stderr.includes(text), r.stderr);
    if (!OTHER_RUNTIME) assert.ok(r.stderr.includes('/linux/intelRdt'), `the error must name /linux/intelRdt:\n${r.stderr}`);
  }
  s.config.linux.intelRdt = { closID: '../escape' };
  s.writeConfig();
  const bad = runtime(s, ['run', '-b', s.bundle, s.id]);
  assert.is.not(bad.status, 0);
  // runc's text log quotes the message, escaping its quotes.
  assert.match(bad.stderr, /invalid intelRdt\.ClosID \\?"\.\.\/escape\\?"/, bad.stderr);
  assert.equal(s.leftovers(), []);
});

attack('linux.intelRdt without schemas ({} or closID only) is refused, not silently ignored', (s) => {
  for (const rdt of [{}, { closID: 'tsrun-test' }]) {
    s.config.linux.intelRdt = rdt;
    s.writeConfig();
    const r = runtime(s, ['run', '-b', s.bundle, s.id]);
    assert.is.not(r.status, 0, `intelRdt ${JSON.stringify(rdt)} was accepted:\n${r.stderr}`);
    assert.ok(r.stderr.includes('/linux/intelRdt'), r.stderr);
  }
  assert.equal(s.leftovers(), []);
}, 'runc 1.1.5 ignores an intelRdt without schemas when resctrl is absent (the spec says MUST error)');

// ---------------------------------------------------------------------------------------------
// --log and spec

attack('--log: a symlink planted at the log name in a shared directory is not followed; /dev/stderr still works', (s) => {
  const sent = sentinel(s);
  const dir = sharedDir(s, 'logdir');
  const log = path.join(dir, 'log.json');
  fs.symlinkSync(sent.file, log);
  fs.appendFileSync(log, 'x');
  assert.ok(sent.changed(), 'control: appending through the planted symlink must change the sentinel');
  fs.writeFileSync(sent.file, sent.before.text);
  const again = sentinel(s);

  const r = runtime(s, ['--log', log, '--log-format', 'json', 'run', '-b', s.bundle, s.id]);
  assert.is.not(r.status, 0, r.stderr);
  assert.not.ok(again.changed(), 'the runtime appended to the sentinel through the planted --log symlink');
  const ok = runtime(s, ['--log', '/dev/stderr', 'run', '-b', s.bundle, s.id]);
  assert.is(ok.status, 0, ok.stderr);
  assert.equal(s.leftovers(), []);
}, 'runc 1.1.5 opens --log following symlinks');

attack('spec: a dangling symlink planted as config.json is not written through', (s) => {
  const dir = sharedDir(s, 'specdir');
  const target = path.join(s.dir, 'created-by-spec');
  fs.symlinkSync(target, path.join(dir, 'config.json'));
  const r = spawnSync(TSRUN, ['spec', '-b', dir], { encoding: 'utf8', cwd: s.dir });
  assert.is.not(r.status, 0, r.stderr);
  assert.match(r.stderr, /config\.json exists/, r.stderr);
  assert.not.ok(fs.existsSync(target), `spec created ${target} through the planted symlink`);
  // Control: the same command in a clean directory writes config.json.
  const clean = sharedDir(s, 'specclean');
  assert.is(spawnSync(TSRUN, ['spec', '-b', clean], { cwd: s.dir }).status, 0);
  assert.ok(fs.lstatSync(path.join(clean, 'config.json')).isFile());
}, 'runc 1.1.5 spec writes through a dangling config.json symlink (os.Stat, then WriteFile)');

test.run();
