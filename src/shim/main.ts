/**
 * containerd-shim-tsrun-v2: containerd's runtime v2 shim protocol.
 *
 *   <shim> -namespace NS -address ADDR -publish-binary BIN -id ID [-bundle DIR] [-debug] start
 *       prints the ttrpc address of the shim that serves ID's group, starting one if none answers
 *   <shim> ... -id ID -bundle DIR delete
 *       cleans up after a dead shim: kills and removes what is left, prints a DeleteResponse
 *   <shim> ... -id ID            (no action: the daemon `start` spawns, listening socket on fd 3)
 *
 * stdout is containerd's: `start` prints the address and nothing else (containerd reads stdout and
 * stderr together), so warnings of the engine are silenced before anything can emit one.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Container } from '../container/container';
import { errorKind } from '../container/errors';
import type { Logger } from '../container/context';
import { EventPublisher } from './events';
import { T, encode, timestamp } from './messages';
import { unmountAll } from './rootfs';
import { SHIM_STATE_FILE, TaskService, type ShimState } from './service';
import { TtrpcServer } from './ttrpc';

// Nothing of Node's may reach containerd's stdout/stderr.
process.removeAllListeners('warning');
process.on('warning', () => {});

declare const __TSRUN_VERSION__: string;
const VERSION = typeof __TSRUN_VERSION__ === 'string' ? __TSRUN_VERSION__ : 'dev';

/** Where the runc shim keeps its sockets (containerd's defaults.DefaultStateDir + "/s"). */
const SOCKET_DIR = '/run/containerd/s';
/** Our runtime state root when containerd's options name none (runc's is /run/containerd/runc). */
const DEFAULT_ROOT = '/run/containerd/tsrun';
/** The daemon's listening socket, passed by `start`. */
const LISTEN_FD = 3;

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

async function start(f: Flags): Promise<void> {
  const bundle = f.bundle || process.cwd();
  const address = socketAddress(f.address, f.namespace, groupOf(bundle, f.id));
  const socketPath = address.slice('unix://'.length);
  if (await canConnect(socketPath)) {
    // The group's shim is up: it serves this container too.
    writeAtomically(path.join(bundle, 'address'), address);
    process.stdout.write(address);
    return;
  }
  fs.mkdirSync(SOCKET_DIR, { recursive: true, mode: 0o711 });
  fs.rmSync(socketPath, { force: true });
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  fs.chmodSync(socketPath, 0o600);
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  const args = process.argv.slice(2).filter((a) => a !== 'start');
  const daemon = spawn(process.execPath, [...process.execArgv, process.argv[1], ...args], {
    cwd: bundle,
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', fd],
    env: { ...process.env, TSRUN_SHIM_SOCKET: socketPath },
  });
  daemon.unref();
  writeAtomically(path.join(bundle, 'address'), address);
  fs.writeFileSync(path.join(bundle, 'shim.pid'), String(daemon.pid));
  // No server.close(): closing a server that bound a path unlinks it. The daemon has the socket;
  // this process just exits once the address is out.
  await new Promise<void>((resolve) => process.stdout.write(address, () => resolve()));
  process.exit(0);
}

function shimState(bundle: string, namespace: string): ShimState {
  try {
    return JSON.parse(fs.readFileSync(path.join(bundle, SHIM_STATE_FILE), 'utf8')) as ShimState;
  } catch {
    return { root: path.join(DEFAULT_ROOT, namespace) };
  }
}

/** After a dead shim (or a failed start): whatever is left of the container goes. */
async function deleteAction(f: Flags): Promise<void> {
  const bundle = f.bundle || process.cwd();
  const { root } = shimState(bundle, f.namespace);
  const log = stderrLogger(f.debug);
  let pid = 0;
  try {
    const c = Container.load({ root, log, systemdCgroup: false }, f.id);
    pid = c.pid;
    await c.delete(true);
  } catch (e) {
    if (errorKind(e) !== 'NotFound') log.warn(`delete ${f.id}: ${(e as Error).message}`);
  }
  try {
    unmountAll(path.join(bundle, 'rootfs'));
  } catch (e) {
    log.warn(`unmount rootfs: ${(e as Error).message}`);
  }
  process.stdout.write(encode(T.DeleteResponse, { pid, exitStatus: 128 + 9, exitedAt: timestamp(new Date()) }));
}

function stderrLogger(debug: boolean): Logger {
  const line = (level: string) => (msg: string) => process.stderr.write(`time="${new Date().toISOString()}" level=${level} msg=${JSON.stringify(msg)} runtime=io.containerd.tsrun.v2\n`);
  return { debug: debug ? line('debug') : () => {}, info: line('info'), warn: line('warning'), error: line('error') };
}

/** containerd copies the bundle's `log` fifo into its own log; opened read-write, it never blocks. */
function fifoLogger(bundle: string, debug: boolean): Logger {
  let out: net.Socket | null = null;
  try {
    const fd = fs.openSync(path.join(bundle, 'log'), fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    out = new net.Socket({ fd, readable: false, writable: true });
    out.on('error', () => {});
  } catch {}
  const line = (level: string) => (msg: string) => out?.write(`time="${new Date().toISOString()}" level=${level} msg=${JSON.stringify(msg)} runtime=io.containerd.tsrun.v2\n`);
  return { debug: debug ? line('debug') : () => {}, info: line('info'), warn: line('warning'), error: line('error') };
}

async function serve(f: Flags): Promise<void> {
  const bundle = process.cwd();
  const log = fifoLogger(bundle, f.debug);
  process.on('uncaughtException', (e) => log.error(`uncaught: ${e.stack ?? e}`));
  process.on('unhandledRejection', (e) => log.error(`unhandled rejection: ${(e as Error)?.stack ?? e}`));
  // containerd stops shims with SIGTERM only after Shutdown; a stray one must not lose exits.
  process.on('SIGTERM', () => log.warn('SIGTERM ignored: the shim exits on Shutdown'));
  process.on('SIGINT', () => {});
  const publisher = new EventPublisher(process.env.TTRPC_ADDRESS ?? '', f.namespace, (m) => log.warn(m));
  const server = new TtrpcServer();
  const socketPath = process.env.TSRUN_SHIM_SOCKET ?? '';
  const service: TaskService = new TaskService({
    namespace: f.namespace,
    defaultRoot: DEFAULT_ROOT,
    publisher,
    log,
    onShutdown: async () => {
      await publisher.flushed();
      publisher.close();
      server.shutdown();
      if (socketPath) fs.rmSync(socketPath, { force: true });
      process.exit(0);
    },
  });
  const methods = service.methods();
  server.register('containerd.task.v2.Task', methods);
  server.register('containerd.task.v3.Task', methods);
  await server.listen(LISTEN_FD);
  log.debug(`serving ${f.namespace}/${f.id} on ${socketPath}`);
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
    case '':
      return serve(f);
    default:
      throw new Error(`unknown action ${JSON.stringify(f.action)}`);
  }
}

main().catch((e) => {
  process.stderr.write(`containerd-shim-tsrun-v2: ${(e as Error).message}\n`);
  process.exit(1);
});
