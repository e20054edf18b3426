/**
 * Crash consistency: tsrun killed with SIGKILL at random instants of create, run -d, start and
 * delete, then `delete -f`: no cgroup directory (any hierarchy), state dir, mount or process of
 * that container may remain. tsrun writes what it is about to create (intent.json, then a
 * "creating" state.json) before it creates anything outside its state dir, so delete -f finds
 * all of it. A corrupt state.json is reported by `state`, and `delete -f` still removes everything.
 *
 * CRASH_KILLS=N sets the number of kills per command (default 12 here; the full run is
 * 100). Each kill prints where it landed (ms after spawn, and what it found left, if anything).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Sandbox, TSRUN, initProcesses, selected } from './helpers/tsrun';

const KILLS = Number(process.env.CRASH_KILLS ?? 12);

function spawnTsrun(s: Sandbox, args: string[]) {
  const out = fs.openSync(path.join(s.dir, 'crash-out'), 'a');
  const child = spawn(TSRUN, ['--root', s.root, ...args], { stdio: ['ignore', out, out] });
  fs.closeSync(out);
  return new Promise<{ status: number | null; signal: NodeJS.Signals | null; ms: number }>((resolve) => {
    const t0 = Date.now();
    child.on('exit', (status, signal) => resolve({ status, signal, ms: Date.now() - t0 }));
  }).then((r) => r) as Promise<{ status: number | null; signal: NodeJS.Signals | null; ms: number }> & { child?: typeof child };
}

async function timed(s: Sandbox, args: string[]): Promise<number> {
  const r = await spawnTsrun(s, args);
  if (r.status !== 0) throw new Error(`tsrun ${args.join(' ')} failed: ${fs.readFileSync(path.join(s.dir, 'crash-out'), 'utf8')}`);
  return r.ms;
}

/** Runs `args` and kills it after `delayMs` (it may have finished already). */
async function killAfter(s: Sandbox, args: string[], delayMs: number): Promise<boolean> {
  const out = fs.openSync(path.join(s.dir, 'crash-out'), 'a');
  const child = spawn(TSRUN, ['--root', s.root, ...args], { stdio: ['ignore', out, out] });
  fs.closeSync(out);
  let killed = false;
  const timer = setTimeout(() => {
    killed = child.kill('SIGKILL');
  }, delayMs);
  await new Promise((r) => child.on('exit', r));
  clearTimeout(timer);
  return killed;
}

/** tsrun-init processes that were not there before and do not go away within a second. */
async function strayInits(before: Set<number>): Promise<number[]> {
  const deadline = Date.now() + 1000;
  for (;;) {
    const now = initProcesses().filter((p) => !before.has(p));
    if (now.length === 0 || Date.now() > deadline) return now;
    await new Promise((r) => setTimeout(r, 50));
  }
}

function crashCase(name: string, prepare: ((s: Sandbox) => Promise<void>) | null, args: (s: Sandbox) => string[]) {
  if (!selected(name)) return;
  test(name, async () => {
    const s = new Sandbox(['sleep', '300'], 'crash');
    try {
      // How long the command takes when left alone: the kills are spread over all of it. Twice,
      // the shorter: a first, cold run (caches, the VM) would spread the kills past the end.
      let full = Infinity;
      for (let r = 0; r < 2; r++) {
        if (prepare) await prepare(s);
        full = Math.min(full, await timed(s, args(s)));
        assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
        assert.equal(s.leftovers(), [], 'a clean run leaves nothing');
      }
      let killedMidway = 0;
      const found: string[] = [];
      const initsBefore = new Set(initProcesses());
      for (let i = 0; i < KILLS; i++) {
        if (prepare) await prepare(s);
        const at = Math.floor(((i + Math.random()) / KILLS) * full * 1.2);
        if (await killAfter(s, args(s), at)) killedMidway++;
        const d = s.tsrun(['delete', '-f', s.id]);
        const left = s.leftovers();
        // A stage 0 of tsrun-init is not in the container's cgroup and carries no marker: it
        // must be gone too once its parent was killed (it exits when its sync socket closes).
        const strays = await strayInits(initsBefore);
        left.push(...strays.map((p) => `tsrun-init ${p}`));
        if (d.status !== 0 || left.length) found.push(`kill at ${at} ms: delete -f exit ${d.status} ${d.stderr.trim()}; left: ${left.join(', ')}`);
      }
      console.log(`    ${name}: ${KILLS} kills over ${full} ms (${killedMidway} landed before the command ended); ${found.length} left something`);
      for (const f of found) console.log(`      ${f}`);
      assert.ok(killedMidway >= Math.ceil(KILLS / 2), `most kills landed while the command ran (${killedMidway}/${KILLS})`);
      assert.equal(found, []);
    } finally {
      s.cleanup();
    }
  });
}

crashCase('create killed at random instants: delete -f leaves nothing', null, (s) => ['create', '-b', s.bundle, s.id]);
crashCase('run -d killed at random instants: delete -f leaves nothing', null, (s) => ['run', '-d', '-b', s.bundle, s.id]);
crashCase(
  'start killed at random instants: delete -f leaves nothing',
  async (s) => {
    const r = s.tsrun(['create', '-b', s.bundle, s.id]);
    if (r.status !== 0) throw new Error(r.stderr);
  },
  (s) => ['start', s.id],
);
crashCase(
  'delete -f killed at random instants: a second delete -f leaves nothing',
  async (s) => {
    const r = s.tsrun(['run', '-d', '-b', s.bundle, s.id]);
    if (r.status !== 0) throw new Error(r.stderr);
  },
  (s) => ['delete', '-f', s.id],
);
crashCase(
  'exec killed at random instants: delete -f leaves nothing (no stray stage 0 either)',
  async (s) => {
    const r = s.tsrun(['run', '-d', '-b', s.bundle, s.id]);
    if (r.status !== 0) throw new Error(r.stderr);
  },
  (s) => ['exec', s.id, 'sh', '-c', 'sleep 0.3'],
);

// Control for the detector: a create killed before delete -f, without the delete, leaves its
// cgroups and state behind — leftovers() sees them (and the cleanup then removes them).
if (selected('control')) {
  test('control: without delete -f a killed create leaves something that leftovers() and strayInits() find', async () => {
    const s = new Sandbox(['sleep', '300'], 'crashctl');
    try {
      const before = new Set(initProcesses());
      const r = s.tsrun(['create', '-b', s.bundle, s.id]);
      assert.is(r.status, 0, r.stderr);
      assert.ok(s.leftovers().length > 0, 'a created container is seen');
      // And the stray-init detector sees the waiting init (a tsrun-init process).
      assert.ok((await strayInits(before)).length > 0, 'a tsrun-init process is seen');
    } finally {
      s.cleanup();
    }
  });
}

for (const [what, content] of [
  ['empty', ''],
  ['truncated', '{"id":"x","initPid":12'],
  ['garbage', '\u0000\u0001not json at all'],
] as const) {
  if (!selected(what)) continue;
  test(`a ${what} state.json: state names the file, list shows the others, delete -f removes everything`, () => {
    const s = new Sandbox(['sleep', '300'], 'corrupt');
    try {
      const other = `${s.id}-other`;
      assert.is(s.tsrun(['run', '-d', '-b', s.bundle, other]).status, 0);
      const r = s.tsrun(['run', '-d', '-b', s.bundle, s.id]);
      assert.is(r.status, 0, r.stderr);
      const pid = s.state().pid;
      fs.writeFileSync(path.join(s.root, s.id, 'state.json'), content);
      const st = s.tsrun(['state', s.id]);
      assert.is(st.status, 1);
      assert.match(st.stderr, new RegExp(`${s.id}/state\\.json: corrupt container state`));
      const list = s.tsrun(['list', '-q']);
      assert.is(list.status, 0, list.stderr);
      assert.match(list.stdout, new RegExp(`^${other}$`, 'm'));
      const d = s.tsrun(['delete', '-f', s.id]);
      assert.is(d.status, 0, d.stderr);
      assert.not.ok(fs.existsSync(`/proc/${pid}`) && !/\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')), 'the container process is gone');
      assert.is(s.tsrun(['delete', '-f', other]).status, 0);
      assert.equal(s.leftovers(), []);
    } finally {
      s.cleanup();
    }
  });
}

test('--root on a full filesystem: create fails with ENOSPC and leaves nothing; with room it works', () => {
  const s = new Sandbox(['sleep', '300'], 'enospc');
  fs.mkdirSync(s.root, { mode: 0o700 });
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tsrun-test-enospc', s.root]);
  assert.is(mount.status, 0, String(mount.stderr));
  try {
    const fill = path.join(s.root, '.fill');
    // Everything the filesystem holds: the next block anybody asks for is ENOSPC.
    const fd = fs.openSync(fill, 'w');
    try {
      for (;;) fs.writeSync(fd, Buffer.alloc(4096));
    } catch (e) {
      assert.is((e as NodeJS.ErrnoException).code, 'ENOSPC');
    } finally {
      fs.closeSync(fd);
    }
    const r = s.tsrun(['create', '-b', s.bundle, s.id]);
    assert.is(r.status, 1, `create on a full --root must fail: ${r.stderr}`);
    assert.match(r.stderr, /no space left on device/);
    // The test's own tmpfs and fill file are not the runtime's.
    const ours = (l: string) => l.endsWith('/.fill') || l === `mount ${s.root}`;
    assert.equal(s.leftovers().filter((l) => !ours(l)), [], 'nothing left after the failed create');
    // Control: with room again the same create works (the failure was the full filesystem).
    fs.rmSync(fill);
    const ok = s.tsrun(['create', '-b', s.bundle, s.id]);
    assert.is(ok.status, 0, ok.stderr);
    assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
    assert.equal(s.leftovers().filter((l) => !ours(l)), []);
  } finally {
    spawnSync(TSRUN, ['--root', s.root, 'delete', '-f', s.id], { timeout: 20_000 });
    spawnSync('umount', ['-l', s.root]);
    s.cleanup();
  }
});

test.run();
