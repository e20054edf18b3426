// runtime.md "State" and "Query State".
import fs from 'node:fs';
import path from 'node:path';

// A container whose process waits; `create` then leaves it "created".
const WAIT = ['sleep', '30'];

export default [
  {
    id: 'state.created',
    must: 'state of a created container: status "created", id, ociVersion, pid > 0',
    ref: 'runtime.md#state, #create',
    async run(t) {
      const b = t.bundle({ args: WAIT });
      const id = t.id();
      t.create(id, b);
      const s = t.state(id);
      t.eq(s.status, 'created', 'status');
      t.eq(s.id, id, 'id');
      t.expect(typeof s.ociVersion === 'string' && /^\d+\.\d+\.\d+/.test(s.ociVersion), `ociVersion ${JSON.stringify(s.ociVersion)} is not a version`);
      t.expect(Number.isInteger(s.pid) && s.pid > 0, `pid ${s.pid} is not a positive integer`);
      t.expect(fs.existsSync(`/proc/${s.pid}`), `pid ${s.pid} does not exist on the host`);
      return `pid ${s.pid}, ociVersion ${s.ociVersion}`;
    },
  },
  {
    id: 'state.bundle-absolute',
    must: 'state.bundle is the absolute path of the bundle (created with a relative path)',
    ref: 'runtime.md#state',
    async run(t) {
      const b = t.bundle({ args: WAIT, name: 'relbundle' });
      const id = t.id();
      // Relative to the runtime's cwd: the runtime must resolve it.
      t.ok(t.tryCreate(id, './relbundle', { cwd: t.dir }), `create ${id} --bundle ./relbundle`);
      const s = t.state(id);
      t.expect(typeof s.bundle === 'string' && path.isAbsolute(s.bundle), `bundle ${JSON.stringify(s.bundle)} is not absolute`);
      t.eq(fs.realpathSync(s.bundle), fs.realpathSync(b), 'bundle (realpath)');
      return s.bundle;
    },
  },
  {
    id: 'state.pid-is-host-pid',
    must: 'state.pid is the host pid of the container process',
    ref: 'runtime.md#state',
    async run(t) {
      const b = t.bundle({ args: ['sleep', '31'] });
      const id = t.id();
      t.create(id, b);
      const pid = t.state(id).pid;
      // Before start the pid is the runtime's init, already inside the container's rootfs.
      // (compared by device+inode: readlink on another mount namespace's root says just "/")
      t.expect(t.sameFile(`/proc/${pid}/root/`, t.rootfs(b)), `/proc/${pid}/root is not the bundle rootfs`);
      t.start(id);
      t.eq(t.state(id).pid, pid, 'pid after start');
      // After start that very process runs process.args.
      await t.waitFor(() => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8') === 'sleep\x0031\x00', `/proc/${pid}/cmdline to be "sleep 31"`);
      return `pid ${pid}`;
    },
  },
  {
    id: 'state.annotations',
    must: 'state.annotations reports the config annotations',
    ref: 'runtime.md#state',
    async run(t) {
      const ann = { 'org.example.conformance': 'yes', 'org.example.other': 'a b=c' };
      const b = t.bundle({ args: WAIT, mutate: (c) => { c.annotations = ann; } });
      const id = t.id();
      t.create(id, b);
      t.eq(t.state(id).annotations, ann, 'annotations');
    },
  },
  {
    id: 'state.running',
    must: 'after start, status is "running"',
    ref: 'runtime.md#start',
    async run(t) {
      const b = t.bundle({ args: WAIT });
      const id = t.id();
      t.create(id, b);
      t.start(id);
      const s = t.state(id);
      t.eq(s.status, 'running', 'status');
      t.expect(s.pid > 0, `pid ${s.pid}`);
    },
  },
  {
    id: 'state.stopped-after-exit',
    must: 'status is "stopped" once the container process has exited',
    ref: 'runtime.md#state, #kill',
    async run(t) {
      const b = t.bundle({ args: ['true'] });
      const id = t.id();
      t.create(id, b);
      t.start(id);
      await t.waitStatus(id, 'stopped');
      t.eq(t.state(id).id, id, 'id');
    },
  },
  {
    id: 'state.no-id',
    must: 'state without a container id generates an error',
    ref: 'runtime.md#query-state',
    async run(t) {
      t.fails(t.rt(['state']), 'state (no id)');
    },
  },
  {
    id: 'state.unknown-id',
    must: 'state of a container that does not exist generates an error',
    ref: 'runtime.md#query-state',
    async run(t) {
      t.fails(t.rt(['state', 'does-not-exist']), 'state does-not-exist');
    },
  },
];
