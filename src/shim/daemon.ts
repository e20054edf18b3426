/**
 * The shim daemon: one process per containerd that serves every group of containers, each on
 * its own ttrpc socket with its own Task service (so containerd sees runc-v2's shape: one
 * address per group, Shutdown per group), and a control socket through which later `start` and
 * `delete` invocations hand over their work (src/shim/control.ts). It exits once it serves
 * nothing. One engine for all containers: its memory is paid once, and a `start` costs a
 * connect, not an engine start-up.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Container } from '../container/container';
import type { Logger } from '../container/context';
import { errorKind } from '../container/errors';
import { DEFAULT_ROOT, SHIM_STATE_FILE, callControl, controlSocketPath, listenPrivate, type ControlRequest, type ControlResponse } from './control';
import { EventPublisher } from './events';
import { T, encode, timestamp } from './messages';
import { unmountAll } from './rootfs';
import { TaskService, type ShimState } from './service';
import { TtrpcServer, socketPeerCredentials } from './ttrpc';


function logLine(level: string, msg: string): string {
  return `time="${new Date().toISOString()}" level=${level} msg=${JSON.stringify(msg)} runtime=io.containerd.tsrun.v2\n`;
}

export function stderrLogger(debug: boolean): Logger {
  const line = (level: string) => (msg: string) => process.stderr.write(logLine(level, msg));
  return { debug: debug ? line('debug') : () => {}, info: line('info'), warn: line('warning'), error: line('error') };
}

/** containerd copies the bundle's `log` fifo into its own log; opened read-write, it never blocks. */
function fifoLogger(bundle: string, debug: boolean): Logger & { close(): void } {
  let out: net.Socket | null = null;
  try {
    const fd = fs.openSync(path.join(bundle, 'log'), fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    out = new net.Socket({ fd, readable: false, writable: true });
    out.on('error', () => {});
  } catch {}
  const line = (level: string) => (msg: string) => out?.write(logLine(level, msg));
  return { debug: debug ? line('debug') : () => {}, info: line('info'), warn: line('warning'), error: line('error'), close: () => out?.destroy() };
}

function shimState(bundle: string, namespace: string): ShimState {
  try {
    return JSON.parse(fs.readFileSync(path.join(bundle, SHIM_STATE_FILE), 'utf8')) as ShimState;
  } catch {
    return { root: path.join(DEFAULT_ROOT, namespace) };
  }
}

/**
 * What `shim delete` does after a dead shim (or a failed start): whatever is left of the
 * container goes; the answer is containerd's DeleteResponse (137, as runc's shim reports).
 */
export async function cleanupContainer(namespace: string, id: string, bundle: string, log: Logger): Promise<Uint8Array> {
  const { root } = shimState(bundle, namespace);
  const ctx = { root, log, systemdCgroup: false };
  let pid = 0;
  try {
    pid = Container.load(ctx, id).pid;
  } catch {
    // No readable state (a create killed half-way, a corrupt file): forceDelete still finds it.
  }
  try {
    await Container.forceDelete(ctx, id);
  } catch (e) {
    if (errorKind(e) !== 'NotFound') log.warn(`delete ${id}: ${(e as Error).message}`);
  }
  try {
    unmountAll(path.join(bundle, 'rootfs'));
  } catch (e) {
    log.warn(`unmount rootfs: ${(e as Error).message}`);
  }
  return encode(T.DeleteResponse, { pid, exitStatus: 128 + 9, exitedAt: timestamp(new Date()) });
}

interface Group {
  socket: string;
  server: TtrpcServer;
  service: TaskService;
  publisher: EventPublisher;
  log: Logger & { close(): void };
}

export interface DaemonOptions {
  containerdAddress: string;
  namespace: string;
  id: string;
  debug: boolean;
  /** Where the daemon tells `start` that the first group's socket listens (one byte, then closed). */
  readyFd: number;
  /** The first group's socket, which the daemon binds. */
  socketPath: string;
  /** How long the daemon stays once it serves nothing (0: it exits at once). */
  lingerMs: number;
}

export async function serveDaemon(o: DaemonOptions): Promise<void> {
  const bundle = process.cwd();
  const groups = new Map<string, Group>();
  let exiting = false;
  const firstLog = fifoLogger(bundle, o.debug);
  process.on('uncaughtException', (e) => firstLog.error(`uncaught: ${e.stack ?? e}`));
  process.on('unhandledRejection', (e) => firstLog.error(`unhandled rejection: ${(e as Error)?.stack ?? e}`));
  // containerd asks a shim to go with Shutdown; a stray signal must not lose exits.
  process.on('SIGTERM', () => firstLog.warn('SIGTERM ignored: the shim exits on Shutdown'));
  process.on('SIGINT', () => {});

  const controlPath = controlSocketPath(o.containerdAddress);
  let control: net.Server | null = null;

  // Idle, the daemon waits a moment before it exits: containers that come and go (ctr run --rm
  // in a loop, a pod's restarts) then pay no engine start-up and run on warm code.
  let lingering: NodeJS.Timeout | null = null;
  const exitIfIdle = async () => {
    if (groups.size > 0 || exiting) return;
    if (lingering) clearTimeout(lingering);
    lingering = setTimeout(() => {
      if (groups.size > 0) return;
      exiting = true;
      control?.close(); // unlinks the control socket it bound
      process.exit(0);
    }, o.lingerMs);
  };

  const addGroup = async (socket: string, namespace: string, groupBundle: string, debug: boolean, ttrpcAddress: string, log: Logger & { close(): void } = fifoLogger(groupBundle, debug)) => {
    const publisher = new EventPublisher(ttrpcAddress, namespace, (m) => log.warn(m));
    const server = new TtrpcServer();
    const group: Group = { socket, server, publisher, log, service: null as unknown as TaskService };
    group.service = new TaskService({
      namespace,
      defaultRoot: DEFAULT_ROOT,
      publisher,
      log,
      onShutdown: async () => {
        if (groups.get(socket) !== group) return;
        groups.delete(socket);
        await publisher.flushed();
        publisher.close();
        await server.shutdown();
        fs.rmSync(socket, { force: true });
        log.close();
        await exitIfIdle();
      },
    });
    const methods = group.service.methods();
    server.register('containerd.task.v2.Task', methods);
    server.register('containerd.task.v3.Task', methods);
    await server.listen(await listenPrivate(socket));
    groups.set(socket, group);
    log.debug(`serving ${namespace} on ${socket}`);
  };

  const handle = async (req: ControlRequest): Promise<ControlResponse> => {
    if (exiting) return { error: 'shim daemon is exiting' };
    if (req.op === 'serve') {
      if (lingering) clearTimeout(lingering);
      lingering = null;
      if (!groups.has(req.socket)) await addGroup(req.socket, req.namespace, req.bundle, req.debug, req.ttrpcAddress);
      return {};
    }
    if (req.op === 'ping') return {};
    if (req.op === 'cleanup') {
      const bytes = await cleanupContainer(req.namespace, req.id, req.bundle, firstLog);
      return { deleteResponse: Buffer.from(bytes).toString('base64') };
    }
    return { error: `unknown control request ${JSON.stringify((req as { op?: string }).op)}` };
  };

  const startControl = async () => {
    // Another daemon may own it (two first starts at once): then this one serves only its group.
    if (fs.existsSync(controlPath)) {
      if ((await callControl(controlPath, { op: 'ping' }, 2000)) !== null) return;
      fs.rmSync(controlPath, { force: true });
    }
    const srv = net.createServer((c) => {
      try {
        if (socketPeerCredentials(c).uid !== 0) {
          c.destroy();
          return;
        }
      } catch {
        c.destroy();
        return;
      }
      let buf = '';
      c.setEncoding('utf8');
      c.on('error', () => {});
      c.on('data', async (d: string) => {
        buf += d;
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        const line = buf.slice(0, nl);
        buf = '';
        let res: ControlResponse;
        try {
          res = await handle(JSON.parse(line) as ControlRequest);
        } catch (e) {
          res = { error: (e as Error).message };
        }
        c.end(`${JSON.stringify(res)}\n`);
      });
    });
    await new Promise<void>((resolve) => {
      srv.once('error', (e) => {
        firstLog.warn(`control socket ${controlPath}: ${(e as Error).message}`);
        resolve();
      });
      srv.listen(controlPath, () => {
        fs.chmodSync(controlPath, 0o600);
        control = srv;
        resolve();
      });
    });
  };

  try {
    await addGroup(o.socketPath, o.namespace, bundle, o.debug, process.env.TTRPC_ADDRESS ?? '', firstLog);
  } catch (e) {
    firstLog.error(`listen on ${o.socketPath}: ${(e as Error).message}`);
    process.exit(1); // the closed pipe fails `start`
  }
  try {
    fs.writeSync(o.readyFd, 'x');
  } catch (e) {
    // `start` is gone (EPIPE): it printed no address, so no containerd will ever call this
    // socket. Serve nothing, and leave no socket file behind in containerd's directory.
    firstLog.error(`start exited before the shim said it listens on ${o.socketPath} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): exiting`);
    fs.rmSync(o.socketPath, { force: true });
    process.exit(1);
  }
  fs.closeSync(o.readyFd);
  await startControl();
}
