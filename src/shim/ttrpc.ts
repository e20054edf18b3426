/**
 * ttrpc (github.com/containerd/ttrpc) over unix sockets: the RPC protocol between containerd and
 * its shims. Unary calls only (containerd's Task and Events services have no streams).
 *
 * Wire format: frames of a 10-byte header (big-endian uint32 data length, uint32 stream id, uint8
 * type, uint8 flags) followed by the data, at most 4 MiB. A request frame (type 1) carries a
 * ttrpc.Request {service, method, payload, timeout_nano, metadata}; the server answers on the same
 * stream id with a response frame (type 2) carrying a ttrpc.Response {google.rpc.Status status,
 * payload}. Client stream ids are odd and increase.
 *
 * The server's error behaviour follows ttrpc's server.go and channel.go:
 * - a frame over 4 MiB: its data is read and dropped, then a ResourceExhausted status goes back on
 *   its stream id ("message length N exceed maximum message size of 4194304"); the connection stays;
 * - an even stream id: InvalidArgument "StreamID must be odd for client initiated streams";
 * - a data frame (type 3): InvalidArgument "StreamID is no longer active" (no streaming here);
 * - a request whose stream id does not increase: InvalidArgument "StreamID cannot be re-used and
 *   must increment"; one that does not decode: InvalidArgument "unmarshal request error: ...";
 * - an unknown service or method: Unimplemented "service <name>" / "method <name>";
 * - frames of any other type are ignored;
 * - a handler throwing a TtrpcError: that status; any other exception: its message with Unknown,
 *   or NotFound / AlreadyExists / PermissionDenied for ENOENT / EEXIST / EACCES, EPERM errors
 *   (ttrpc's convertCode for Go's os errors).
 * One difference: a reply over 4 MiB becomes a ResourceExhausted status where ttrpc would drop the
 * whole connection.
 *
 * Peer credentials: like containerd's shims (ttrpc.UnixSocketRequireSameUser), every connection's
 * SO_PEERCRED is checked before anything is read; a refused connection is closed at once.
 */
import * as net from 'node:net';
import { native } from '../native/addon';
import { ttrpc } from './gen/proto';

/** gRPC status codes (google.rpc.Code). */
export enum Code {
  OK = 0,
  Canceled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  AlreadyExists = 6,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
  Aborted = 10,
  OutOfRange = 11,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  DataLoss = 15,
  Unauthenticated = 16,
}

/** google.protobuf.Any, as it travels in google.rpc.Status.details. */
export interface AnyMessage {
  typeUrl?: string | null;
  value?: Uint8Array | null;
}

/**
 * A non-OK google.rpc.Status. Thrown by a handler, it is what the client receives; TtrpcClient
 * rejects with one for every failed call (see TtrpcClient.call for the codes of local failures).
 * `message` is the status message alone (Go's status error prints "rpc error: code = X desc = M",
 * which is `toString()` here).
 */
export class TtrpcError extends Error {
  readonly code: Code;
  readonly details: AnyMessage[];

  constructor(code: Code, message: string, details: AnyMessage[] = []) {
    super(message);
    this.name = 'TtrpcError';
    this.code = code;
    this.details = details;
  }

  override toString(): string {
    return `rpc error: code = ${Code[this.code] ?? `Code(${this.code})`} desc = ${this.message}`;
  }
}

export const HEADER_LENGTH = 10;
/** The largest frame data ttrpc accepts (messageLengthMax, 4 MiB). */
export const MESSAGE_LENGTH_MAX = 4 << 20;

export enum MessageType {
  Request = 1,
  Response = 2,
  Data = 3,
}

export interface FrameHeader {
  length: number;
  streamId: number;
  type: number;
  flags: number;
}

export interface Frame extends FrameHeader {
  /** The frame's data; for an oversized frame, empty (it was dropped). */
  data: Buffer;
  /** The data was over MESSAGE_LENGTH_MAX: it was read and dropped. */
  oversized: boolean;
}

/** One frame, header and data in a single buffer (so one write sends it whole). */
export function encodeFrame(streamId: number, type: number, flags: number, data: Uint8Array = new Uint8Array(0)): Buffer {
  const b = Buffer.allocUnsafe(HEADER_LENGTH + data.length);
  b.writeUInt32BE(data.length, 0);
  b.writeUInt32BE(streamId >>> 0, 4);
  b[8] = type;
  b[9] = flags;
  b.set(data, HEADER_LENGTH);
  return b;
}

/**
 * Splits a byte stream into frames, whatever the chunk boundaries. A frame over
 * MESSAGE_LENGTH_MAX is not buffered: its data is skipped as it arrives and the frame is reported
 * (oversized, no data) once the last of it has gone by, as ttrpc's channel.recv does.
 */
export class FrameDecoder {
  private parts: Buffer[] = [];
  private have = 0;
  private header: FrameHeader | null = null;
  private skip = 0;
  private skipped: FrameHeader | null = null;

  constructor(private readonly onFrame: (frame: Frame) => void) {}

  /** Bytes received but not yet part of a reported frame. */
  get pending(): number {
    return this.have + this.skip;
  }

  push(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - off);
        this.skip -= n;
        off += n;
        if (this.skip === 0) this.finishSkip();
        continue;
      }
      const need = this.header ? this.header.length : HEADER_LENGTH;
      const take = Math.min(need - this.have, chunk.length - off);
      this.parts.push(chunk.subarray(off, off + take));
      this.have += take;
      off += take;
      if (this.have < need) break;
      const data = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, need);
      this.parts = [];
      this.have = 0;
      if (this.header) {
        const h = this.header;
        this.header = null;
        this.onFrame({ ...h, data, oversized: false });
      } else {
        this.startFrame(data);
      }
    }
  }

  private startFrame(b: Buffer): void {
    const h: FrameHeader = { length: b.readUInt32BE(0), streamId: b.readUInt32BE(4), type: b[8], flags: b[9] };
    if (h.length > MESSAGE_LENGTH_MAX) {
      this.skip = h.length;
      this.skipped = h;
    } else if (h.length === 0) {
      this.onFrame({ ...h, data: Buffer.alloc(0), oversized: false });
    } else {
      this.header = h;
    }
  }

  private finishSkip(): void {
    const h = this.skipped!;
    this.skipped = null;
    this.onFrame({ ...h, data: Buffer.alloc(0), oversized: true });
  }
}

function oversizedMessage(length: number): string {
  return `message length ${length} exceed maximum message size of ${MESSAGE_LENGTH_MAX}`;
}

/** An int64 as protobufjs decodes it (a Long, when the long package is there) → number. */
function longToNumber(v: number | { toNumber(): number } | null | undefined): number {
  if (v == null) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

/** A unix socket address as containerd writes them: "unix:///path", "/path", or "@abstract". */
function socketPath(address: string): string {
  let p = address.startsWith('unix://') ? address.slice('unix://'.length) : address;
  if (p.startsWith('@')) p = '\0' + p.slice(1); // Go's net package spells abstract names with @
  return p;
}

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/** SO_PEERCRED of a connected unix socket (through the native addon). */
export function socketPeerCredentials(socket: net.Socket): PeerCredentials {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('ttrpc: not a unix socket connection with an fd');
  return native().peerCredentials(fd);
}

/**
 * ttrpc.UnixSocketRequireSameUser: the peer's uid and gid must be this process's effective ones.
 * Root (uid 0) is also accepted.
 */
export function requireSameUser(uid: number, gid: number): boolean {
  if (uid === 0) return true;
  return uid === process.geteuid!() && gid === process.getegid!();
}

export interface CallContext {
  service: string;
  method: string;
  /** The request's metadata, key → values in arrival order (keys as sent; containerd sends lower case). */
  metadata: Record<string, string[]>;
  /** The caller's timeout (Request.timeout_nano) in milliseconds, undefined when it set none. */
  timeoutMs: number | undefined;
  /**
   * Aborted when the caller's timeout expires (reason: TtrpcError DeadlineExceeded), or when the
   * connection or the server closes (reason: TtrpcError Canceled). Nothing else is cancelled: the
   * handler decides what to do with it (the Go ctx equivalent).
   */
  signal: AbortSignal;
  /** The connecting process's credentials, null when they could not be read. */
  peer: PeerCredentials | null;
}

/** A unary method: the request's payload in, the response's payload out (both encoded messages). */
export type Method = (payload: Uint8Array, ctx: CallContext) => Promise<Uint8Array> | Uint8Array;

export interface TtrpcServerOptions {
  /**
   * Decides on each connection from its peer's credentials; default: requireSameUser. Returning
   * false (or throwing) closes the connection before anything is read from it.
   */
  checkPeer?: (uid: number, gid: number, pid: number) => boolean;
  /** Where connection-level problems are reported (refused peers, socket errors); default stderr. */
  log?: (message: string) => void;
}

function errnoStatus(err: unknown): Code {
  switch ((err as NodeJS.ErrnoException | null)?.code) {
    case 'ENOENT':
      return Code.NotFound;
    case 'EEXIST':
      return Code.AlreadyExists;
    case 'EACCES':
    case 'EPERM':
      return Code.PermissionDenied;
    default:
      return Code.Unknown;
  }
}

function statusOf(err: unknown): { code: number; message: string; details: AnyMessage[] } {
  if (err instanceof TtrpcError) return { code: err.code, message: err.message, details: err.details };
  const message = err instanceof Error ? err.message : String(err);
  return { code: errnoStatus(err), message, details: [] };
}

class ServerConnection {
  private lastStreamId = 0;
  private readonly inflight = new Map<number, AbortController>();
  private closed = false;
  private draining = false;
  private readonly decoder: FrameDecoder;
  private readonly onGone: () => void;

  constructor(
    private readonly server: TtrpcServer,
    private readonly socket: net.Socket,
    private readonly peer: PeerCredentials | null,
    onGone: () => void,
  ) {
    this.onGone = onGone;
    this.decoder = new FrameDecoder((f) => this.frame(f));
    socket.on('data', (chunk: Buffer) => {
      if (!this.closed) this.decoder.push(chunk);
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'ECONNRESET' && e.code !== 'EPIPE') server.log(`ttrpc: connection error: ${e.message}`);
    });
    // The client half-closing ends the connection (ttrpc returns on EOF and closes it).
    socket.on('end', () => this.destroy());
    socket.on('close', () => this.destroy());
  }

  get idle(): boolean {
    return this.inflight.size === 0;
  }

  /** Closes now: in-flight handlers are cancelled and their answers dropped. */
  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    const reason = new TtrpcError(Code.Canceled, 'context canceled');
    for (const ac of this.inflight.values()) ac.abort(reason);
    this.inflight.clear();
    this.socket.destroy();
    this.onGone();
  }

  /** Closes once no request is in flight (Server.shutdown), after the last answer is written. */
  drain(): void {
    this.draining = true;
    if (this.idle) this.endGracefully();
  }

  private endGracefully(): void {
    if (this.closed) return;
    this.socket.end(() => this.destroy());
  }

  private send(streamId: number, status: { code: number; message?: string; details?: AnyMessage[] }, payload?: Uint8Array): void {
    if (this.closed) return;
    let data = ttrpc.Response.encode({ status, payload }).finish();
    if (data.length > MESSAGE_LENGTH_MAX) {
      data = ttrpc.Response.encode({ status: { code: Code.ResourceExhausted, message: oversizedMessage(data.length) } }).finish();
    }
    this.socket.write(encodeFrame(streamId, MessageType.Response, 0, data));
  }

  private sendStatus(streamId: number, code: Code, message: string): void {
    this.send(streamId, { code, message });
  }

  private frame(f: Frame): void {
    if (this.closed) return;
    if (f.oversized) return this.sendStatus(f.streamId, Code.ResourceExhausted, oversizedMessage(f.length));
    if (f.streamId % 2 !== 1) return this.sendStatus(f.streamId, Code.InvalidArgument, 'StreamID must be odd for client initiated streams');
    if (f.type === MessageType.Data) return this.sendStatus(f.streamId, Code.InvalidArgument, 'StreamID is no longer active');
    if (f.type !== MessageType.Request) return; // ignored, for future compatibility (as ttrpc)
    if (f.streamId <= this.lastStreamId) return this.sendStatus(f.streamId, Code.InvalidArgument, 'StreamID cannot be re-used and must increment');
    this.lastStreamId = f.streamId;
    let req: ttrpc.Request;
    try {
      req = ttrpc.Request.decode(f.data);
    } catch (e) {
      return this.sendStatus(f.streamId, Code.InvalidArgument, `unmarshal request error: ${(e as Error).message}`);
    }
    const service = this.server.services.get(req.service);
    if (!service) return this.sendStatus(f.streamId, Code.Unimplemented, `service ${req.service}`);
    const method = Object.prototype.hasOwnProperty.call(service, req.method) ? service[req.method] : undefined;
    if (typeof method !== 'function') return this.sendStatus(f.streamId, Code.Unimplemented, `method ${req.method}`);
    void this.run(f.streamId, req, method);
  }

  private async run(streamId: number, req: ttrpc.Request, method: Method): Promise<void> {
    const ac = new AbortController();
    this.inflight.set(streamId, ac);
    const metadata: Record<string, string[]> = Object.create(null);
    for (const kv of req.metadata ?? []) (metadata[kv.key ?? ''] ??= []).push(kv.value ?? '');
    const nanos = longToNumber(req.timeoutNano);
    let timer: NodeJS.Timeout | undefined;
    let timeoutMs: number | undefined;
    if (nanos !== 0) {
      timeoutMs = Math.max(0, nanos / 1e6);
      const expire = () => ac.abort(new TtrpcError(Code.DeadlineExceeded, 'context deadline exceeded'));
      if (timeoutMs === 0) expire();
      else timer = setTimeout(expire, Math.min(timeoutMs, 2 ** 31 - 1)).unref();
    }
    const ctx: CallContext = { service: req.service, method: req.method, metadata, timeoutMs, signal: ac.signal, peer: this.peer };
    let status: { code: number; message?: string; details?: AnyMessage[] } = { code: Code.OK };
    let payload: Uint8Array | undefined;
    try {
      const out = await method(req.payload, ctx);
      if (!(out instanceof Uint8Array)) throw new Error('ttrpc: marshal called with nil');
      payload = out;
    } catch (e) {
      status = statusOf(e);
    } finally {
      if (timer) clearTimeout(timer);
    }
    if (this.inflight.get(streamId) !== ac) return; // the connection went away meanwhile
    this.inflight.delete(streamId);
    this.send(streamId, status, payload);
    if (this.draining && this.idle) this.endGracefully();
  }
}

/**
 * The ttrpc server. Requests are served concurrently (each handler runs as soon as its frame is
 * read; a slow one holds nothing else up) and every answer goes back on its request's stream id.
 */
export class TtrpcServer {
  /** @internal */ readonly services = new Map<string, Record<string, Method>>();
  private readonly listeners = new Set<net.Server>();
  private readonly connections = new Set<ServerConnection>();
  private readonly checkPeer: (uid: number, gid: number, pid: number) => boolean;
  /** @internal */ readonly log: (message: string) => void;
  private closing = false;
  private drained: (() => void) | null = null;

  constructor(opts: TtrpcServerOptions = {}) {
    this.checkPeer = opts.checkPeer ?? requireSameUser;
    this.log = opts.log ?? ((m) => process.stderr.write(m + '\n'));
  }

  /** Adds a service: method name → handler. A service name can be registered once. */
  register(service: string, methods: Record<string, Method>): void {
    if (this.services.has(service)) throw new Error(`duplicate service ${service} registered`);
    this.services.set(service, { ...methods });
  }

  /**
   * Serves on a listening socket: an fd already bound and listening (inherited from another
   * process; the shim's daemon binds its sockets itself, see spawnDaemon), a unix socket path or address ("unix:///run/x.sock", "@abstract"; the file
   * must not exist), or a net.Server (listening or about to). Resolves once listening.
   */
  listen(target: number | string | net.Server): Promise<void> {
    if (this.closing) return Promise.reject(new Error('ttrpc: server closed'));
    const server = target instanceof net.Server ? target : net.createServer();
    server.on('connection', (socket) => this.accept(socket));
    server.on('error', (e) => this.log(`ttrpc: listener error: ${e.message}`));
    this.listeners.add(server);
    server.on('close', () => this.listeners.delete(server));
    if (target instanceof net.Server && target.listening) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const fail = (e: Error) => {
        this.listeners.delete(server);
        reject(e);
      };
      server.once('error', fail);
      server.once('listening', () => {
        server.off('error', fail);
        resolve();
      });
      if (typeof target === 'number') server.listen({ fd: target });
      else if (typeof target === 'string') server.listen(socketPath(target));
    });
  }

  /** Live connections (tests, diagnostics). */
  get connectionCount(): number {
    return this.connections.size;
  }

  private accept(socket: net.Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    let peer: PeerCredentials | null = null;
    try {
      peer = socketPeerCredentials(socket);
      if (!this.checkPeer(peer.uid, peer.gid, peer.pid)) throw new Error('ttrpc: invalid credentials: operation not permitted');
    } catch (e) {
      const who = peer ? ` from pid ${peer.pid} uid ${peer.uid} gid ${peer.gid}` : '';
      this.log(`ttrpc: refusing connection${who} after handshake: ${(e as Error).message}`);
      socket.destroy();
      return;
    }
    const conn = new ServerConnection(this, socket, peer, () => {
      this.connections.delete(conn);
      if (this.drained && this.connections.size === 0) this.drained();
    });
    this.connections.add(conn);
  }

  private closeListeners(): Promise<void> {
    return Promise.all(
      [...this.listeners].map(
        (l) =>
          new Promise<void>((resolve) => {
            if (!l.listening) return resolve();
            l.close(() => resolve());
          }),
      ),
    ).then(() => undefined);
  }

  /**
   * Stops now (ttrpc's Server.Close): no more connections, the open ones are closed, handlers still
   * running see their signal aborted and their answers are dropped.
   */
  async close(): Promise<void> {
    this.closing = true;
    for (const c of [...this.connections]) c.destroy();
    await this.closeListeners();
  }

  /**
   * Stops gracefully (ttrpc's Server.Shutdown): no more connections; each open one is closed once it
   * has no request in flight, after its last answer is written. Resolves when none is left. Do not
   * await it inside a handler (that handler's own request would be waited for): call it and return.
   */
  async shutdown(): Promise<void> {
    this.closing = true;
    const listenersClosed = this.closeListeners();
    const gone = new Promise<void>((resolve) => {
      if (this.connections.size === 0) return resolve();
      this.drained = resolve;
    });
    for (const c of [...this.connections]) c.drain();
    await Promise.all([listenersClosed, gone]);
  }
}

export interface CallOptions {
  /** Sent as Request.timeout_nano; the call also fails locally with DeadlineExceeded when it expires. */
  timeoutMs?: number;
  /** Request metadata (e.g. {'containerd-namespace-ttrpc': 'k8s.io'}). */
  metadata?: Record<string, string | string[]>;
  /** Aborting fails the call locally with Canceled (the server is not told: ttrpc has no cancel). */
  signal?: AbortSignal;
}

interface Pending {
  resolve: (payload: Uint8Array) => void;
  reject: (err: TtrpcError) => void;
}

/**
 * A ttrpc client on one connection; calls are multiplexed on it (odd stream ids 1, 3, 5...).
 * Every failure is a TtrpcError: the server's status, or for local failures
 *   Unavailable "ttrpc: closed" (the connection is gone or closed: nothing is retried here),
 *   DeadlineExceeded "context deadline exceeded" (timeoutMs), Canceled "context canceled" (signal),
 *   ResourceExhausted (a request or an answer over 4 MiB), Internal (an answer that does not decode).
 */
export class TtrpcClient {
  private nextStreamId = 1;
  private readonly pending = new Map<number, Pending>();
  private isClosed = false;
  private readonly decoder: FrameDecoder;
  /** Resolves when the connection is closed (by either side). */
  readonly whenClosed: Promise<void>;
  private markClosed!: () => void;

  /** Connects to a unix socket: "/path", "unix:///path" or "@abstract". */
  static connect(address: string, opts: { timeoutMs?: number } = {}): Promise<TtrpcClient> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection({ path: socketPath(address) });
      let timer: NodeJS.Timeout | undefined;
      if (opts.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          socket.destroy();
          reject(Object.assign(new Error(`ttrpc: connect ${address}: timed out after ${opts.timeoutMs} ms`), { code: 'ETIMEDOUT' }));
        }, opts.timeoutMs);
      }
      socket.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new TtrpcClient(socket));
      });
    });
  }

  /** Wraps an already connected socket. */
  constructor(private readonly socket: net.Socket) {
    this.whenClosed = new Promise((resolve) => (this.markClosed = resolve));
    this.decoder = new FrameDecoder((f) => this.frame(f));
    socket.on('data', (chunk: Buffer) => {
      if (!this.isClosed) this.decoder.push(chunk);
    });
    socket.on('error', () => this.close());
    socket.on('end', () => this.close());
    socket.on('close', () => this.close());
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Calls service/method with an encoded request message; resolves with the encoded answer. */
  call(service: string, method: string, payload: Uint8Array, opts: CallOptions = {}): Promise<Uint8Array> {
    if (this.isClosed) return Promise.reject(new TtrpcError(Code.Unavailable, 'ttrpc: closed'));
    if (opts.signal?.aborted) return Promise.reject(new TtrpcError(Code.Canceled, 'context canceled'));
    const metadata: ttrpc.KeyValue.$Properties[] = [];
    for (const [key, v] of Object.entries(opts.metadata ?? {})) {
      for (const value of Array.isArray(v) ? v : [v]) metadata.push({ key, value });
    }
    const timeoutNano = opts.timeoutMs !== undefined ? Math.max(1, Math.round(opts.timeoutMs * 1e6)) : 0;
    const data = ttrpc.Request.encode({ service, method, payload, timeoutNano, metadata }).finish();
    if (data.length > MESSAGE_LENGTH_MAX) return Promise.reject(new TtrpcError(Code.ResourceExhausted, oversizedMessage(data.length)));
    if (this.nextStreamId > 0xffffffff) return Promise.reject(new TtrpcError(Code.ResourceExhausted, 'ttrpc: stream ids exhausted'));
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    return new Promise<Uint8Array>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => finish(() => reject(new TtrpcError(Code.Canceled, 'context canceled')));
      const finish = (settle: () => void) => {
        if (this.pending.get(id) !== entry) return;
        this.pending.delete(id);
        if (timer) clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        settle();
      };
      const entry: Pending = {
        resolve: (p) => finish(() => resolve(p)),
        reject: (e) => finish(() => reject(e)),
      };
      this.pending.set(id, entry);
      if (opts.timeoutMs !== undefined) {
        timer = setTimeout(() => entry.reject(new TtrpcError(Code.DeadlineExceeded, 'context deadline exceeded')), Math.min(Math.max(0, opts.timeoutMs), 2 ** 31 - 1));
      }
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.socket.write(encodeFrame(id, MessageType.Request, 0, data));
    });
  }

  /** Closes the connection; calls still waiting fail with Unavailable "ttrpc: closed". */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.socket.destroy();
    const err = new TtrpcError(Code.Unavailable, 'ttrpc: closed');
    for (const p of [...this.pending.values()]) p.reject(err);
    this.markClosed();
  }

  private frame(f: Frame): void {
    const p = this.pending.get(f.streamId);
    if (!p) return; // a stream we gave up on (timeout, abort): ttrpc logs and drops it too
    if (f.oversized) return p.reject(new TtrpcError(Code.ResourceExhausted, oversizedMessage(f.length)));
    if (f.type === MessageType.Data) return p.reject(new TtrpcError(Code.Internal, 'received data from non-streaming server: protocol error'));
    if (f.type !== MessageType.Response) return p.reject(new TtrpcError(Code.Internal, `unexpected message type ${f.type} received: protocol error`));
    let resp: ttrpc.Response;
    try {
      resp = ttrpc.Response.decode(f.data);
    } catch (e) {
      return p.reject(new TtrpcError(Code.Internal, `ttrpc: cannot decode the response: ${(e as Error).message}`));
    }
    const st = resp.status;
    if (st && st.code) return p.reject(new TtrpcError(st.code, st.message ?? '', st.details ?? []));
    p.resolve(resp.payload ?? new Uint8Array(0));
  }
}
