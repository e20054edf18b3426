// runtime.md "Lifecycle": what create, start, kill and delete do (the happy paths).
import fs from 'node:fs';
import path from 'node:path';
import { sleep } from '../lib/harness.mjs';

// The process leaves a marker in its rootfs, then waits: the marker proves it ran.
const MARK = ['sh', '-c', 'echo ran > /marker; exec sleep 30'];

export default [
  {
    id: 'lifecycle.create-no-process',
    must: 'create MUST NOT run the user-specified program',
    ref: 'runtime.md#lifecycle step 2, #create',
    async run(t) {
      const b = t.bundle({ args: MARK });
      const id = t.id();
      t.create(id, b);
      // Give a runtime that wrongly runs the process at create time the chance to show it.
      await sleep(400);
      t.expect(!fs.existsSync(t.rootfs(b, 'marker')), 'the process ran during create (marker exists)');
      t.eq(t.state(id).status, 'created', 'status');
    },
  },
  {
    id: 'lifecycle.start-runs-process',
    must: 'start MUST run the user-specified program',
    ref: 'runtime.md#start',
    async run(t) {
      const b = t.bundle({ args: MARK });
      const id = t.id();
      t.create(id, b);
      t.start(id);
      await t.waitFor(() => fs.existsSync(t.rootfs(b, 'marker')), 'the marker written by the process');
      t.eq(fs.readFileSync(t.rootfs(b, 'marker'), 'utf8'), 'ran\n', 'marker content');
    },
  },
  {
    id: 'lifecycle.config-change-after-create',
    must: 'changes to config.json after create do not affect the container',
    ref: 'runtime.md#lifecycle step 2, #create',
    async run(t) {
      const b = t.bundle({ args: MARK });
      const id = t.id();
      t.create(id, b);
      const cfgPath = path.join(b, 'config.json');
      const cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
      cfg.process.args = ['sh', '-c', 'echo changed > /changed; exec sleep 30'];
      fs.writeFileSync(cfgPath, JSON.stringify(cfg));
      t.start(id);
      await t.waitFor(() => fs.existsSync(t.rootfs(b, 'marker')), 'the original process to run');
      t.expect(!fs.existsSync(t.rootfs(b, 'changed')), 'the rewritten config.json was used');
    },
  },
  {
    id: 'lifecycle.kill-sends-signal',
    must: 'kill MUST send the specified signal to the container process',
    ref: 'runtime.md#kill',
    async run(t) {
      // sh runs the trap between the short sleeps; the trap exits so the status becomes stopped.
      const b = t.bundle({
        args: ['sh', '-c', "trap 'echo USR1 > /got-signal; exit 0' USR1; touch /ready; while true; do sleep 0.05; done"],
      });
      const id = t.id();
      t.create(id, b);
      t.start(id);
      await t.waitFor(() => fs.existsSync(t.rootfs(b, 'ready')), 'the trap to be installed');
      t.ok(t.rt(['kill', id, 'SIGUSR1']), `kill ${id} SIGUSR1`);
      await t.waitFor(() => fs.existsSync(t.rootfs(b, 'got-signal')), 'the trap to write its marker');
      t.eq(fs.readFileSync(t.rootfs(b, 'got-signal'), 'utf8'), 'USR1\n', 'marker');
      await t.waitStatus(id, 'stopped');
    },
  },
  {
    id: 'lifecycle.kill-running-stopped',
    must: 'after kill KILL of a running container, status is "stopped"',
    ref: 'runtime.md#kill',
    async run(t) {
      const b = t.bundle({ args: ['sleep', '30'] });
      const id = t.id();
      t.create(id, b);
      t.start(id);
      t.ok(t.rt(['kill', id, 'KILL']), `kill ${id} KILL`);
      await t.waitStatus(id, 'stopped');
    },
  },
  {
    id: 'lifecycle.kill-created',
    must: 'kill of a created container sends the signal (KILL → stopped)',
    ref: 'runtime.md#kill',
    async run(t) {
      const b = t.bundle({ args: MARK });
      const id = t.id();
      t.create(id, b);
      t.ok(t.rt(['kill', id, 'KILL']), `kill ${id} KILL`);
      await t.waitStatus(id, 'stopped');
      t.expect(!fs.existsSync(t.rootfs(b, 'marker')), 'the user process ran although never started');
    },
  },
  {
    id: 'lifecycle.delete-stopped',
    must: 'delete of a stopped container removes it (state then fails)',
    ref: 'runtime.md#delete',
    async run(t) {
      const b = t.bundle({ args: ['true'] });
      const id = t.id();
      t.create(id, b);
      t.start(id);
      await t.waitStatus(id, 'stopped');
      t.ok(t.rt(['delete', id]), `delete ${id}`);
      t.expectNoContainer(id, 'after delete');
    },
  },
  {
    id: 'lifecycle.delete-stopped-releases-id',
    must: 'after delete the id can be used again',
    ref: 'runtime.md#delete (MAY)',
    runcBehaviour: true,
    async run(t) {
      const b = t.bundle({ args: ['true'] });
      const id = t.id();
      t.create(id, b);
      t.start(id);
      await t.waitStatus(id, 'stopped');
      t.ok(t.rt(['delete', id]), `delete ${id}`);
      t.create(id, t.bundle({ args: ['sleep', '30'] }));
      t.eq(t.state(id).status, 'created', 'status of the second container');
    },
  },
  {
    id: 'lifecycle.delete-removes-processes',
    must: 'delete of a killed container leaves no process of it behind',
    ref: 'runtime.md#delete, lifecycle step 12',
    async run(t) {
      // The pid namespace's other processes must go with the container (undo of create).
      const b = t.bundle({ args: ['sh', '-c', 'sleep 30 & echo $! > /child; exec sleep 30'] });
      const id = t.id();
      t.create(id, b);
      t.start(id);
      const pid = t.state(id).pid;
      await t.waitFor(() => fs.existsSync(t.rootfs(b, 'child')), 'the background child');
      t.ok(t.rt(['kill', id, 'KILL']), `kill ${id} KILL`);
      await t.waitStatus(id, 'stopped');
      t.ok(t.rt(['delete', id]), `delete ${id}`);
      t.expectNoContainer(id, 'after delete');
      // Any process whose root is this rootfs is a leftover of the container.
      const left = [];
      await t.waitFor(() => {
        left.length = 0;
        for (const p of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
          if (t.sameFile(`/proc/${p}/root/`, t.rootfs(b))) left.push(p);
        }
        return left.length === 0;
      }, `container processes to go (init was ${pid}; left: ${left.join(',')})`, 3000);
    },
  },
  {
    id: 'lifecycle.run-exit-status',
    must: '`run` exits with the exit status of the container process',
    ref: 'runc run',
    runcBehaviour: true,
    async run(t) {
      const id = t.id();
      const r = t.run(id, t.bundle({ args: ['sh', '-c', 'exit 42'] }));
      t.eq(r.code, 42, 'exit status of run');
      t.expectNoContainer(id, 'run deletes its container when the process exits');
    },
  },
];
