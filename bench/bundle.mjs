// The benches' bundle: a busybox rootfs with the given applets and runc's example config.json
// (from `runc spec`), returned parsed for the caller to adjust and write.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export function makeBundle(bundle, runc, applets) {
  const rootfs = path.join(bundle, 'rootfs');
  fs.mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
  for (const d of ['proc', 'dev', 'sys', 'tmp']) fs.mkdirSync(path.join(rootfs, d));
  fs.copyFileSync('/bin/busybox', path.join(rootfs, 'bin/busybox'));
  fs.chmodSync(path.join(rootfs, 'bin/busybox'), 0o755);
  for (const a of applets) fs.symlinkSync('busybox', path.join(rootfs, 'bin', a));
  execFileSync(runc, ['spec'], { cwd: bundle });
  return JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
}
