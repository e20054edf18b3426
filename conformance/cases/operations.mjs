// runtime.md "Operations" and "Errors": operations that MUST generate an error, and MUST
// leave the container (or the absence of one) as if they had never been attempted.
import fs from 'node:fs';
import path from 'node:path';

const WAIT = ['sleep', '30'];

// A created container, or a running one, or a stopped one, ready for the error to be tried on.
async function made(t, phase, args = WAIT) {
  const b = t.bundle({ args: phase === 'stopped' ? ['true'] : args });
  const id = t.id();
  t.create(id, b);
  if (phase !== 'created') t.start(id);
  if (phase === 'stopped') await t.waitStatus(id, 'stopped');
  return { id, b, pid: t.state(id).pid };
}

function unchanged(t, c, status) {
  const s = t.state(c.id);
  t.eq(s.status, status, 'status afterwards');
  if (status !== 'stopped') t.eq(s.pid, c.pid, 'pid afterwards');
}

export default [
  {
    id: 'ops.start-running',
    must: 'start of a running (already started) container fails, no effect',
    ref: 'runtime.md#start',
    async run(t) {
      const c = await made(t, 'running');
      t.fails(t.rt(['start', c.id]), `second start ${c.id}`);
      unchanged(t, c, 'running');
    },
  },
  {
    id: 'ops.start-stopped',
    must: 'start of a stopped container fails, no effect',
    ref: 'runtime.md#start',
    async run(t) {
      const c = await made(t, 'stopped');
      t.fails(t.rt(['start', c.id]), `start of stopped ${c.id}`);
      unchanged(t, c, 'stopped');
    },
  },
  {
    id: 'ops.kill-stopped',
    must: 'kill of a container that is neither created nor running fails',
    ref: 'runtime.md#kill',
    async run(t) {
      const c = await made(t, 'stopped');
      t.fails(t.rt(['kill', c.id, 'KILL']), `kill of stopped ${c.id}`);
      unchanged(t, c, 'stopped');
    },
  },
  {
    id: 'ops.delete-running',
    must: 'delete of a running container fails, no effect',
    ref: 'runtime.md#delete',
    async run(t) {
      const c = await made(t, 'running');
      t.fails(t.rt(['delete', c.id]), `delete of running ${c.id}`);
      unchanged(t, c, 'running');
      t.expect(fs.existsSync(`/proc/${c.pid}`), `process ${c.pid} is gone`);
    },
  },
  {
    id: 'ops.delete-created',
    must: 'delete of a created (not stopped) container fails, no effect',
    ref: 'runtime.md#delete',
    knownRuncFailure: 'runc deletes a created container without --force (it kills the init first)',
    async run(t) {
      const c = await made(t, 'created');
      t.fails(t.rt(['delete', c.id]), `delete of created ${c.id}`);
      unchanged(t, c, 'created');
    },
  },
  {
    id: 'ops.start-no-process',
    must: 'start MUST generate an error if process was not set',
    ref: 'runtime.md#start',
    async run(t) {
      const b = t.bundle({ mutate: (c) => { delete c.process; } });
      const id = t.id();
      const cr = t.tryCreate(id, b);
      // A runtime MAY refuse such a config already at create (it validates config.json);
      // then nothing may be left behind. Otherwise start must be the one to fail.
      if (cr.code !== 0) {
        t.expectNoContainer(id, 'after the refused create');
        return 'refused at create';
      }
      t.fails(t.rt(['start', id]), `start ${id} without process`);
      return 'refused at start';
    },
  },
  // (state without an id: state.no-id)
  ...['start', 'kill', 'delete'].map((op) => ({
    id: `ops.${op}-no-id`,
    must: `${op} without a container id generates an error`,
    ref: `runtime.md#${op}`,
    async run(t) {
      t.fails(t.rt([op]), `${op} (no id)`);
    },
  })),
  ...['start', 'kill', 'delete'].map((op) => ({
    id: `ops.${op}-unknown-id`,
    must: `${op} of a container that does not exist generates an error`,
    ref: `runtime.md#${op}`,
    async run(t) {
      // A container that does exist, so "no containers at all" is not what makes it fail.
      const c = await made(t, 'created');
      t.fails(t.rt(op === 'kill' ? [op, 'does-not-exist', 'KILL'] : [op, 'does-not-exist']), `${op} does-not-exist`);
      unchanged(t, c, 'created');
    },
  })),
  {
    id: 'ops.create-no-id',
    must: 'create without a container id generates an error',
    ref: 'runtime.md#create',
    async run(t) {
      const b = t.bundle({ args: WAIT });
      t.fails(t.rt(['create', '--bundle', b]), 'create --bundle <b> (no id)');
      t.eq(t.list(), [], 'containers afterwards');
    },
  },
  {
    id: 'ops.create-duplicate-id',
    must: 'create with an id already in use fails; the existing container is untouched',
    ref: 'runtime.md#create',
    async run(t) {
      const c = await made(t, 'created');
      const b2 = t.bundle({ args: ['sh', '-c', 'echo second > /marker'] });
      t.fails(t.tryCreate(c.id, b2), `second create ${c.id}`);
      const s = t.state(c.id);
      t.eq(s.status, 'created', 'status of the first container');
      t.eq(s.pid, c.pid, 'pid of the first container');
      t.eq(fs.realpathSync(s.bundle), fs.realpathSync(c.b), 'bundle of the first container');
      t.eq(t.list(), [c.id], 'containers');
    },
  },
  {
    id: 'ops.create-invalid-id',
    must: 'create with an invalid id ("../escape") fails and creates nothing',
    ref: 'runtime.md#create ("not valid in any other way"; validity is runtime-defined)',
    runcBehaviour: true,
    async run(t) {
      const b = t.bundle({ args: WAIT });
      const r = t.rt(['create', '--bundle', b, '../escape']);
      t.fails(r, 'create ../escape');
      t.expect(!fs.existsSync(path.join(t.dir, 'escape')), 'a state dir was made outside --root');
      t.eq(t.list(), [], 'containers afterwards');
    },
  },
  {
    id: 'ops.create-malformed-config',
    must: 'create with a malformed config.json fails and leaves no container',
    ref: 'runtime.md#lifecycle step 2, #errors',
    async run(t) {
      const b = t.bundle({ mutate: () => '{"ociVersion": "1.0.2", "process": ' });
      const id = t.id();
      t.fails(t.tryCreate(id, b), `create ${id}`);
      t.expectNoContainer(id, 'after the failed create');
    },
  },
  {
    id: 'ops.create-missing-rootfs',
    must: 'create whose root.path does not exist fails and leaves no container',
    ref: 'runtime.md#lifecycle step 2, #errors',
    async run(t) {
      const b = t.bundle({ args: WAIT, mutate: (c) => { c.root.path = 'no-such-rootfs'; } });
      const id = t.id();
      t.fails(t.tryCreate(id, b), `create ${id}`);
      t.expectNoContainer(id, 'after the failed create');
    },
  },
  {
    id: 'ops.create-unapplicable-mount',
    must: 'create that cannot apply a mount (missing bind source) fails, leaves nothing',
    ref: 'runtime.md#lifecycle step 2, #create, #errors',
    async run(t) {
      const b = t.bundle({
        args: ['sh', '-c', 'echo ran > /marker'],
        mutate: (c, dir) => {
          c.mounts.push({ destination: '/data', type: 'bind', source: path.join(dir, 'no-such-dir'), options: ['rbind'] });
        },
      });
      const id = t.id();
      t.fails(t.tryCreate(id, b), `create ${id}`);
      t.expectNoContainer(id, 'after the failed create');
      t.expect(!fs.existsSync(t.rootfs(b, 'marker')), 'the process ran');
    },
  },
];
