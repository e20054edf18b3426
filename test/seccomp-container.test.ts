/**
 * seccomp through the whole pipeline (config.json → libseccomp in the parent → BPF in the plan →
 * loaded by tsrun-init): a denied syscall, and SCMP_ACT_NOTIFY with a listener agent receiving
 * the notify fd and runc's ContainerProcessState JSON.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sandboxTest, Sandbox, waitFor } from './helpers/tsrun';

sandboxTest('a denied syscall fails with the configured errno; NoNewPrivs and Seccomp are set', ['sh', '-c', 'mkdir /tmp/x 2>&1; grep -E "^(NoNewPrivs|Seccomp):" /proc/self/status'], (s) => {
  s.config.linux.seccomp = {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
  };
  s.writeConfig();
  const r = s.tsrun(['run', '-b', s.bundle, s.id]);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /Operation not permitted/);
  assert.match(r.stdout, /NoNewPrivs:\s+1/);
  assert.match(r.stdout, /Seccomp:\s+2/);
  assert.not.ok(fs.existsSync(path.join(s.bundle, 'rootfs/tmp/x')));
  assert.equal(s.leftovers(), []);
});

sandboxTest('SCMP_ACT_NOTIFY: the agent receives the listener fd and the container process state', ['sh', '-c', 'sleep 1; mkdir /tmp/notified 2>/dev/null; echo rc=$?'], async (s) => {
  const sock = path.join(s.dir, 'agent.sock');
  const report = path.join(s.dir, 'agent.json');
  // The agent (python3 has recv_fds): take one message, record it and the number of fds, then
  // close the listener without answering — the notified syscall then fails (ENOSYS).
  const agent = spawn('python3', ['-c', `
import socket, sys, json, os
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(sys.argv[1]); srv.listen(1)
print("listening", flush=True)
conn, _ = srv.accept()
msg, fds, flags, addr = socket.recv_fds(conn, 65536, 4)
for fd in fds: os.close(fd)
open(sys.argv[2], "w").write(json.dumps({"fds": len(fds), "state": json.loads(msg.decode())}))
`, sock, report], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve) => agent.stdout!.once('data', () => resolve()));
    s.config.linux.seccomp = {
      defaultAction: 'SCMP_ACT_ALLOW',
      listenerPath: sock,
      listenerMetadata: 'tsrun-test-metadata',
      syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_NOTIFY' }],
    };
    s.writeConfig();
    const r = s.tsrun(['run', '-b', s.bundle, s.id]);
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stdout, /rc=1/);
    await waitFor(() => fs.existsSync(report), 5000, 'the agent report');
    const got = JSON.parse(fs.readFileSync(report, 'utf8'));
    assert.is(got.fds, 1);
    assert.equal(got.state.fds, ['seccompFd']);
    assert.is(got.state.metadata, 'tsrun-test-metadata');
    assert.ok(got.state.pid > 0);
    assert.is(got.state.state.id, s.id);
    assert.ok(got.state.ociVersion);
    assert.not.ok(fs.existsSync(path.join(s.bundle, 'rootfs/tmp/notified')));
    assert.equal(s.leftovers(), []);
  } finally {
    agent.kill('SIGKILL');
  }
});

sandboxTest('SCMP_ACT_NOTIFY without a listening agent fails create clearly, nothing left', ['true'], (s) => {
  const sock = path.join(s.dir, 'nobody.sock');
  s.config.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: sock, syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] };
  s.writeConfig();
  const r = s.tsrun(['create', '-b', s.bundle, s.id]);
  assert.is(r.status, 1);
  assert.match(r.stderr, sock);
  assert.equal(s.leftovers(), []);
});

/** A static setuid-root program printing its effective uid, installed in the rootfs. */
function installEuidProbe(s: Sandbox): void {
  const src = path.join(s.dir, 'euid.c');
  fs.writeFileSync(src, '#include <stdio.h>\n#include <unistd.h>\nint main(void) { printf("euid=%d\\n", (int)geteuid()); return 0; }\n');
  const bin = path.join(s.bundle, 'rootfs/bin/euid');
  execFileSync('cc', ['-static', '-O2', '-o', bin, src]);
  fs.chownSync(bin, 0, 0);
  fs.chmodSync(bin, 0o4755);
}

for (const nnp of [true, false]) {
  sandboxTest(`a setuid binary ${nnp ? 'cannot raise privileges with' : 'raises privileges without (control)'} noNewPrivileges`, ['/bin/euid'], (s) => {
    installEuidProbe(s);
    s.config.process.user = { uid: 1000, gid: 1000 };
    s.config.process.noNewPrivileges = nnp;
    s.writeConfig();
    const r = s.tsrun(['run', '-b', s.bundle, s.id]);
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout.trim(), nnp ? 'euid=1000' : 'euid=0');
    assert.equal(s.leftovers(), []);
  });
}

test.run();
