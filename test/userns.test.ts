/**
 * A container in its own user namespace (root inside mapped to 100000.. outside), driven through
 * the create/start path every client uses: create, start, exec, pause, resume, kill, delete.
 * The init opens no host path once it is in the user namespace (stage 0 opens the exec fifo and
 * the start reply fifo before it clones), so a 0700 state dir does not stand in the way.
 * Runs against runc too (RUNTIME=/usr/sbin/runc).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Sandbox, waitFor } from './helpers/tsrun';

test('user namespace: create/start/exec/pause/resume/kill/delete, uid 0 inside is 100000 outside', async () => {
  const s = new Sandbox(['sh', '-c', 'echo started > /tmp/started; exec sleep 300'], 'userns');
  try {
    // The rootfs must be reachable by the mapped root: the sandbox dir is 0700 by mkdtemp.
    fs.chmodSync(s.dir, 0o755);
    s.config.linux.namespaces.push({ type: 'user' });
    s.config.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    s.config.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    // sysfs cannot be mounted by a user namespace without its own network namespace's owner.
    s.config.mounts = s.config.mounts.filter((m: { destination: string }) => !m.destination.startsWith('/sys'));
    s.writeConfig();
    const c = s.tsrun(['create', '-b', s.bundle, s.id]);
    assert.is(c.status, 0, c.stderr);
    assert.is(s.state().status, 'created');
    const st = s.tsrun(['start', s.id]);
    assert.is(st.status, 0, st.stderr);
    const started = path.join(s.bundle, 'rootfs/tmp/started');
    await waitFor(() => fs.existsSync(started), 10_000, 'the container process to run');
    // Files the container's root creates belong to the mapped host uid.
    assert.is(fs.statSync(started).uid, 100000);
    const pid = s.state().pid;
    assert.match(fs.readFileSync(`/proc/${pid}/uid_map`, 'utf8'), /^\s*0\s+100000\s+65536\s*$/);
    const e = s.tsrun(['exec', s.id, 'sh', '-c', 'id -u; cat /proc/self/uid_map']);
    assert.is(e.status, 0, e.stderr);
    assert.match(e.stdout, /^0\n\s*0\s+100000\s+65536/);
    // The IPC namespace is the container root's (created inside the user namespace, as runc):
    // its mqueue filesystem is root's inside, so root can chmod it (podman does).
    const mq = s.tsrun(['exec', s.id, 'sh', '-c', 'stat -c "%u:%g" /dev/mqueue; chmod 1777 /dev/mqueue && echo chmod-ok']);
    assert.is(mq.status, 0, mq.stderr);
    assert.match(mq.stdout, /^0:\d+\nchmod-ok\n$/);
    assert.is(s.tsrun(['pause', s.id]).status, 0);
    assert.is(s.state().status, 'paused');
    assert.is(s.tsrun(['resume', s.id]).status, 0);
    assert.is(s.state().status, 'running');
    assert.is(s.tsrun(['kill', s.id, 'KILL']).status, 0);
    await waitFor(() => s.state().status === 'stopped', 10_000, 'the container to stop');
    const d = s.tsrun(['delete', s.id]);
    assert.is(d.status, 0, d.stderr);
    assert.equal(s.leftovers(), []);
  } finally {
    s.cleanup();
  }
});

// A bind source below a directory only the host's root may enter (mode 000): stage 0 opens it
// with the host's credentials before the mapped root could be refused, as runc does. Control: the
// mapped root itself cannot enter that directory (the container lists it as "Permission denied").
test('user namespace: a bind source under a mode 000 directory is mounted (opened on the host side)', async () => {
  const s = new Sandbox(['sh', '-c', 'cat /data/secret-ok; ls /hostside/locked 2>&1; echo end'], 'usernsbind');
  try {
    fs.chmodSync(s.dir, 0o755);
    const locked = path.join(s.dir, 'hostside', 'locked');
    fs.mkdirSync(path.join(locked, 'data'), { recursive: true });
    fs.writeFileSync(path.join(locked, 'data', 'secret-ok'), 'bound\n');
    fs.chmodSync(locked, 0o000);
    // Mount points exist: the mapped root may not create them in a rootfs owned by the host's root.
    for (const d of ['data', 'hostside']) fs.mkdirSync(path.join(s.bundle, 'rootfs', d));
    s.config.linux.namespaces.push({ type: 'user' });
    s.config.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    s.config.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    s.config.mounts = s.config.mounts.filter((m: { destination: string }) => !m.destination.startsWith('/sys'));
    s.config.mounts.push(
      { destination: '/data', type: 'bind', source: path.join(locked, 'data'), options: ['rbind', 'ro'] },
      { destination: '/hostside', type: 'bind', source: path.join(s.dir, 'hostside'), options: ['rbind', 'ro'] },
    );
    s.writeConfig();
    const r = s.tsrun(['run', '-b', s.bundle, s.id]);
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stdout, /^bound\n/);
    assert.match(r.stdout, /Permission denied/, 'control: the mapped root cannot reach the source by its path');
    assert.equal(s.leftovers(), []);
  } finally {
    s.cleanup();
  }
});

test.run();
