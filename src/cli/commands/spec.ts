import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CommandModule } from 'yargs';
import { RuntimeError } from '../../container/errors';
import { createFileExclusive } from '../../container/files';
import { action, type GlobalArgs } from '../context';

interface SpecArgs extends GlobalArgs {
  bundle: string;
  rootless: string | undefined;
}

const CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

/** runc's example configuration (the same process, mounts, masked and readonly paths). */
export function exampleSpec(rootless: boolean, ids: { uid: number; gid: number } = { uid: process.geteuid?.() ?? 0, gid: process.getegid?.() ?? 0 }): Record<string, unknown> {
  const spec: Record<string, any> = {
    ociVersion: '1.2.0',
    process: {
      terminal: true,
      user: { uid: 0, gid: 0 },
      args: ['sh'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
      cwd: '/',
      capabilities: { bounding: CAPS, effective: CAPS, permitted: CAPS, ambient: CAPS },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'tsrun',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: [
        '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
        '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
  if (rootless) {
    // As runc's --rootless: a user namespace mapping the caller, no network namespace, /sys bound
    // from the host (sysfs cannot be mounted without a network namespace owned by the user),
    // no cgroup resources.
    // runc's ToRootless: the effective ids (who will run it).
    const { uid, gid } = ids;
    spec.linux.namespaces = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'user' }];
    spec.linux.uidMappings = [{ containerID: 0, hostID: uid, size: 1 }];
    spec.linux.gidMappings = [{ containerID: 0, hostID: gid, size: 1 }];
    delete spec.linux.resources;
    // runc 1.1's ToRootless: /sys replaced in place by the bind, every other mount kept (the
    // cgroup mount too: it binds the container's view), uid=/gid= options dropped.
    spec.mounts = spec.mounts.map((m: { destination: string; options?: string[] }) =>
      m.destination === '/sys'
        ? { destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] }
        : m.options
          ? { ...m, options: m.options.filter((o: string) => !o.startsWith('gid=') && !o.startsWith('uid=')) }
          : m,
    );
  }
  return spec;
}

const command: CommandModule<any, any> = {
  command: 'spec',
  describe: 'write an example config.json (runc\'s) into the bundle directory',
  builder: (y) =>
    y
      .option('bundle', { alias: 'b', type: 'string', default: '.', describe: 'directory to write config.json into' }),
  handler: action<SpecArgs>((argv) => {
    const file = path.join(argv.bundle, 'config.json');
    if (fs.existsSync(file)) throw new RuntimeError('File config.json exists. Remove it first.');
    const rootless = argv.rootless !== undefined && argv.rootless !== 'false';
    // O_EXCL|O_NOFOLLOW: a (dangling) symlink planted as config.json is not written through.
    try {
      createFileExclusive(file, JSON.stringify(exampleSpec(rootless), null, '\t'), 0o666);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new RuntimeError('File config.json exists. Remove it first.');
      throw e;
    }
  }),
};
export default command;
