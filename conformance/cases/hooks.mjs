// config.md "POSIX-platform Hooks" and runtime.md "Lifecycle" steps 3-13.
// Every hook appends its name to <rootfs>/hooks.log and saves its stdin (the state) as
// <rootfs>/state-<name>.json. Hooks that run in the runtime namespace address the rootfs by its
// host path; startContainer runs inside the container (path resolved there), so it uses "/".
import fs from 'node:fs';
import path from 'node:path';
import { Failure } from '../lib/harness.mjs';

const ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];
const q = (s) => `'${s.replace(/'/g, `'\\''`)}'`;

function hostHook(b, name, { fail = false, timeout } = {}) {
  const r = path.join(b, 'rootfs');
  const script = `cat > ${q(`${r}/state-${name}.json`)}; echo ${name} >> ${q(`${r}/hooks.log`)}${fail ? '; exit 3' : ''}`;
  return { path: '/bin/sh', args: ['sh', '-c', script], env: ENV, ...(timeout ? { timeout } : {}) };
}

function containerHook(name, { fail = false } = {}) {
  const script = `cat > /state-${name}.json; echo ${name} >> /hooks.log${fail ? '; exit 3' : ''}`;
  return { path: '/bin/sh', args: ['sh', '-c', script], env: ENV };
}

// The user process logs itself too, so its place among the hooks is visible.
const PROCESS = ['sh', '-c', 'echo process >> /hooks.log'];

function hookLog(t, b) {
  try {
    return fs.readFileSync(t.rootfs(b, 'hooks.log'), 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

function allHooks(b) {
  return {
    prestart: [hostHook(b, 'prestart1'), hostHook(b, 'prestart2')],
    createRuntime: [hostHook(b, 'createRuntime')],
    createContainer: [hostHook(b, 'createContainer')],
    startContainer: [containerHook('startContainer')],
    poststart: [hostHook(b, 'poststart')],
    poststop: [hostHook(b, 'poststop')],
  };
}

// create → start → (exit) → delete with every hook kind; the log after each operation.
async function fullRun(t) {
  const b = t.bundle({ args: PROCESS, mutate: (c, dir) => { c.hooks = allHooks(dir); } });
  const id = t.id();
  t.create(id, b);
  const afterCreate = hookLog(t, b);
  t.start(id);
  const afterStart = hookLog(t, b);
  await t.waitStatus(id, 'stopped');
  t.ok(t.rt(['delete', id]), `delete ${id}`);
  const afterDelete = hookLog(t, b);
  return { b, id, afterCreate, afterStart, afterDelete };
}

// Failing hook of the given kind: the operation that runs it must fail and nothing may remain.
function failingHookCase(kind, where) {
  return {
    id: `hooks.${kind}-fails`,
    must: `a failing ${kind} hook makes ${where} fail; the process never runs`,
    ref: `runtime.md#lifecycle, config.md#${kind}`,
    ...(kind === 'startContainer' ? { knownRuncFailure: 'runc start exits 0; the hook error only reaches the container\'s stderr (the process does not run, the container stops)' } : {}),
    async run(t) {
      const b = t.bundle({
        args: ['sh', '-c', 'echo ran > /marker; exec sleep 30'],
        mutate: (c, dir) => {
          c.hooks = { [kind]: [kind === 'startContainer' ? containerHook(kind, { fail: true }) : hostHook(dir, kind, { fail: true })] };
        },
      });
      const id = t.id();
      if (where === 'create') {
        t.fails(t.tryCreate(id, b), `create ${id}`);
        t.expectNoContainer(id, 'after the failed create');
        t.eq(hookLog(t, b), [kind], 'hooks run');
        t.expect(!fs.existsSync(t.rootfs(b, 'marker')), 'the user process ran');
      } else {
        t.create(id, b);
        const st = t.rt(['start', id]);
        // The container MUST be stopped (lifecycle step 7 → 12): gone, or at least stopped.
        await t.waitFor(() => {
          const s = t.rt(['state', id]);
          return s.code !== 0 || JSON.parse(s.stdout).status === 'stopped';
        }, 'the container to be stopped or gone after the failed hook');
        t.eq(hookLog(t, b), [kind], 'hooks run');
        t.expect(!fs.existsSync(t.rootfs(b, 'marker')), 'the user process ran');
        // Checked last so that a runtime that only misses the error shows exactly that.
        t.fails(st, `start ${id}`);
      }
    },
  };
}

export default [
  {
    id: 'hooks.create-phase',
    must: 'create calls prestart, createRuntime, createContainer, in order',
    ref: 'runtime.md#lifecycle steps 3-5, config.md#posix-platform-hooks',
    knownRuncFailure: 'runc 1.1.5 runs the poststart hooks during create, not after start',
    async run(t) {
      const r = await fullRun(t);
      t.eq(r.afterCreate, ['prestart1', 'prestart2', 'createRuntime', 'createContainer'], 'hooks after create');
    },
  },
  {
    id: 'hooks.start-phase',
    must: 'start calls startContainer before the process, poststart before returning',
    ref: 'runtime.md#lifecycle steps 7-9',
    knownRuncFailure: 'runc 1.1.5 runs the poststart hooks during create, not after start',
    async run(t) {
      const r = await fullRun(t);
      const added = r.afterStart.slice(r.afterCreate.length);
      // The process and poststart race (poststart runs after the exec), so both orders are fine.
      const ok = JSON.stringify(added) === JSON.stringify(['startContainer', 'process', 'poststart'])
        || JSON.stringify(added) === JSON.stringify(['startContainer', 'poststart', 'process'])
        || JSON.stringify(added) === JSON.stringify(['startContainer', 'poststart']);
      t.expect(ok, `hooks during start: expected startContainer, then process and poststart; got ${JSON.stringify(added)}`);
      const final = r.afterDelete;
      t.expect(final.indexOf('process') > final.indexOf('startContainer'), `process did not run after startContainer: ${final}`);
    },
  },
  {
    id: 'hooks.delete-phase',
    must: 'delete calls poststop (after the container is destroyed)',
    ref: 'runtime.md#lifecycle step 13',
    async run(t) {
      const r = await fullRun(t);
      t.eq(r.afterDelete.slice(r.afterStart.length).filter((x) => x !== 'process'), ['poststop'], 'hooks during delete');
      t.eq(r.afterDelete.filter((x) => x === 'poststop').length, 1, 'poststop calls');
    },
  },
  {
    id: 'hooks.state-on-stdin',
    must: 'every hook gets the container state (id, bundle, status) on stdin',
    ref: 'config.md#posix-platform-hooks',
    async run(t) {
      const r = await fullRun(t);
      const names = ['prestart1', 'prestart2', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'];
      const statuses = [];
      for (const n of names) {
        const f = t.rootfs(r.b, `state-${n}.json`);
        t.expect(fs.existsSync(f), `${n}: no state was saved (hook not run?)`);
        let s;
        try { s = JSON.parse(fs.readFileSync(f, 'utf8')); } catch { throw new Failure(`${n}: stdin was not a JSON state`); }
        t.eq(s.id, r.id, `${n}: state.id`);
        t.expect(typeof s.ociVersion === 'string' && s.ociVersion, `${n}: state.ociVersion missing`);
        t.expect(typeof s.bundle === 'string' && fs.realpathSync(s.bundle) === fs.realpathSync(r.b), `${n}: state.bundle ${s.bundle}`);
        t.expect(['creating', 'created', 'running', 'stopped'].includes(s.status), `${n}: state.status ${s.status}`);
        if (s.status === 'created' || s.status === 'running') t.expect(s.pid > 0, `${n}: status ${s.status} without pid`);
        statuses.push(`${n}=${s.status}`);
      }
      return statuses.join(' ');
    },
  },
  {
    id: 'hooks.args-env',
    must: 'hook path/args/env are used as given (args[0] is argv[0], env only from config)',
    ref: 'config.md#posix-platform-hooks',
    async run(t) {
      const b = t.bundle({
        args: ['true'],
        mutate: (c, dir) => {
          const out = path.join(dir, 'hook-out');
          c.hooks = {
            prestart: [{
              path: '/bin/sh',
              args: ['sh', '-c', `printf '%s|%s|%s|%s' "$0" "$1" "$HOOKVAR" "\${CONFORMANCE_HOST_ONLY:-unset}" > ${q(out)}`, 'zero', 'one'],
              env: ['HOOKVAR=hook value'],
            }],
          };
        },
      });
      const id = t.id();
      t.create(id, b);
      t.eq(fs.readFileSync(path.join(b, 'hook-out'), 'utf8'), 'zero|one|hook value|unset', 'hook saw ($0|$1|$HOOKVAR|host var)');
    },
  },
  failingHookCase('prestart', 'create'),
  failingHookCase('createRuntime', 'create'),
  failingHookCase('createContainer', 'create'),
  failingHookCase('startContainer', 'start'),
  {
    id: 'hooks.prestart-fail-poststop',
    must: 'after a failing prestart hook the poststop hooks are still called',
    ref: 'runtime.md#lifecycle steps 3, 12-13',
    async run(t) {
      const b = t.bundle({
        args: ['true'],
        mutate: (c, dir) => { c.hooks = { prestart: [hostHook(dir, 'prestart', { fail: true })], poststop: [hostHook(dir, 'poststop')] }; },
      });
      const id = t.id();
      t.fails(t.tryCreate(id, b), `create ${id}`);
      t.eq(hookLog(t, b), ['prestart', 'poststop'], 'hooks run');
    },
  },
  {
    id: 'hooks.poststart-fail',
    must: 'a failing poststart hook only warns: start succeeds, later hooks run',
    ref: 'runtime.md#lifecycle step 9',
    knownRuncFailure: 'runc 1.1.5 runs poststart hooks during create, and a failing one makes create fail',
    async run(t) {
      const b = t.bundle({
        args: ['sh', '-c', 'echo ran > /marker; exec sleep 30'],
        mutate: (c, dir) => { c.hooks = { poststart: [hostHook(dir, 'poststart1', { fail: true }), hostHook(dir, 'poststart2')] }; },
      });
      const id = t.id();
      t.create(id, b);
      t.ok(t.rt(['start', id]), `start ${id}`);
      t.eq(hookLog(t, b).filter((x) => x.startsWith('poststart')), ['poststart1', 'poststart2'], 'poststart hooks run');
      t.eq(t.state(id).status, 'running', 'status');
    },
  },
  {
    id: 'hooks.poststop-fail',
    must: 'a failing poststop hook only warns: delete succeeds, later hooks run',
    ref: 'runtime.md#lifecycle step 13',
    knownRuncFailure: 'runc stops at the failing poststop hook: the remaining poststop hooks never run (delete itself succeeds)',
    async run(t) {
      const b = t.bundle({
        args: ['true'],
        mutate: (c, dir) => { c.hooks = { poststop: [hostHook(dir, 'poststop1', { fail: true }), hostHook(dir, 'poststop2')] }; },
      });
      const id = t.id();
      t.create(id, b);
      t.start(id);
      await t.waitStatus(id, 'stopped');
      const d = t.rt(['delete', id]);
      t.eq(hookLog(t, b), ['poststop1', 'poststop2'], 'poststop hooks run');
      t.ok(d, `delete ${id}`);
      t.expectNoContainer(id, 'after delete');
    },
  },
  {
    id: 'hooks.timeout',
    must: 'a hook that exceeds its timeout is aborted and counts as failed',
    ref: 'config.md#posix-platform-hooks (timeout)',
    async run(t) {
      const b = t.bundle({
        args: ['true'],
        // The hook process itself sleeps (no shell in between), so "aborting the hook" is
        // about that process, not about grandchildren a runtime may not know of.
        mutate: (c) => { c.hooks = { prestart: [{ path: '/bin/sleep', args: ['sleep', '20'], env: ENV, timeout: 1 }] }; },
      });
      const id = t.id();
      const t0 = Date.now();
      t.fails(t.tryCreate(id, b), `create ${id}`);
      const took = Date.now() - t0;
      t.expect(took < 10000, `create took ${took}ms: the 1s hook timeout was not enforced`);
      t.expectNoContainer(id, 'after the failed create');
      return `create failed after ${took}ms`;
    },
  },
];
