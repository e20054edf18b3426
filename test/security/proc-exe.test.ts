/**
 * CVE-2019-5736: a container process opens /proc/<pid>/exe of a runtime process that entered the
 * container (directly for writing, or O_PATH first and re-opened through /proc/self/fd once the
 * process has exited, as the published exploit does) and overwrites the runtime's binary on the
 * host. tsrun's defence (PROTOCOL.md "Start"): tsrun-init runs from a sealed memfd and is not
 * dumpable, and Node never enters a container, so no host file is ever a container process's exe.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  changedFilesRepairing, DOCKER_CAPS, EXE_PROBE, fingerprintFiles, installProbe, processFile, readOut, runtimeFiles, sha256,
  setCaps, tsrunDetached, waitStatus, withSandbox, type Sandbox,
} from './helpers';

const PROBE_SECONDS = 10;

/**
 * A container whose init is the probe, with Docker's default capabilities (root with
 * CAP_DAC_OVERRIDE: it may write any file it can open) and a read-only rootfs, so that a
 * successful write can only be to something that is not the container's own file.
 */
function attackBundle(s: Sandbox): void {
  installProbe(s, 'exeprobe', EXE_PROBE);
  // The exploit's trigger: the image's "shell" is a script whose interpreter is /proc/self/exe,
  // so `exec <id> /bin/evilsh` makes the entering runtime process execute itself again in there.
  fs.writeFileSync(path.join(s.bundle, 'rootfs/bin/evilsh'), '#!/proc/self/exe\n', { mode: 0o755 });
  s.config.process.args = ['/exeprobe', String(PROBE_SECONDS)];
  setCaps(s.config.process, DOCKER_CAPS);
  s.config.root.readonly = true;
  s.writeConfig();
}

/** Runs `tsrun exec` (process file: the same path as `exec <id> <cmd>`) until the probe stops. */
async function execWhileProbing(s: Sandbox, programs: string[][], max: number): Promise<{ ok: number; total: number }> {
  const files = programs.map((args) => processFile(s, args));
  let ok = 0;
  let total = 0;
  while (total < max) {
    const st = s.tsrun(['state', s.id]);
    if (st.status !== 0 || JSON.parse(st.stdout).status !== 'running') break;
    const r = s.tsrun(['exec', '-p', files[total % files.length], s.id], { timeout: 10_000 });
    total++;
    if (r.status === 0) ok++;
  }
  return { ok, total };
}

withSandbox(test, 'CVE-2019-5736: exec into a container whose process writes every /proc/<pid>/exe leaves the runtime files intact', ['true'], async (s) => {
  attackBundle(s);
  const before = fingerprintFiles(runtimeFiles());
  const r = tsrunDetached(s, ['run', '-d', '-b', s.bundle, s.id]);
  assert.is(r.status, 0, `run -d: ${r.stderr}`);
  await waitStatus(s, 'running');
  const { ok, total } = await execWhileProbing(s, [['/bin/evilsh'], ['true'], ['sh', '-c', 'sleep 0.05']], 150);
  await waitStatus(s, 'stopped', s.id, (PROBE_SECONDS + 10) * 1000);
  const out = readOut(r.out);
  const changed = changedFilesRepairing(before);
  console.log(`    ${ok}/${total} execs succeeded; probe: ${out.trim().split('\n').filter((l) => l.startsWith('done') || l.startsWith('OPENED')).join('; ')}`);
  assert.equal(changed, [], 'host runtime files overwritten from inside the container');
  assert.not.match(out, /^BREACH/m, 'the probe wrote to a process\'s exe');
  // The attack really ran: the probe finished its loop and held exe handles of exec'd processes,
  // and the `true`/`sleep` execs (every second and third one) succeeded.
  assert.match(out, /^done scans=\d+ exe-handles=[1-9]/m, `probe output:\n${out}`);
  // (A loaded 2-core machine manages ~30 execs in the probe's 10 s; 15 is still "many".)
  assert.ok(ok >= total / 2 && total >= 15, `only ${ok}/${total} execs succeeded`);
  assert.is(s.tsrun(['delete', s.id]).status, 0);
  assert.equal(s.leftovers(), []);
});

withSandbox(test, 'CVE-2019-5736 control: the same probe overwrites a host binary that an exec\'d process ran from a writable bind mount', ['true'], async (s) => {
  attackBundle(s);
  // The hole, opened on purpose: a host directory with a copy of busybox, bind-mounted writable;
  // the host execs that binary into the container, as a runtime running from such a path would be.
  const decoyDir = path.join(s.dir, 'decoy');
  fs.mkdirSync(decoyDir);
  const decoy = path.join(decoyDir, 'busybox');
  fs.copyFileSync('/bin/busybox', decoy);
  fs.chmodSync(decoy, 0o755);
  // Rootless (TSRUN_TEST_ROOTLESS=1): the hole is a binary the user may write (no-op as root).
  s.chownToUser(decoyDir);
  const sum = sha256(decoy);
  s.config.mounts.push({ destination: '/decoy', type: 'bind', source: decoyDir, options: ['rbind', 'rw'] });
  s.writeConfig();
  const r = tsrunDetached(s, ['run', '-d', '-b', s.bundle, s.id]);
  assert.is(r.status, 0, `run -d: ${r.stderr}`);
  await waitStatus(s, 'running');
  const { ok } = await execWhileProbing(s, [['/decoy/busybox', 'sleep', '0.2']], 12);
  await waitStatus(s, 'stopped', s.id, (PROBE_SECONDS + 10) * 1000);
  const out = readOut(r.out);
  assert.ok(ok > 0, 'the decoy ran');
  assert.match(out, /^BREACH reopen \d+ \/decoy\/busybox/m, `probe output:\n${out}`);
  assert.is.not(sha256(decoy), sum, 'the host copy was written through /proc/<pid>/exe');
  assert.is(s.tsrun(['delete', s.id]).status, 0);
  assert.equal(s.leftovers(), []);
});

test.run();
