/**
 * The control socket of a running shim daemon: how a short-lived `start` or `delete` hands its
 * work to the daemon that already runs for this containerd, instead of starting a JavaScript
 * engine of its own that lives as long as the container (one daemon serves every group, each
 * on its own ttrpc socket, so containerd still sees one shim address per group).
 *
 * Our own processes on both ends, root only (the socket is 0600 in containerd's 0711 socket
 * directory and the daemon checks the peer's uid): one JSON request line, one JSON answer line.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

/** containerd's socket directory (defaults.DefaultStateDir + "/s"). */
export const SOCKET_DIR = '/run/containerd/s';

/** Our runtime state root when containerd's options name none (runc's is /run/containerd/runc). */
export const DEFAULT_ROOT = '/run/containerd/tsrun';
/** The bundle file where the shim keeps what `shim delete` needs after a dead shim. */
export const SHIM_STATE_FILE = 'tsrun-shim.json';

/** One daemon per containerd (its gRPC address): all of its namespaces and groups. */
export function controlSocketPath(containerdAddress: string): string {
  return path.join(SOCKET_DIR, `tsrun-${createHash('sha256').update(containerdAddress).digest('hex').slice(0, 32)}`);
}

export interface ServeRequest {
  op: 'serve';
  namespace: string;
  /** The group's ttrpc socket (a path) that the daemon binds and serves. */
  socket: string;
  bundle: string;
  id: string;
  debug: boolean;
  ttrpcAddress: string;
}

export interface CleanupRequest {
  op: 'cleanup';
  namespace: string;
  id: string;
  bundle: string;
}

export type ControlRequest = ServeRequest | CleanupRequest | { op: 'ping' };

export interface ControlResponse {
  error?: string;
  /** cleanup: the DeleteResponse protobuf, base64. */
  deleteResponse?: string;
}

/**
 * A root-only listening unix socket at `socketPath` (a stale file there is replaced): a group's
 * ttrpc socket, which containerd connects to as root.
 */
export async function listenPrivate(socketPath: string): Promise<net.Server> {
  fs.rmSync(socketPath, { force: true });
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  fs.chmodSync(socketPath, 0o600);
  return server;
}

/** One request; null when no daemon answers (none running, or it is going away). */
export function callControl(socketPath: string, req: ControlRequest, timeoutMs = 10_000): Promise<ControlResponse | null> {
  return new Promise((resolve) => {
    let buf = '';
    let done = false;
    const finish = (r: ControlResponse | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      c.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    const c = net.connect(socketPath);
    c.setEncoding('utf8');
    c.once('connect', () => c.write(`${JSON.stringify(req)}\n`));
    c.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      try {
        finish(JSON.parse(buf.slice(0, nl)) as ControlResponse);
      } catch {
        finish(null);
      }
    });
    c.once('error', () => finish(null));
    c.once('close', () => finish(null));
  });
}
