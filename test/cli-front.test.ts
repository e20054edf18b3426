/**
 * bin/tsrun's front door (addon/cli/front.cpp) answers `state`, `events --stats` and `--version` without an engine and
 * execs the engine CLI (bin/.tsrun-cli) for everything else. Its answers must be the CLI's, byte for
 * byte; and what it is not sure of must reach the CLI. A copy of the front door without a engine CLI
 * beside it shows which path served a call: it can only answer what it answers itself (the
 * others fail with exit 127, "exec …/.tsrun.js").
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lonelyFront, REPO, Sandbox, waitFor } from './helpers/tsrun';

const FRONT = path.join(REPO, 'bin/tsrun');
const ENGINE_CLI = path.join(REPO, 'bin/.tsrun-cli');

function call(bin: string, args: string[]) {
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Log records carry the second they were written in (time="…" in JSON, time=… in text). */
function untimed(r: ReturnType<typeof call>) {
  return { ...r, stderr: r.stderr.replace(/time=("[^"]*"|\S+)/g, 'time=T') };
}

if (!process.env.RUNTIME) {
  test('state in every status, with odd annotations: the front door prints exactly what the CLI prints, and answers it alone', async () => {
    const s = new Sandbox(['sleep', '300'], 'front');
    try {
      s.config.annotations = {
        'org.example/plain': 'v',
        'quote"back\\slash': 'tab\tnewline\ncontrol\u0001del\u007f',
        'unicode-\u00e9\u4e2d\u{1f600}': 'line\u2028sep',
      };
      s.writeConfig();
      const lonely = lonelyFront(s.dir);
      const log = path.join(s.dir, 'state.log');
      const same = (status: string, extra: string[] = []) => {
        const args = ['--root', s.root, ...extra, 'state', s.id];
        const viaFront = call(FRONT, args);
        const viaCli = call(ENGINE_CLI, args);
        assert.is(viaFront.status, 0, viaFront.stderr);
        assert.is(viaCli.status, 0, viaCli.stderr);
        assert.is(viaFront.stdout, viaCli.stdout, `${status}: front door and the CLI agree`);
        assert.is(JSON.parse(viaFront.stdout).status, status);
        // Served by the front door itself: the copy with no Node beside it answers the same.
        const alone = call(lonely, args);
        assert.is(alone.status, 0, `${status}: the front door answered alone: ${alone.stderr}`);
        assert.is(alone.stdout, viaCli.stdout);
      };
      assert.is(s.tsrun(['create', '-b', s.bundle, s.id]).status, 0);
      same('created');
      same('created', ['--log', log, '--log-format', 'json', '--systemd-cgroup']);
      assert.ok(fs.existsSync(log), 'the --log file is created, as Node creates it');
      assert.is(s.tsrun(['start', s.id]).status, 0);
      same('running');
      same('running', [`--log=${log}`, '--log-format=text']);
      assert.is(s.tsrun(['pause', s.id]).status, 0);
      same('paused');
      assert.is(s.tsrun(['resume', s.id]).status, 0);
      same('running');
      assert.is(s.tsrun(['kill', s.id, 'KILL']).status, 0);
      await waitFor(() => JSON.parse(call(ENGINE_CLI, ['--root', s.root, 'state', s.id]).stdout).status === 'stopped', 10_000, 'stopped');
      same('stopped');
      assert.is(s.tsrun(['delete', s.id]).status, 0);
      assert.equal(s.leftovers(), []);
    } finally {
      s.cleanup();
    }
  });

  test('what the front door is not sure of goes to the CLI (control: the lonely copy cannot answer it)', async () => {
    const s = new Sandbox(['sleep', '300'], 'frontnode');
    try {
      // An annotation key JavaScript orders first, and a cgroup state of another shape.
      s.config.annotations = { b: '1', '7': 'index-like' };
      s.writeConfig();
      assert.is(s.tsrun(['create', '-b', s.bundle, s.id]).status, 0);
      const lonely = lonelyFront(s.dir);
      const cases: [string, string[]][] = [
        ['index-like annotation key', ['--root', s.root, 'state', s.id]],
        ['a container that does not exist', ['--root', s.root, 'state', 'nope']],
        ['an invalid id', ['--root', s.root, 'state', 'a/b']],
        ['--debug', ['--root', s.root, '--debug', 'state', s.id]],
        ['an extra argument', ['--root', s.root, 'state', s.id, 'more']],
        ['a root that does not exist', ['--root', path.join(s.dir, 'none'), 'state', s.id]],
        ['another command', ['--root', s.root, 'list']],
        ['help', ['state', '--help']],
      ];
      for (const [what, args] of cases) {
        const alone = call(lonely, args);
        assert.is(alone.status, 127, `${what}: left to Node (${alone.stdout}${alone.stderr})`);
        assert.match(alone.stderr, /exec .*\/\.tsrun-cli: /);
        const viaFront = untimed(call(FRONT, args));
        const viaCli = untimed(call(ENGINE_CLI, args));
        assert.equal(viaFront, viaCli, `${what}: bin/tsrun answers as Node`);
      }
      assert.match(call(FRONT, ['--root', s.root, 'state', 'nope']).stderr, /container does not exist/);
      assert.is(call(FRONT, ['--root', s.root, 'state', s.id]).status, 0);
      // The cgroup state with a member the front door does not know.
      const file = path.join(s.root, s.id, 'state.json');
      const saved = JSON.parse(fs.readFileSync(file, 'utf8'));
      saved.config.annotations = { b: '1' };
      saved.cgroup = { ...saved.cgroup, driver: 'other' };
      fs.writeFileSync(file, JSON.stringify(saved));
      assert.is(call(lonely, ['--root', s.root, 'state', s.id]).status, 127, 'an unknown cgroup shape is left to Node');
      delete saved.cgroup.driver;
      fs.writeFileSync(file, JSON.stringify(saved));
      assert.is(call(lonely, ['--root', s.root, 'state', s.id]).status, 0, 'control: the known shape is answered');
      assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
      assert.equal(s.leftovers(), []);
    } finally {
      s.cleanup();
    }
  });

  test('events --stats: the front door prints the CLI\'s line (paused: the counters stand still) and answers it alone, with exact counters; the rest goes to the CLI', async () => {
    const s = new Sandbox(['sleep', '300'], 'frontstats');
    try {
      const lonely = lonelyFront(s.dir);
      assert.is(s.tsrun(['create', '-b', s.bundle, s.id]).status, 0);
      assert.is(s.tsrun(['start', s.id]).status, 0);
      assert.is(s.tsrun(['pause', s.id]).status, 0);
      const log = path.join(s.dir, 'events.log');
      for (const args of [
        ['--root', s.root, 'events', '--stats', s.id],
        ['--root', s.root, 'events', s.id, '--stats'],
        ['--root', s.root, '--log', log, '--log-format', 'json', 'events', '--stats', s.id],
      ]) {
        // The kernel folds its per-CPU memory counters into memory.stat lazily, frozen or not: a
        // few tries until two reads in a row see the same numbers.
        let viaCli = call(ENGINE_CLI, args);
        let viaFront = call(FRONT, args);
        for (let i = 0; i < 20 && viaFront.stdout !== viaCli.stdout; i++) {
          await new Promise((r) => setTimeout(r, 100));
          viaCli = call(ENGINE_CLI, args);
          viaFront = call(FRONT, args);
        }
        assert.is(viaCli.status, 0, viaCli.stderr);
        assert.is(viaFront.stdout, viaCli.stdout, `${args.join(' ')}: front door and the CLI agree`);
        const alone = call(lonely, args);
        assert.is(alone.status, 0, `${args.join(' ')}: the front door answered alone: ${alone.stderr}`);
        assert.is(JSON.parse(alone.stdout).id, s.id);
        const ev = JSON.parse(alone.stdout);
        assert.is(ev.type, 'stats');
        assert.is(ev.id, s.id);
        assert.ok(ev.data.pids.current >= 1);
      }
      assert.ok(fs.existsSync(log), 'the --log file is created, as the CLI creates it');
      // The memory limit as the kernel wrote it, every digit: runc prints uint64s exactly, where
      // a JavaScript number would round it (the control: the value is above 2^53, so it would).
      const saved = JSON.parse(fs.readFileSync(path.join(s.root, s.id, 'state.json'), 'utf8'));
      const v2 = saved.cgroup.layout === 'v2';
      const limitText = fs.readFileSync(v2 ? path.join(saved.cgroup.paths[''], 'memory.max') : path.join(saved.cgroup.paths.memory, 'memory.limit_in_bytes'), 'utf8').trim();
      const limit = limitText === 'max' ? '18446744073709551615' : limitText;
      assert.is.not(String(Number(limit)), limit, `control: ${limit} is not exact as a double`);
      assert.is(/"memory":\{(?:"cache":\d+,)?"usage":\{"limit":(\d+),/.exec(call(lonely, ['--root', s.root, 'events', '--stats', s.id]).stdout)?.[1], limit);

      // Not the front door's: no cgroup (the CLI warns and prints empty statistics), an unusual
      // command line, another container, a stopped one.
      const file = path.join(s.root, s.id, 'state.json');
      const text = fs.readFileSync(file, 'utf8');
      fs.writeFileSync(file, JSON.stringify({ ...saved, cgroup: null }));
      assert.is(call(lonely, ['--root', s.root, 'events', '--stats', s.id]).status, 127, 'no cgroup: left to the CLI');
      const noCgroup = call(FRONT, ['--root', s.root, 'events', '--stats', s.id]);
      assert.is(noCgroup.status, 0, noCgroup.stderr);
      assert.match(noCgroup.stderr, /the statistics are empty/);
      assert.is(JSON.parse(noCgroup.stdout).data.pids.current, undefined);
      fs.writeFileSync(file, text);
      assert.is(call(lonely, ['--root', s.root, 'events', '--stats', s.id]).status, 0, 'control: restored, answered alone');
      for (const args of [
        ['--root', s.root, 'events', '--stats', '--interval', '1s', s.id],
        ['--root', s.root, 'events', '--stats', '--stats'],
        ['--root', s.root, 'events', '--stats', 'nope'],
        ['--root', s.root, '--debug', 'events', '--stats', s.id],
      ]) {
        const alone = call(lonely, args);
        assert.is(alone.status, 127, `${args.join(' ')}: left to the CLI (${alone.stdout}${alone.stderr})`);
        const viaFront = call(FRONT, args);
        const viaCli = call(ENGINE_CLI, args);
        assert.is(viaFront.status, viaCli.status, args.join(' '));
        assert.is(untimed(viaFront).stderr, untimed(viaCli).stderr, args.join(' '));
      }
      assert.is(s.tsrun(['resume', s.id]).status, 0);
      assert.is(s.tsrun(['kill', s.id, 'KILL']).status, 0);
      await waitFor(() => JSON.parse(call(ENGINE_CLI, ['--root', s.root, 'state', s.id]).stdout).status === 'stopped', 10_000, 'stopped');
      const stopped = ['--root', s.root, 'events', '--stats', s.id];
      assert.is(call(lonely, stopped).status, 127, 'a stopped container: left to the CLI');
      const refused = call(FRONT, stopped);
      assert.is(refused.status, 1);
      assert.equal(refused, call(ENGINE_CLI, stopped));
      assert.is(s.tsrun(['delete', s.id]).status, 0);
      assert.equal(s.leftovers(), []);
    } finally {
      s.cleanup();
    }
  });

  test('--version: the CLI\'s own text, from the front door alone', () => {
    const dir = fs.mkdtempSync('/tmp/tsrun-front-');
    try {
      const viaCli = call(ENGINE_CLI, ['--version']);
      assert.is(viaCli.status, 0);
      assert.equal(call(FRONT, ['--version']), viaCli);
      assert.equal(call(lonelyFront(dir), ['--version']), viaCli);
      assert.equal(call(lonelyFront(dir), ['-v']), viaCli);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the CLI is started with the JIT off unless the caller chose (BUN_JSC_useJIT)', () => {
    const dir = fs.mkdtempSync('/tmp/tsrun-front-');
    try {
      // A stand-in CLI beside a copy of the front door: it prints the environment it was given.
      const front = lonelyFront(dir);
      fs.writeFileSync(path.join(path.dirname(front), '.tsrun-cli'), '#!/bin/sh\nenv\n', { mode: 0o755 });
      const env = (extra: Record<string, string>) => {
        const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'BUN_JSC_useJIT')) as Record<string, string>;
        const r = spawnSync(front, ['list'], { encoding: 'utf8', env: { ...base, ...extra } });
        assert.is(r.status, 0, r.stderr);
        return r.stdout.split('\n').filter((l) => l.startsWith('BUN_JSC_useJIT='));
      };
      assert.equal(env({}), ['BUN_JSC_useJIT=0']);
      assert.equal(env({ BUN_JSC_useJIT: '1' }), ['BUN_JSC_useJIT=1'], "the caller's choice stands");
      // The real CLI runs with it (and the container does not see it: isolation.test.ts).
      assert.is(call(FRONT, ['list', '--root', path.join(dir, 'root')]).status, 0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
} else {
  // No test registered: the runner counts this file as skipped, not passed.
  console.log(`    cli-front: RUNTIME=${process.env.RUNTIME} is another runtime; bin/tsrun's front door was NOT tested`);
}

test.run();
