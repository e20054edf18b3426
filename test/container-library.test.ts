/**
 * The container library driven in-process, the way the containerd shim drives it: 20 containers
 * created, started, exec'd into, killed and deleted concurrently from this one Node process.
 * Each exit status must reach its own promise, no handler may be left on `process`, no fd of this
 * process may reach a container, and the event loop must keep turning (measured).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHook } from 'node:async_hooks';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Container } from '../src/container/container';
import type { RuntimeContext } from '../src/container/context';
import { errorKind } from '../src/container/errors';
import { HookError } from '../src/hooks/run';
import { native } from '../src/native/addon';
import { Sandbox, waitFor } from './helpers/tsrun';

const N = 20;

/**
 * The longest stretches of synchronous JavaScript in one callback (timer, I/O, promise reaction):
 * how long the library keeps everything else in the process waiting at a time. Two measures:
 *   - `top`: wall-clock time, what the other callbacks waited;
 *   - `topHeld`: the part of it the callback itself held the thread, on the CPU or asleep in a
 *     system call: wall-clock time less the time the thread was runnable but had no CPU (its
 *     /proc/thread-self/schedstat; a VM host's steal time counts as held). This 2-core machine
 *     also runs the test's 20 containers and whatever else is going on; a callback that waited
 *     for a CPU blocked the loop just as much, but that is the machine's scheduling, not work
 *     the library could move off the loop.
 * `top[0]` is the longest, `top[k]` the k+1-th longest; `topHeld` entries give both times and the
 * callback's async resource type; `most.cpu` is the most CPU time of any callback.
 */
function longestCallbacks(keep = 5) {
  let depth = 0;
  let start = 0;
  let startSched = { cpu: 0, waited: 0 };
  let startType = '';
  const top: number[] = [];
  const topHeld: { held: number; cpu: number; wall: number; type: string }[] = [];
  const most = { cpu: 0 };
  const types = new Map<number, string>();
  const hook = createHook({
    init(id, type) {
      types.set(id, type);
    },
    destroy(id) {
      types.delete(id);
    },
    before(id) {
      if (depth++ !== 0) return;
      startSched = native().threadSchedTimes();
      start = performance.now();
      startType = types.get(id) ?? '?';
    },
    after() {
      if (--depth !== 0) return;
      const wall = performance.now() - start;
      const sched = native().threadSchedTimes();
      const held = wall - (sched.waited - startSched.waited);
      const cpu = sched.cpu - startSched.cpu;
      if (cpu > most.cpu) most.cpu = cpu;
      if (top.length < keep || wall > top[keep - 1]) {
        top.push(wall);
        top.sort((a, b) => b - a);
        top.length = Math.min(top.length, keep);
      }
      if (topHeld.length < keep || held > topHeld[keep - 1].held) {
        topHeld.push({ held, cpu, wall, type: startType });
        topHeld.sort((a, b) => b.held - a.held);
        topHeld.length = Math.min(topHeld.length, keep);
      }
    },
  });
  return {
    enable: () => hook.enable(),
    disable: () => hook.disable(),
    /** Forgets what was measured so far (the hook stays as it is). */
    reset: () => {
      top.length = 0;
      topHeld.length = 0;
      most.cpu = 0;
    },
    top,
    topHeld,
    /** The most CPU time any one callback used. */
    most,
  };
}

function ctxOf(sb: Sandbox, warnings: string[]): RuntimeContext {
  const log = { debug() {}, info() {}, warn: (m: string) => warnings.push(m), error: (m: string) => warnings.push(m) };
  return { root: sb.root, log, systemdCgroup: false };
}

/** The fds open in a container process, from its own /proc (ls's own directory fd excluded). */
function fdsOf(listing: string): string[] {
  return listing.split(/\s+/).filter((x) => /^\d+$/.test(x));
}

test(`${N} containers at once: create, start, exec, exit statuses, kill, delete`, async () => {
  const sandboxes: Sandbox[] = [];
  const extra: Sandbox[] = [];
  const warnings: string[] = [];
  const listenersOf = () => process.eventNames().map((n) => `${String(n)}:${process.listenerCount(n)}`).sort();
  const before = listenersOf();
  const delay = monitorEventLoopDelay({ resolution: 2 });
  try {
    for (let i = 0; i < N; i++) {
      // The init waits for the flag file (written once the exec has exited), then exits with its
      // own status; every other one waits to be killed instead.
      const end = i % 2 === 1 ? 'exec sleep 1000' : `exit ${10 + i}`;
      const sb = new Sandbox(['sh', '-c', `while [ ! -e /tmp/go ]; do sleep 0.05; done; ls /proc/self/fd > /tmp/init-fds; ${end}`], 'lib');
      sandboxes.push(sb);
    }
    // One lifecycle first, so that loading (and the test runner's transpiling) of the library's
    // modules is not what the event loop measurement sees.
    {
      const warm = new Sandbox(['true'], 'libw');
      extra.push(warm);
      const devNull = fs.openSync('/dev/null', 'r+');
      try {
        const c = await Container.create(ctxOf(warm, warnings), warm.id, warm.bundle, { stdio: [devNull, devNull, devNull], passFds: { fds: [], env: [] } });
        await c.start();
        await c.exited;
        await c.delete();
      } finally {
        fs.closeSync(devNull);
      }
    }
    // Control: the measurement sees a callback that keeps the thread busy for 12 ms, as CPU and
    // as held (not as waiting), whatever else the machine does.
    // (The same hook as the measurement: a second async hook, enabled after this one was
    // disabled, saw no promise callbacks at all here.)
    const longest = longestCallbacks();
    longest.enable();
    {
      const control = longest;
      await new Promise<void>((resolve) =>
        setTimeout(() => {
          const until = performance.now() + 12;
          while (performance.now() < until);
          resolve();
        }, 1),
      );
      assert.ok(control.most.cpu > 6, `control: a 12 ms busy callback measured ${control.most.cpu.toFixed(1)} ms of CPU`);
      assert.ok(control.topHeld[0].held > 6, `control: a 12 ms busy callback measured held ${control.topHeld[0].held.toFixed(1)} ms`);
      longest.reset();
    }
    delay.enable();
    const results = await Promise.all(
      sandboxes.map(async (sb, i) => {
        // Each lifecycle from a callback of its own, as a daemon's requests arrive; without this
        // the 20 creates' synchronous beginnings (~1.4 ms each: reading and validating the
        // bundle) run back to back in the one callback that calls map.
        await Promise.resolve();
        const ctx = ctxOf(sb, warnings);
        const out = fs.openSync(path.join(sb.dir, 'exec.out'), 'w+');
        const devNull = fs.openSync('/dev/null', 'r+');
        try {
          const c = await Container.create(ctx, sb.id, sb.bundle, { stdio: [devNull, devNull, devNull], passFds: { fds: [], env: [] } });
          assert.ok(c.pid > 0, 'create gives the init pid');
          assert.is(c.status(), 'created');
          await c.start();
          const ex = await c.exec({ ...sb.config.process, args: ['sh', '-c', `ls /proc/self/fd; exit ${50 + i}`] }, { stdio: [devNull, out, out], passFds: { fds: [], env: [] } });
          assert.ok(ex.pid > 0, 'exec gives its pid first');
          const execStatus = await ex.exited;
          // The init goes on only once the exec'd process is gone: had it exited first, the pid
          // namespace's end would have killed the exec'd process (137) before its own exit.
          fs.writeFileSync(path.join(sb.bundle, 'rootfs/tmp/go'), '');
          if (i % 2 === 1) {
            // Written, not just created: the shell creates the file before ls writes into it, and
            // a kill in between leaves it empty.
            const initFds = path.join(sb.bundle, 'rootfs/tmp/init-fds');
            await waitFor(() => fs.existsSync(initFds) && fs.readFileSync(initFds, 'utf8').endsWith('\n'), 20_000, `init of ${i} past its wait`);
            await c.kill(9);
          }
          const initStatus = await c.exited!;
          assert.is(c.status(), 'stopped');
          await c.delete();
          return { i, execStatus, initStatus, execFds: fdsOf(fs.readFileSync(path.join(sb.dir, 'exec.out'), 'utf8')) };
        } finally {
          fs.closeSync(out);
          fs.closeSync(devNull);
        }
      }),
    );
    delay.disable();
    longest.disable();
    for (const r of results) {
      assert.is(r.execStatus, 50 + r.i, `exec status of container ${r.i}`);
      if (r.i % 2 === 1) assert.is(r.initStatus, 137, `init of ${r.i}: killed`);
      else assert.is(r.initStatus, 10 + r.i, `init status of container ${r.i}`);
      // 0, 1, 2 and ls's own directory fd: nothing of ours.
      assert.equal(r.execFds, ['0', '1', '2', '3'], `exec'd process of ${r.i} holds only stdio: ${r.execFds}`);
    }
    for (const sb of sandboxes) {
      const init = path.join(sb.bundle, 'rootfs/tmp/init-fds');
      if (fs.existsSync(init)) assert.equal(fdsOf(fs.readFileSync(init, 'utf8')), ['0', '1', '2', '3'], `init of ${sb.id} holds only stdio`);
      assert.equal(sb.leftovers(), [], `nothing of ${sb.id} left`);
    }
    // Deleted means gone for the library too.
    try {
      Container.load(ctxOf(sandboxes[0], warnings), sandboxes[0].id);
      assert.unreachable('load of a deleted container');
    } catch (e) {
      assert.is(errorKind(e), 'NotFound');
    }
    assert.equal(listenersOf(), before, 'no handler left on process');
    const maxMs = delay.max / 1e6;
    const p99 = delay.percentile(99) / 1e6;
    console.log(`    ${N} concurrent lifecycles: longest synchronous callbacks ${longest.top.slice(0, 5).map((d) => d.toFixed(1)).join(' ')} ms; most CPU in one ${longest.most.cpu.toFixed(1)} ms; held by the callback itself ${longest.topHeld.map((t) => `${t.held.toFixed(1)} (cpu ${t.cpu.toFixed(1)}, wall ${t.wall.toFixed(1)}, ${t.type})`).join(' ')} ms; timer lateness p50 ${(delay.percentile(50) / 1e6).toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${maxMs.toFixed(1)} ms`);
    // Measured on this 2-core hybrid-cgroup VM (10 s windows, 5-11 runs each; "load" is the
    // 1-minute load average, other sessions' tests and VMs included):
    //   before (every cgroup and state write, the init's spawn synchronous): idle-ish (load 1-2.6)
    //   12-27 ms wall (8.8-16.6 when measured idle earlier), load 4.4 19-51 ms. --cpu-prof: the
    //   longest were all createContainer's stretch from the lock to the seccomp/bind-sources await
    //   (12-14 ms), 46% of it the cgroup's mkdir, cpuset and device writes, 14% the state files,
    //   12% reading mountinfo twice.
    //   after (those on libuv's thread pool, src/cgroups/util.ts, addon writeFiles/spawnProcess):
    //   wall 7.3-11 ms idle in 10 of 11 runs, one 20.8; load 2.2 8.3-21 ms; load 4-5 11-36 ms.
    //   Split by the thread's schedstat (load ~1, another session's tests running; 5 runs): the
    //   most CPU any callback used 2.9-4.9 ms (schedstat's own CPU field then, which lags by up to
    //   a 4 ms tick; now CLOCK_THREAD_CPUTIME_ID); the longest held (CPU plus asleep in a system call)
    //   4.3-12.4 ms, wall 7.8-71.9 ms: the 71.9 ms callback had ~3 ms of CPU and waited the rest
    //   for one of the two CPUs. Held well above CPU is a sleep inside a call, most likely on the
    //   thread pool's queue lock while a descheduled pool thread holds it (4-8 ms, about 1 post in
    //   1000 under load). The most CPU was exec's stretch before the spawn (--cpu-prof, earlier):
    //   loading its state, deriving the status, building the plan.
    //   With each lifecycle started from a callback of its own (above; before, the hook came on
    //   in the middle of the callback that started all 20, and their synchronous beginnings went
    //   unmeasured; together they were one 28 ms callback): most CPU 3.1-4.8 ms, held 3.8-6.7
    //   ms (6 runs with the cgroup v2 VM running beside them); wall 8.1-40.7 ms.
    // So the bounds: the library's own work in one callback within a few ms of CPU (8: well
    // above the worst seen, for a slower machine), what it holds the thread for, sleeps included, within 15 ms (the 12.4 ms seen
    // under another session's load, with margin). Wall-clock time is printed, not bounded: on
    // this machine it is the scheduler's (runs with another session's VM measured 70 ms and more).
    const worstCpu = longest.most.cpu;
    assert.ok(worstCpu < 8, `one callback kept the event loop's thread on the CPU for ${worstCpu.toFixed(1)} ms`);
    assert.ok(longest.topHeld[0].held < 15, `one callback held the event loop for ${longest.topHeld[0].held.toFixed(1)} ms (cpu ${longest.topHeld[0].cpu.toFixed(1)})`);
    assert.equal(warnings, [], 'no warnings');
  } finally {
    for (const sb of [...sandboxes, ...extra]) sb.cleanup();
  }
});

test('errors carry a kind: NotFound, AlreadyExists, FailedPrecondition, InvalidArgument', async () => {
  const sb = new Sandbox(['sleep', '100'], 'libe');
  const ctx = ctxOf(sb, []);
  const devNull = fs.openSync('/dev/null', 'r+');
  try {
    try {
      Container.load(ctx, 'nope');
      assert.unreachable();
    } catch (e) {
      assert.is(errorKind(e), 'NotFound');
      assert.is((e as Error).message, 'container does not exist');
    }
    const c = await Container.create(ctx, sb.id, sb.bundle, { stdio: [devNull, devNull, devNull], passFds: { fds: [], env: [] } });
    try {
      await Container.create(ctx, sb.id, sb.bundle, { stdio: [devNull, devNull, devNull], passFds: { fds: [], env: [] } });
      assert.unreachable();
    } catch (e) {
      assert.is(errorKind(e), 'AlreadyExists');
    }
    try {
      await c.resume();
      assert.unreachable();
    } catch (e) {
      assert.is(errorKind(e), 'FailedPrecondition');
    }
    try {
      await c.kill(12345);
      assert.unreachable();
    } catch (e) {
      assert.is(errorKind(e), 'InvalidArgument', `a signal that is none: ${(e as Error).message}`);
    }
    await c.delete(true);
    assert.is(await c.exited, 137, 'a created init killed by delete reports 137');
    // A config that does not validate (the bundle's error, from below the library).
    const bad = new Sandbox(['true'], 'libe');
    try {
      (bad.config.process as { args: unknown }).args = 'not a list';
      bad.writeConfig();
      try {
        await Container.create(ctxOf(bad, []), bad.id, bad.bundle, { stdio: [devNull, devNull, devNull], passFds: { fds: [], env: [] } });
        assert.unreachable();
      } catch (e) {
        assert.is(errorKind(e), 'InvalidArgument', `a bad config: ${(e as Error).message}`);
      }
      assert.equal(bad.leftovers(), []);
    } finally {
      bad.cleanup();
    }
    // The kind is a field the error carries, one of the known ones; nothing else counts.
    assert.is(errorKind(new HookError('hook failed')), 'FailedPrecondition');
    assert.is(errorKind(Object.assign(new Error('x'), { kind: 'Bogus' })), 'Unknown');
    assert.is(errorKind(new Error('InvalidArgument')), 'Unknown');
    assert.equal(sb.leftovers(), []);
  } finally {
    fs.closeSync(devNull);
    sb.cleanup();
  }
});

test('forceDelete removes a container whose state file is gone (only its intent record is left), which load cannot', async () => {
  const sb = new Sandbox(['sleep', '100'], 'libf');
  const ctx = ctxOf(sb, []);
  const devNull = fs.openSync('/dev/null', 'r+');
  try {
    const c = await Container.create(ctx, sb.id, sb.bundle, { stdio: [devNull, devNull, devNull], passFds: { fds: [], env: [] } });
    // As a create killed before its state was written leaves it: the intent record only.
    fs.rmSync(path.join(sb.root, sb.id, 'state.json'));
    assert.ok(fs.existsSync(path.join(sb.root, sb.id, 'intent.json')));
    assert.ok(sb.leftovers().length > 0, 'control: the container is still there');
    try {
      Container.load(ctx, sb.id);
      assert.unreachable('load without a state file');
    } catch (e) {
      assert.is(errorKind(e), 'NotFound');
    }
    await Container.forceDelete(ctx, sb.id);
    assert.is(await c.exited, 137);
    assert.equal(sb.leftovers(), []);
  } finally {
    fs.closeSync(devNull);
    sb.cleanup();
  }
});

test.run();
