/**
 * Test fixture: a busybox root filesystem (Debian's busybox-static), built once per machine under
 * test/.fixtures/rootfs and copied (hard links are not safe: tests write into it) into each bundle.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const FIXTURES = path.resolve(__dirname, '..', '.fixtures');
const TEMPLATE = path.join(FIXTURES, 'rootfs');
const BUSYBOX = '/bin/busybox';

/** Builds the template rootfs if missing; returns its path. */
export function busyboxRootfs(): string {
  if (fs.existsSync(path.join(TEMPLATE, '.complete'))) return TEMPLATE;
  if (!fs.existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} missing: apt-get install busybox-static`);
  const tmp = `${TEMPLATE}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root', 'home', 'var', 'run']) {
    fs.mkdirSync(path.join(tmp, d), { recursive: true });
  }
  fs.chmodSync(path.join(tmp, 'tmp'), 0o1777);
  fs.copyFileSync(BUSYBOX, path.join(tmp, 'bin/busybox'));
  fs.chmodSync(path.join(tmp, 'bin/busybox'), 0o755);
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const a of applets) {
    if (a === 'busybox') continue;
    const link = path.join(tmp, 'bin', a);
    if (!fs.existsSync(link)) fs.symlinkSync('busybox', link);
  }
  fs.writeFileSync(path.join(tmp, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  fs.writeFileSync(path.join(tmp, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  fs.writeFileSync(path.join(tmp, '.complete'), '');
  fs.rmSync(TEMPLATE, { recursive: true, force: true });
  fs.renameSync(tmp, TEMPLATE);
  return TEMPLATE;
}

/** Copies the template into `dest` (cp -a keeps the symlinks). */
export function copyRootfs(dest: string): void {
  const src = busyboxRootfs();
  execFileSync('cp', ['-a', src, dest]);
  fs.rmSync(path.join(dest, '.complete'), { force: true });
}
