/**
 * /proc and /sys are where the runtime writes security settings (sysctls, masks, LSM labels in
 * /proc/self/attr). A symlinked /proc or /sys (CVE-2019-19921, CVE-2023-27561) or a mount placed
 * over a /proc file (CVE-2019-16884: a bind over /proc/self/attr/exec makes an AppArmor profile a
 * no-op) makes those writes land somewhere the container chose. runc 1.1.5 (/usr/sbin/runc on
 * this machine) refuses them; the outcomes asserted here are what it does with the same bundles:
 *
 *   /proc or /sys a symlink            "filesystem "proc" must be mounted on ordinary directory"
 *   bind onto /proc/self/attr/exec,
 *   /proc/sys/kernel, /proc/sysrq-trigger,
 *   or via a rootfs symlink into /proc  "... cannot be mounted because it is inside /proc"
 *   bind onto /proc itself             "... cannot be mounted because it is not of type proc"
 *   bind onto /proc/uptime (lxcfs list) allowed
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { treePrint, withSandbox, type Sandbox } from './helpers';

/** Probe: which of the interesting /proc paths are mount points in the container, and what they read. */
const PROBE = ['sh', '-c', 'for p in /proc /proc/1/attr/exec /proc/1/attr/current /proc/sys/kernel /proc/sysrq-trigger /proc/uptime; do grep -q " $p " /proc/self/mountinfo && echo "MOUNTED $p"; done; head -c 40 /proc/uptime; echo; echo probe-done'];

function hostFile(s: Sandbox): string {
  const f = path.join(s.dir, 'hostfile');
  fs.writeFileSync(f, 'HOST-FILE-CONTENT\n');
  return f;
}

function expectRefused(s: Sandbox, why: RegExp): void {
  const r = s.tsrun(['run', '-b', s.bundle, s.id]);
  assert.not.match(r.stdout, /MOUNTED \/proc\/(1|sys|sysrq)/, `the mount was made:\n${r.stdout}`);
  assert.is(r.status, 1, `must be refused (stdout: ${r.stdout})`);
  assert.match(r.stderr, why);
  assert.equal(s.leftovers(), []);
}

for (const dir of ['proc', 'sys'] as const) {
  withSandbox(test, `/${dir} as a symlink in the rootfs is refused (CVE-2019-19921 / CVE-2023-27561)`, PROBE, (s) => {
    const rootfs = path.join(s.bundle, 'rootfs');
    // The attacker's directory that a followed symlink would turn into "/proc" / "/sys".
    fs.mkdirSync(path.join(rootfs, `fake${dir}`));
    fs.rmdirSync(path.join(rootfs, dir));
    fs.symlinkSync(`/fake${dir}`, path.join(rootfs, dir));
    const tree = treePrint(path.join(rootfs, `fake${dir}`));
    expectRefused(s, new RegExp(`/${dir}.*(symlink|ordinary directory)|(symlink|ordinary directory).*/${dir}`));
    assert.equal(treePrint(path.join(rootfs, `fake${dir}`)), tree, 'nothing was mounted or created in the symlink\'s target');
  });
}

withSandbox(test, 'control: the same bundle with a real /proc runs and the probe sees no mount over /proc files', PROBE, (s) => {
  const r = s.tsrun(['run', '-b', s.bundle, s.id]);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /^MOUNTED \/proc$/m);
  assert.not.match(r.stdout, /MOUNTED \/proc\//);
});

for (const [what, dest, src] of [
  ['a bind onto /proc/self/attr/exec (CVE-2019-16884)', '/proc/self/attr/exec', 'file'],
  ['a bind onto /proc/1/attr/current', '/proc/1/attr/current', 'file'],
  ['a bind onto /proc/sys/kernel', '/proc/sys/kernel', 'dir'],
  ['a bind onto /proc/sysrq-trigger', '/proc/sysrq-trigger', 'file'],
  ['a bind onto /evil/exec, /evil a rootfs symlink to /proc/self/attr', '/evil/exec', 'file'],
] as const) {
  withSandbox(test, `${what} is refused as inside /proc`, PROBE, (s) => {
    const f = hostFile(s);
    fs.symlinkSync('/proc/self/attr', path.join(s.bundle, 'rootfs/evil'));
    s.config.mounts.push({ destination: dest, type: 'bind', source: src === 'file' ? f : s.dir, options: ['bind'] });
    s.writeConfig();
    expectRefused(s, /inside \/proc/);
  });
}

withSandbox(test, 'a bind onto /proc itself is refused as not of type proc', PROBE, (s) => {
  s.config.mounts.push({ destination: '/proc', type: 'bind', source: s.dir, options: ['rbind'] });
  s.writeConfig();
  expectRefused(s, /not of type proc/);
});

withSandbox(test, 'control: a bind onto /proc/uptime (runc\'s lxcfs list) is allowed and the probe sees it', PROBE, (s) => {
  s.config.mounts.push({ destination: '/proc/uptime', type: 'bind', source: hostFile(s), options: ['bind', 'ro'] });
  s.writeConfig();
  const r = s.tsrun(['run', '-b', s.bundle, s.id]);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /^MOUNTED \/proc\/uptime$/m);
  assert.match(r.stdout, /HOST-FILE-CONTENT/);
  assert.equal(s.leftovers(), []);
});

test.run();
