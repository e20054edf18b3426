/** The SELinux checks runc makes before anything runs (create, exec). */
import * as fs from 'node:fs';
import { RuntimeError } from './errors';

/** runc's check: a process label on a host without SELinux is an error, before anything runs. */
export function checkSelinuxLabel(label: string | undefined): void {
  if (!label) return;
  let enabled = false;
  try {
    enabled = fs.readFileSync('/sys/fs/selinux/enforce', 'utf8') !== undefined;
  } catch {}
  if (!enabled) throw new RuntimeError('selinux label is specified in config, but selinux is disabled or not supported');
}
