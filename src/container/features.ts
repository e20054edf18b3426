/**
 * The runtime-spec features document (features.md). It must describe what tsrun really does:
 * every entry here is backed by code and a test; nothing is listed ahead of its implementation.
 */
import * as fs from 'node:fs';
import { ACTIONS, ARCHITECTURES, FILTER_FLAGS, OPERATORS } from '../seccomp/compile';
import { CAPABILITY_NAMES } from '../bundle/capabilities';
import { knownMountOptions } from '../bundle/mount-options';

/** Exactly the words the mount option parser recognises (one table: src/bundle/mount-options.ts). */
export const MOUNT_OPTIONS = knownMountOptions();

function lsmEnabled(name: string): boolean {
  try {
    return fs.readFileSync('/sys/kernel/security/lsm', 'utf8').split(',').includes(name);
  } catch {
    return false;
  }
}

export function featuresDocument(): Record<string, unknown> {
  let capLast = CAPABILITY_NAMES.length - 1;
  try {
    capLast = Math.min(capLast, Number(fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8')));
  } catch {}
  return {
    ociVersionMin: '1.0.0',
    ociVersionMax: '1.2.0',
    hooks: ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'],
    mountOptions: MOUNT_OPTIONS,
    linux: {
      namespaces: ['cgroup', 'ipc', 'mount', 'network', 'pid', 'time', 'user', 'uts'],
      capabilities: CAPABILITY_NAMES.slice(0, capLast + 1),
      cgroup: { v1: true, v2: true, systemd: true, systemdUser: true, rdma: true },
      seccomp: {
        enabled: true,
        actions: [...ACTIONS].sort(),
        operators: [...OPERATORS].sort(),
        archs: [...ARCHITECTURES],
        knownFlags: Object.keys(FILTER_FLAGS),
        supportedFlags: Object.keys(FILTER_FLAGS),
      },
      apparmor: { enabled: lsmEnabled('apparmor') },
      selinux: { enabled: lsmEnabled('selinux') },
      intelRdt: { enabled: false },
      mountExtensions: { idmap: { enabled: true } },
    },
    annotations: { 'org.opencontainers.runc.checkpoint.enabled': 'false', 'io.github.tsrun.version': '0.1.0' },
  };
}
