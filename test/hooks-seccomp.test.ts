/**
 * startContainer hooks run under the container's seccomp filter, as runc runs them (the filter is
 * loaded before the hooks; with noNewPrivileges right before them). A hook that makes a syscall
 * the profile denies fails, and so does `start`. Positive control: the same hook without the rule
 * does what it was asked, so the check sees it when the filter is missing.
 *
 * RUNTIME=/usr/sbin/runc runs it against runc.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Sandbox, selected } from './helpers/tsrun';

const DENY_MKDIR = {
  defaultAction: 'SCMP_ACT_ALLOW',
  architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
};

function hookCase(name: string, opts: { seccomp: boolean; noNewPrivileges: boolean }) {
  if (!selected(name)) return;
  test(name, () => {
    const s = new Sandbox(['true'], 'hooksc');
    try {
      // The hook runs in the container (its path and its mkdir are the container's).
      s.config.hooks = { startContainer: [{ path: '/bin/mkdir', args: ['mkdir', '/tmp/made-by-hook'] }] };
      s.config.process.noNewPrivileges = opts.noNewPrivileges;
      if (opts.seccomp) s.config.linux.seccomp = DENY_MKDIR;
      s.writeConfig();
      const made = path.join(s.bundle, 'rootfs/tmp/made-by-hook');
      const c = s.tsrun(['create', '-b', s.bundle, s.id]);
      assert.is(c.status, 0, c.stderr);
      const r = s.tsrun(['start', s.id]);
      if (opts.seccomp) {
        // runc's start only releases the init and returns 0; tsrun's reports the hook's failure.
        if (!process.env.RUNTIME) assert.is.not(r.status, 0, 'start fails: the hook ran under the filter');
        assert.not.ok(fs.existsSync(made), 'the denied mkdir did not happen');
      } else {
        assert.is(r.status, 0, r.stderr);
        assert.ok(fs.existsSync(made), 'control: without the rule the hook creates the directory');
      }
      const d = s.tsrun(['delete', '-f', s.id]);
      assert.is(d.status, 0, d.stderr);
      assert.equal(s.leftovers(), []);
    } finally {
      s.cleanup();
    }
  });
}

hookCase('startContainer hook under a seccomp profile denying mkdir fails (noNewPrivileges)', { seccomp: true, noNewPrivileges: true });
hookCase('startContainer hook under a seccomp profile denying mkdir fails (without noNewPrivileges)', { seccomp: true, noNewPrivileges: false });
hookCase('control: the same startContainer hook without the rule creates its directory', { seccomp: false, noNewPrivileges: true });

test.run();
