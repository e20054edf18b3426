/**
 * containerd-shim-tsrun-v2: containerd's runtime v2 shim protocol.
 *
 *   <shim> -namespace NS -address ADDR -publish-binary BIN -id ID [-debug] start
 *       prints the ttrpc address of the shim that serves ID's group: one that already answers,
 *       or a new group socket of the running daemon, or a new daemon
 *   <shim> ... -id ID -bundle DIR delete
 *       cleans up after a dead shim: kills and removes what is left, prints a DeleteResponse
 *   <shim> ... -id ID            (no action: the daemon `start` spawns; it binds the group's
 *                                 socket ($TSRUN_SHIM_SOCKET) and writes one byte to fd 3 once it listens)
 *
 * This file is what every invocation loads: only Node built-ins and the control client. The
 * daemon and the container library are imported when they are needed (src/shim/daemon.ts).
 * stdout is containerd's: `start` prints the address and nothing else (containerd reads stdout and
 * stderr together), so warnings of the engine are silenced before anything can emit one.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { DEFAULT_ROOT, SHIM_STATE_FILE, SOCKET_DIR, callControl, controlSocketPath } from './control';

// Nothing of Node's may reach containerd's stdout/stderr.
process.removeAllListeners('warning');
process.on('warning', () => {});

declare const __TSRUN_VERSION__: string;
const VERSION = typeof __TSRUN_VERSION__ === 'string' ? __TSRUN_VERSION__ : 'dev';

/** The daemon's readiness pipe: one byte once the first group's socket listens, then closed. */
const READY_FD = 3;
/** How long `start` waits for a new daemon to listen. */
const READY_TIMEOUT_MS = 30_000;
/** How long an idle daemon waits for the next container before it exits (TSRUN_SHIM_LINGER_MS). */
const DEFAULT_LINGER_MS = 3000;

interface Flags {
  namespace: string;
  address: string;
  publishBinary: string;
  id: string;
  bundle: string;
  debug: boolean;
  action: string;
}

/** Go's flag syntax: -name value, -name=value, --name; booleans take no value. */
export function parseFlags(argv: string[]): Flags {
  const f: Flags = { namespace: process.env.NAMESPACE ?? '', address: '', publishBinary: '', id: '', bundle: '', debug: false, action: '' };
  const names: Record<string, keyof Flags> = { namespace: 'namespace', address: 'address', 'publish-binary': 'publishBinary', id: 'id', bundle: 'bundle', debug: 'debug' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('-')) {
      f.action = a;
      continue;
    }
    const [name, inline] = a.replace(/^--?/, '').split(/=(.*)/s, 2);
    if (name === 'v' || name === 'version') {
      f.action = 'version';
      continue;
    }
    const key = names[name];
    if (!key) throw new Error(`flag provided but not defined: -${name}`);
    if (key === 'debug') {
      f.debug = inline === undefined ? true : inline === 'true';
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`flag needs an argument: -${name}`);
    (f as unknown as Record<string, string>)[key] = value;
  }
  return f;
}

/** runc-v2's grouping: one shim per group annotation, per pod under Kubernetes, else per container. */
function groupOf(bundle: string, id: string): string {
  try {
    const config = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
    const a = config.annotations ?? {};
    return a['io.containerd.runc.v2.group'] || a['io.kubernetes.cri.sandbox-id'] || id;
  } catch {
    return id;
  }
}

/** containerd's shim.SocketAddress: unix:///run/containerd/s/<sha256(address/namespace/group)>. */
export function socketAddress(address: string, namespace: string, group: string): string {
  const sum = createHash('sha256').update(path.join(address, namespace, group)).digest('hex');
  return `unix://${path.join(SOCKET_DIR, sum)}`;
}

function canConnect(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(socketPath);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text, { mode: 0o644, flag: 'wx' });
  fs.renameSync(tmp, file);
}

async function printAndExit(text: string | Uint8Array): Promise<never> {
  await new Promise<void>((resolve) => process.stdout.write(text, () => resolve()));
  process.exit(0);
}

async function start(f: Flags): Promise<void> {
  const bundle = f.bundle || process.cwd();
  const address = socketAddress(f.address, f.namespace, groupOf(bundle, f.id));
  const socketPath = address.slice('unix://'.length);
  fs.mkdirSync(SOCKET_DIR, { recursive: true, mode: 0o711 });
  // The group's shim is up: it serves this container too.
  if (!(await canConnect(socketPath))) {
    // The daemon of this containerd takes the group on (a new socket of its own)...
    const r = await callControl(controlSocketPath(f.address), { op: 'serve', namespace: f.namespace, socket: socketPath, bundle, id: f.id, debug: f.debug, ttrpcAddress: process.env.TTRPC_ADDRESS ?? '' });
    if (!r || r.error) await spawnDaemon(f, bundle, socketPath);
  }
  writeAtomically(path.join(bundle, 'address'), address);
  await printAndExit(address);
}

/**
 * ...or a new daemon, which binds the group's socket itself and says so on a pipe: `start`
 * prints only once the daemon serves the socket, as containerd requires, and a daemon that exits
 * or stalls before that fails the start (a stalled one is killed) instead of leaving containerd an
 * address nobody will answer. (An earlier port to Bun, which inherited the listening fd from
 * `start`, saw Bun's net.Server.listen({ fd }) fail with EINVAL, oven-sh/bun#22559; a plain
 * listen({ fd: 3 }) on Bun 1.4.5 works here, so that alone no longer decides it.)
 */
async function spawnDaemon(f: Flags, bundle: string, socketPath: string): Promise<void> {
  const args = process.argv.slice(2).filter((a) => a !== 'start');
  const daemon = spawn(process.execPath, [...daemonEntry(), ...args], {
    cwd: bundle,
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
    env: { ...process.env, TSRUN_SHIM_SOCKET: socketPath },
  });
  const ready = daemon.stdio[READY_FD] as net.Socket;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`shim daemon: not listening on ${socketPath} after ${READY_TIMEOUT_MS / 1000} s`)), READY_TIMEOUT_MS);
      const fail = () => reject(new Error(`shim daemon exited before it listened on ${socketPath} (its log: the bundle's log fifo)`));
      ready.once('data', () => {
        clearTimeout(timer);
        resolve();
      });
      ready.once('end', fail);
      ready.once('error', fail);
      daemon.once('error', (e) => reject(new Error(`shim daemon: ${e.message}`)));
    });
  } catch (e) {
    // A stalled daemon must not come up later serving a group nobody was told of.
    daemon.kill('SIGKILL');
    throw e;
  } finally {
    ready.destroy();
  }
  daemon.unref();
  fs.writeFileSync(path.join(bundle, 'shim.pid'), String(daemon.pid));
}

/**
 * What runs this file again: the engine's arguments and the script (`node|bun file.js`), or
 * nothing when the script is compiled into the executable (a Bun executable's argv[1] is a path
 * of its embedded file system, /$bunfs/...).
 */
function daemonEntry(): string[] {
  const script = process.argv[1] ?? '';
  if (script.startsWith('/$bunfs/')) return [];
  return [...process.execArgv, script];
}

/** No runtime state for the container and nothing mounted on the bundle's rootfs. */
function nothingLeft(bundle: string, namespace: string, id: string): boolean {
  let root: string;
  try {
    root = (JSON.parse(fs.readFileSync(path.join(bundle, SHIM_STATE_FILE), 'utf8')) as { root: string }).root;
  } catch {
    root = path.join(DEFAULT_ROOT, namespace);
  }
  if (fs.existsSync(path.join(root, id))) return false;
  try {
    // A mount point is on another device than its parent (a bind of the same filesystem is not:
    // that case, and any doubt, takes the full path).
    const rootfs = fs.statSync(path.join(bundle, 'rootfs'));
    const parent = fs.statSync(bundle);
    if (rootfs.dev !== parent.dev) return false;
    return !fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${path.join(bundle, 'rootfs')} `);
  } catch {
    return true;
  }
}

async function deleteAction(f: Flags): Promise<void> {
  const bundle = f.bundle || process.cwd();
  const ctl = controlSocketPath(f.address);
  const r = await callControl(ctl, { op: 'cleanup', namespace: f.namespace, id: f.id, bundle });
  if (r?.deleteResponse) await printAndExit(Buffer.from(r.deleteResponse, 'base64'));
  // A daemon that was killed left its control socket: nobody listens on it any more.
  if (fs.existsSync(ctl) && !(await canConnect(ctl))) fs.rmSync(ctl, { force: true });
  // No daemon: after a clean Delete (the usual case: the daemon went with its last container)
  // nothing is left, which three stats tell without loading the container library.
  if (nothingLeft(bundle, f.namespace, f.id)) {
    const m = await import('./messages');
    await printAndExit(m.encode(m.T.DeleteResponse, { pid: 0, exitStatus: 128 + 9, exitedAt: m.timestamp(new Date()) }));
  }
  // It died with the container, or never started: clean up here.
  const d = await import('./daemon');
  await printAndExit(await d.cleanupContainer(f.namespace, f.id, bundle, d.stderrLogger(f.debug)));
}

async function main(): Promise<void> {
  let f: Flags;
  try {
    f = parseFlags(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(2);
  }
  switch (f.action) {
    case 'version':
      process.stdout.write(`containerd-shim-tsrun-v2:\n  Version: ${VERSION}\n`);
      return;
    case 'start':
      return start(f);
    case 'delete':
      return deleteAction(f);
    case '': {
      const d = await import('./daemon');
      const linger = Number(process.env.TSRUN_SHIM_LINGER_MS ?? DEFAULT_LINGER_MS);
      return d.serveDaemon({ containerdAddress: f.address, namespace: f.namespace, id: f.id, debug: f.debug, readyFd: READY_FD, socketPath: process.env.TSRUN_SHIM_SOCKET ?? '', lingerMs: Number.isFinite(linger) && linger >= 0 ? linger : DEFAULT_LINGER_MS });
    }
    default:
      throw new Error(`unknown action ${JSON.stringify(f.action)}`);
  }
}

main().catch((e) => {
  process.stderr.write(`containerd-shim-tsrun-v2: ${(e as Error).message}\n`);
  process.exit(1);
});
