// The shim's wire layer: the generated protobuf messages (src/shim/gen/proto, built from
// src/shim/proto by scripts/build-proto.mjs) and ttrpc (src/shim/ttrpc.ts), against raw frames
// written by hand, against its own client, across processes (an inherited listening fd, a peer of
// another uid).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..');
// The generated module is a build output: make it when it is missing or older than its sources.
execFileSync(process.execPath, [path.join(root, 'scripts/build-proto.mjs'), '--if-stale'], { stdio: 'inherit' });

// Loaded after that build (a static import would run first).
import type * as Proto from '../src/shim/gen/proto';
import type * as Ttrpc from '../src/shim/ttrpc';
import type { CallContext, Frame, Method } from '../src/shim/ttrpc';
const { containerd, google, io, ttrpc } = require('../src/shim/gen/proto') as typeof Proto;
const { Code, encodeFrame, FrameDecoder, MESSAGE_LENGTH_MAX, MessageType, TtrpcClient, TtrpcError, TtrpcServer } = require('../src/shim/ttrpc') as typeof Ttrpc;
type TtrpcError = Ttrpc.TtrpcError;

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-ttrpc-'));
// Reachable by the uid 65534 client of the peer-credentials test (mkdtemp makes 0700).
fs.chmodSync(tmpRoot, 0o755);

// Whatever a test opens is closed after it, passed or failed.
let cleanups: (() => unknown)[] = [];
const defer = (fn: () => unknown) => cleanups.push(fn);
test.after.each(async () => {
  const fns = cleanups.reverse();
  cleanups = [];
  for (const fn of fns) {
    try {
      await fn();
    } catch {}
  }
});
test.after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

let socketCount = 0;
function socketFile(): string {
  return path.join(tmpRoot, `s${++socketCount}.sock`);
}

const enc = (s: string) => Buffer.from(s, 'utf8');
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A server on a fresh socket, closed after the test. */
async function startServer(services: Record<string, Record<string, Method>>, opts: ConstructorParameters<typeof TtrpcServer>[0] = {}) {
  const logs: string[] = [];
  const server = new TtrpcServer({ log: (m) => logs.push(m), ...opts });
  for (const [name, methods] of Object.entries(services)) server.register(name, methods);
  const file = socketFile();
  await server.listen(file);
  defer(() => server.close());
  return { server, file, logs };
}

const echo: Record<string, Method> = {
  Echo: async (p) => p,
  Upper: async (p) => enc(Buffer.from(p).toString().toUpperCase()),
};

function requestFrame(streamId: number, service: string, method: string, payload: Uint8Array = new Uint8Array(0), extra: Partial<Proto.ttrpc.Request.$Properties> = {}): Buffer {
  return encodeFrame(streamId, MessageType.Request, 0, ttrpc.Request.encode({ service, method, payload, ...extra }).finish());
}

interface Answer {
  streamId: number;
  type: number;
  code: number;
  message: string;
  payload: Buffer;
}

/** A client speaking raw frames; collects the server's frames in arrival order. */
async function rawConnect(file: string) {
  const socket = net.createConnection({ path: file });
  defer(() => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const answers: Answer[] = [];
  let waiters: (() => void)[] = [];
  let ended = false;
  const decoder = new FrameDecoder((f: Frame) => {
    const r = ttrpc.Response.decode(f.data);
    answers.push({ streamId: f.streamId, type: f.type, code: r.status?.code ?? 0, message: r.status?.message ?? '', payload: Buffer.from(r.payload) });
    for (const w of waiters) w();
  });
  socket.on('data', (c: Buffer) => decoder.push(c));
  socket.on('error', () => {});
  socket.on('close', () => {
    ended = true;
    for (const w of waiters) w();
  });
  const waitFor = async (n: number, ms = 5000): Promise<Answer[]> => {
    const deadline = Date.now() + ms;
    while (answers.length < n) {
      if (ended) throw new Error(`connection closed after ${answers.length} of ${n} answers`);
      if (Date.now() > deadline) throw new Error(`timed out with ${answers.length} of ${n} answers`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 50);
      });
      waiters = [];
    }
    return answers.slice(0, n);
  };
  const closed = () => new Promise<void>((r) => (ended ? r() : socket.once('close', () => r())));
  return { socket, answers, waitFor, closed, isEnded: () => ended };
}

// ---------------------------------------------------------------------------------------------
// Generated messages

test('messages encode to the field numbers of containerd (golden bytes) and decode back', () => {
  // CreateTaskResponse{pid=42}: field 1 varint.
  assert.is(hex(containerd.task.v2.CreateTaskResponse.encode({ pid: 42 }).finish()), '082a');
  // KillRequest{id=c, exec_id=e, signal=9, all=true}: 1 and 2 length-delimited, 3 and 4 varints.
  assert.is(hex(containerd.task.v2.KillRequest.encode({ id: 'c', execId: 'e', signal: 9, all: true }).finish()), '0a0163' + '120165' + '1809' + '2001');
  // WaitResponse{exit_status=3, exited_at={1s, 2ns}}: 1 varint, 2 a Timestamp {1 int64, 2 int32}.
  assert.is(hex(containerd.task.v2.WaitResponse.encode({ exitStatus: 3, exitedAt: { seconds: 1, nanos: 2 } }).finish()), '0803120408011002');
  // StateResponse: status (4) is the enum, exec_id is field 11 (tag 0x5a).
  const st = containerd.task.v2.StateResponse.encode({ id: 'c1', pid: 7, status: containerd.v1.types.Status.STOPPED, exitStatus: 137, execId: 'x' }).finish();
  assert.is(hex(st), '0a026331' + '1807' + '2003' + '488901' + '5a0178');
  const back = containerd.task.v2.StateResponse.decode(st);
  assert.is(back.id, 'c1');
  assert.is(back.status, containerd.v1.types.Status.STOPPED);
  assert.is(back.exitStatus, 137);
  assert.is(back.bundle, '', 'unset strings read as ""');
  assert.is(back.exitedAt, null, 'an unset message field reads as null');
  // ttrpc's Request {service 1, method 2, payload 3, timeout_nano 4, metadata 5 {key 1, value 2}}.
  const req = ttrpc.Request.encode({ service: 's', method: 'm', payload: enc('p'), timeoutNano: 5, metadata: [{ key: 'k', value: 'v' }] }).finish();
  assert.is(hex(req), '0a0173' + '12016d' + '1a0170' + '2005' + '2a06' + '0a016b' + '120176');
  assert.is(hex(ttrpc.Response.encode({ status: { code: 12, message: 'x' }, payload: enc('p') }).finish()), '0a05080c120178120170');
  // The runc options (containerd.runc.v1.Options): binary_name 6, root 7, systemd_cgroup 9.
  assert.is(hex(containerd.runc.v1.Options.encode({ binaryName: 'tsrun', root: '/r', systemdCgroup: true }).finish()), '3205747372756e3a022f724801');
});

test('CreateTaskRequest with rootfs mounts and its options Any round-trips', () => {
  const options = containerd.runc.v1.Options.encode({ binaryName: '/usr/bin/tsrun', root: '/run/containerd/runc', ioUid: 1000, ioGid: 1000 }).finish();
  const bytes = containerd.task.v2.CreateTaskRequest.encode({
    id: 'c1',
    bundle: '/run/containerd/io.containerd.runtime.v2.task/default/c1',
    rootfs: [{ type: 'overlay', source: 'overlay', options: ['index=off', 'lowerdir=/a:/b'] }],
    terminal: true,
    stdin: '/fifo/in',
    stdout: '/fifo/out',
    options: { typeUrl: 'containerd.runc.v1.Options', value: options },
  }).finish();
  const r = containerd.task.v2.CreateTaskRequest.decode(bytes);
  assert.is(r.id, 'c1');
  assert.is(r.rootfs.length, 1);
  assert.is(r.rootfs[0].type, 'overlay');
  assert.equal(r.rootfs[0].options, ['index=off', 'lowerdir=/a:/b']);
  assert.is(r.terminal, true);
  assert.is(r.stderr, '');
  assert.is(r.options?.typeUrl, 'containerd.runc.v1.Options');
  const o = containerd.runc.v1.Options.decode(r.options!.value!);
  assert.is(o.binaryName, '/usr/bin/tsrun');
  assert.is(o.root, '/run/containerd/runc');
  assert.is(o.ioUid, 1000);
  assert.is(o.systemdCgroup, false);
});

test('an event in a ForwardRequest envelope, and cgroup metrics with 64-bit counters', () => {
  const exit = containerd.events.TaskExit.encode({ containerId: 'c1', id: 'c1', pid: 99, exitStatus: 1, exitedAt: { seconds: 1700000000, nanos: 5 } }).finish();
  const fwd = containerd.services.events.ttrpc.v1.ForwardRequest.encode({
    envelope: { timestamp: { seconds: 1700000001 }, namespace: 'default', topic: '/tasks/exit', event: { typeUrl: 'containerd.events.TaskExit', value: exit } },
  }).finish();
  const env = containerd.services.events.ttrpc.v1.ForwardRequest.decode(fwd).envelope!;
  assert.is(env.namespace, 'default');
  assert.is(env.topic, '/tasks/exit');
  assert.is(Number(env.timestamp!.seconds), 1700000001);
  const ev = containerd.events.TaskExit.decode(env.event!.value!);
  assert.is(ev.pid, 99);
  assert.is(Number(ev.exitedAt!.seconds), 1700000000);
  assert.is(ev.exitedAt!.nanos, 5);

  // uint64 values above 2^32 and up to 2^63 survive (encoded from numbers, decoded as Long).
  const big = 2 ** 62 + 2 ** 40;
  const m2 = io.containerd.cgroups.v2.Metrics.decode(
    io.containerd.cgroups.v2.Metrics.encode({
      pids: { current: 3, limit: 100 },
      cpu: { usageUsec: 123456789012 },
      memory: { usage: 2 ** 33, usageLimit: big },
      memoryEvents: { oomKill: 2 },
      io: { usage: [{ major: 8, minor: 0, rbytes: 4096 }] },
    }).finish(),
  );
  assert.is(Number(m2.cpu!.usageUsec), 123456789012);
  assert.is(Number(m2.memory!.usage), 2 ** 33);
  assert.is(String(m2.memory!.usageLimit), BigInt(big).toString());
  assert.is(Number(m2.memoryEvents!.oomKill), 2);
  assert.is(Number(m2.io!.usage![0].rbytes), 4096);
  const m1 = io.containerd.cgroups.v1.Metrics.decode(
    io.containerd.cgroups.v1.Metrics.encode({ memory: { usage: { usage: 10, limit: 9223372036854771712 } }, cpu: { usage: { total: 5, perCpu: [1, 2, 2] } } }).finish(),
  );
  assert.is(String(m1.memory!.usage!.limit), '9223372036854771712');
  assert.equal(m1.cpu!.usage!.perCpu!.map(Number), [1, 2, 2]);
  // google.rpc.Status with details.
  const s = google.rpc.Status.decode(google.rpc.Status.encode({ code: 5, message: 'nope', details: [{ typeUrl: 't', value: enc('v') }] }).finish());
  assert.is(s.details[0].typeUrl, 't');
});

// ---------------------------------------------------------------------------------------------
// Frames

test('FrameDecoder: a stream of frames cut at every byte boundary gives the same frames', () => {
  const frames = [encodeFrame(1, 1, 0, enc('hello')), encodeFrame(3, 2, 0), encodeFrame(5, 1, 7, Buffer.alloc(300, 0xab))];
  const all = Buffer.concat(frames);
  const expect = (got: Frame[]) => {
    assert.equal(
      got.map((f) => [f.streamId, f.type, f.flags, f.length, hex(f.data), f.oversized]),
      [
        [1, 1, 0, 5, hex(enc('hello')), false],
        [3, 2, 0, 0, '', false],
        [5, 1, 7, 300, hex(Buffer.alloc(300, 0xab)), false],
      ],
    );
  };
  for (let i = 0; i <= all.length; i++) {
    for (const j of [i, Math.min(all.length, i + 1), Math.min(all.length, i + 11)]) {
      const got: Frame[] = [];
      const d = new FrameDecoder((f) => got.push(f));
      d.push(all.subarray(0, i));
      d.push(all.subarray(i, j));
      d.push(all.subarray(j));
      expect(got);
      assert.is(d.pending, 0);
    }
  }
  const got: Frame[] = [];
  const d = new FrameDecoder((f) => got.push(f));
  for (let i = 0; i < all.length; i++) d.push(all.subarray(i, i + 1));
  expect(got);
});

test('FrameDecoder: an oversized frame is skipped as it arrives and reported after its data', () => {
  const got: Frame[] = [];
  const d = new FrameDecoder((f) => got.push(f));
  const header = Buffer.alloc(10);
  header.writeUInt32BE(MESSAGE_LENGTH_MAX + 1, 0);
  header.writeUInt32BE(7, 4);
  header[8] = 1;
  d.push(header);
  const chunk = Buffer.alloc(1 << 16, 1);
  let left = MESSAGE_LENGTH_MAX + 1;
  while (left > 1) {
    const n = Math.min(chunk.length, left - 1);
    d.push(chunk.subarray(0, n));
    left -= n;
  }
  assert.is(got.length, 0, 'not reported before its last byte');
  assert.ok(d.pending <= 1);
  d.push(Buffer.concat([Buffer.from([1]), encodeFrame(9, 1, 0, enc('x'))]));
  assert.equal(
    got.map((f) => [f.streamId, f.length, f.oversized, f.data.length]),
    [
      [7, MESSAGE_LENGTH_MAX + 1, true, 0],
      [9, 1, false, 1],
    ],
  );
  // Exactly the maximum is accepted.
  got.length = 0;
  d.push(encodeFrame(11, 1, 0, Buffer.alloc(MESSAGE_LENGTH_MAX)));
  assert.equal(got.map((f) => [f.streamId, f.oversized, f.data.length]), [[11, false, MESSAGE_LENGTH_MAX]]);
});

// ---------------------------------------------------------------------------------------------
// Server, raw client

test('server: a request written a byte at a time, then split at every boundary, is answered', async () => {
  const { file } = await startServer({ svc: echo });
  const c = await rawConnect(file);
  let id = 1;
  const whole = requestFrame(id, 'svc', 'Upper', enc('abc'));
  for (let i = 0; i < whole.length; i++) {
    c.socket.write(whole.subarray(i, i + 1));
    await sleep(1);
  }
  const first = await c.waitFor(1);
  assert.equal([first[0].streamId, first[0].type, first[0].code, first[0].payload.toString()], [1, MessageType.Response, 0, 'ABC']);
  const len = whole.length;
  for (let cut = 1; cut < len; cut++) {
    id += 2;
    const f = requestFrame(id, 'svc', 'Echo', enc('abc'));
    c.socket.write(f.subarray(0, cut));
    await sleep(1);
    c.socket.write(f.subarray(cut));
  }
  const all = await c.waitFor(len);
  assert.equal(
    all.slice(1).map((a) => [a.streamId, a.code, a.payload.toString()]),
    Array.from({ length: len - 1 }, (_, k) => [3 + 2 * k, 0, 'abc']),
  );
});

test('server: several frames in one write are all answered, each on its stream id', async () => {
  const { file } = await startServer({ svc: echo });
  const c = await rawConnect(file);
  c.socket.write(Buffer.concat([requestFrame(1, 'svc', 'Echo', enc('one')), requestFrame(3, 'svc', 'Upper', enc('two')), requestFrame(5, 'svc', 'Echo', enc(''))]));
  const got = (await c.waitFor(3)).map((a) => [a.streamId, a.code, a.payload.toString()]).sort((x, y) => (x[0] as number) - (y[0] as number));
  assert.equal(got, [
    [1, 0, 'one'],
    [3, 0, 'TWO'],
    [5, 0, ''],
  ]);
});

test('server: a slow call does not hold up a fast one; answers come back on their own stream ids', async () => {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let slowStarted = false;
  const { file } = await startServer({
    svc: {
      Wait: async () => {
        slowStarted = true;
        await released;
        return enc('slow');
      },
      Fast: async () => enc('fast'),
    },
  });
  const c = await rawConnect(file);
  c.socket.write(requestFrame(1, 'svc', 'Wait'));
  await sleep(20);
  c.socket.write(requestFrame(3, 'svc', 'Fast'));
  c.socket.write(requestFrame(5, 'svc', 'Fast'));
  const two = await c.waitFor(2);
  assert.ok(slowStarted);
  assert.equal(two.map((a) => [a.streamId, a.payload.toString()]), [
    [3, 'fast'],
    [5, 'fast'],
  ]);
  await sleep(30);
  assert.is(c.answers.length, 2, 'the slow one is still waiting');
  release();
  const three = await c.waitFor(3);
  assert.equal([three[2].streamId, three[2].payload.toString()], [1, 'slow']);
});

test('server: unknown service or method is Unimplemented with ttrpc\'s messages; bad stream ids and data frames are refused', async () => {
  const { file } = await startServer({ svc: echo });
  const c = await rawConnect(file);
  c.socket.write(requestFrame(1, 'nosuch.Service', 'Echo'));
  c.socket.write(requestFrame(3, 'svc', 'NoSuchMethod'));
  c.socket.write(requestFrame(5, 'svc', 'toString')); // not an own property: no such method
  c.socket.write(requestFrame(4, 'svc', 'Echo')); // even
  c.socket.write(requestFrame(3, 'svc', 'Echo')); // re-used
  c.socket.write(encodeFrame(7, MessageType.Data, 0, enc('x')));
  c.socket.write(encodeFrame(9, 0x7f, 0, enc('x'))); // unknown type: ignored
  c.socket.write(encodeFrame(11, MessageType.Request, 0, Buffer.from([0xff, 0xff, 0xff]))); // not a Request
  c.socket.write(requestFrame(13, 'svc', 'Echo', enc('still here')));
  const got = (await c.waitFor(8)).map((a) => [a.streamId, a.code, a.message.replace(/: .*/, ': …'), a.payload.toString()]);
  assert.equal(got, [
    [1, Code.Unimplemented, 'service nosuch.Service', ''],
    [3, Code.Unimplemented, 'method NoSuchMethod', ''],
    [5, Code.Unimplemented, 'method toString', ''],
    [4, Code.InvalidArgument, 'StreamID must be odd for client initiated streams', ''],
    [3, Code.InvalidArgument, 'StreamID cannot be re-used and must increment', ''],
    [7, Code.InvalidArgument, 'StreamID is no longer active', ''],
    [11, Code.InvalidArgument, 'unmarshal request error: …', ''],
    [13, Code.OK, '', 'still here'],
  ]);
});

test('server: a handler\'s TtrpcError passes through; other exceptions become Unknown (errno ones NotFound...)', async () => {
  const { file } = await startServer({
    svc: {
      NotFound: async () => {
        throw new TtrpcError(Code.NotFound, 'container "c1" not found', [{ typeUrl: 'x', value: enc('d') }]);
      },
      Plain: async () => {
        throw new Error('boom');
      },
      Sync: () => {
        throw new TtrpcError(Code.FailedPrecondition, 'sync throw');
      },
      Enoent: () => fs.promises.readFile(path.join(tmpRoot, 'missing')),
      Nothing: (async () => undefined) as unknown as Method,
    },
  });
  const c = await rawConnect(file);
  const names = ['NotFound', 'Plain', 'Sync', 'Enoent', 'Nothing'];
  names.forEach((m, i) => c.socket.write(requestFrame(1 + 2 * i, 'svc', m)));
  const got = (await c.waitFor(names.length)).sort((a, b) => a.streamId - b.streamId).map((a) => [a.code, a.message]);
  assert.equal(got, [
    [Code.NotFound, 'container "c1" not found'],
    [Code.Unknown, 'boom'],
    [Code.FailedPrecondition, 'sync throw'],
    [Code.NotFound, `ENOENT: no such file or directory, open '${path.join(tmpRoot, 'missing')}'`],
    [Code.Unknown, 'ttrpc: marshal called with nil'],
  ]);
});

test('server: an oversized frame is discarded and refused with ResourceExhausted on its stream id; the connection goes on', async () => {
  const { file, server } = await startServer({ svc: { ...echo, Big: () => Buffer.alloc(MESSAGE_LENGTH_MAX) } });
  const c = await rawConnect(file);
  const header = Buffer.alloc(10);
  header.writeUInt32BE(MESSAGE_LENGTH_MAX + 10, 0);
  header.writeUInt32BE(1, 4);
  header[8] = MessageType.Request;
  c.socket.write(header);
  c.socket.write(Buffer.alloc(MESSAGE_LENGTH_MAX + 10, 0x41));
  c.socket.write(requestFrame(3, 'svc', 'Echo', enc('after')));
  const got = await c.waitFor(2, 10000);
  assert.equal(
    got.map((a) => [a.streamId, a.code, a.message, a.payload.toString()]),
    [
      [1, Code.ResourceExhausted, `message length ${MESSAGE_LENGTH_MAX + 10} exceed maximum message size of ${MESSAGE_LENGTH_MAX}`, ''],
      [3, Code.OK, '', 'after'],
    ],
  );
  assert.is(server.connectionCount, 1);
  // A request of exactly the maximum size is read (the lengths' varints are 4 bytes either way).
  const probe = MESSAGE_LENGTH_MAX - 100;
  const overhead = ttrpc.Request.encode({ service: 'svc', method: 'Echo', payload: Buffer.alloc(probe) }).finish().length - probe;
  const data = ttrpc.Request.encode({ service: 'svc', method: 'Echo', payload: Buffer.alloc(MESSAGE_LENGTH_MAX - overhead, 0x61) }).finish();
  assert.is(data.length, MESSAGE_LENGTH_MAX);
  c.socket.write(encodeFrame(5, MessageType.Request, 0, data));
  const third = (await c.waitFor(3, 10000))[2];
  assert.equal([third.streamId, third.code, third.payload.length], [5, Code.OK, MESSAGE_LENGTH_MAX - overhead]);
  // An answer over the limit becomes a ResourceExhausted status (where ttrpc drops the connection).
  c.socket.write(requestFrame(7, 'svc', 'Big'));
  const fourth = (await c.waitFor(4, 10000))[3];
  assert.equal([fourth.streamId, fourth.code], [7, Code.ResourceExhausted]);
  assert.match(fourth.message, /^message length \d+ exceed maximum message size of 4194304$/);
  c.socket.write(requestFrame(9, 'svc', 'Upper', enc('ok')));
  assert.is((await c.waitFor(5))[4].payload.toString(), 'OK');
});

test('server: the handler context carries metadata, the timeout and a signal aborted at the deadline or on disconnect', async () => {
  const seen: CallContext[] = [];
  let abortReason: unknown;
  let disconnected!: () => void;
  const gotDisconnect = new Promise<void>((r) => (disconnected = r));
  const { file } = await startServer({
    svc: {
      Ctx: async (_p, ctx) => {
        seen.push(ctx);
        return new Uint8Array(0);
      },
      Deadline: async (_p, ctx) => {
        await new Promise((r) => ctx.signal.addEventListener('abort', r));
        abortReason = ctx.signal.reason;
        throw ctx.signal.reason;
      },
      Hang: async (_p, ctx) => {
        await new Promise((r) => ctx.signal.addEventListener('abort', r));
        disconnected();
        return new Uint8Array(0);
      },
    },
  });
  const c = await rawConnect(file);
  c.socket.write(
    requestFrame(1, 'svc', 'Ctx', undefined, {
      timeoutNano: 2_500_000_000,
      metadata: [
        { key: 'containerd-namespace-ttrpc', value: 'k8s.io' },
        { key: 'x', value: '1' },
        { key: 'x', value: '2' },
      ],
    }),
  );
  c.socket.write(requestFrame(3, 'svc', 'Ctx'));
  c.socket.write(requestFrame(5, 'svc', 'Deadline', undefined, { timeoutNano: 30_000_000 }));
  const got = await c.waitFor(3);
  assert.equal({ ...seen[0].metadata }, { 'containerd-namespace-ttrpc': ['k8s.io'], x: ['1', '2'] });
  assert.is(seen[0].timeoutMs, 2500);
  assert.is(seen[0].service, 'svc');
  assert.is(seen[0].method, 'Ctx');
  assert.is(seen[0].peer?.pid, process.pid);
  assert.is(seen[1].timeoutMs, undefined);
  assert.is(seen[1].signal.aborted, false);
  assert.ok(abortReason instanceof TtrpcError);
  assert.equal([got[2].streamId, got[2].code, got[2].message], [5, Code.DeadlineExceeded, 'context deadline exceeded']);
  c.socket.write(requestFrame(7, 'svc', 'Hang'));
  await sleep(20);
  c.socket.destroy();
  await gotDisconnect;
});

// ---------------------------------------------------------------------------------------------
// TtrpcClient

test('TtrpcClient against TtrpcServer: messages, metadata, timeouts, errors, many calls at once', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let seenNs: string[] | undefined;
  let seenTimeout: number | undefined;
  const { file } = await startServer({
    'containerd.task.v2.Task': {
      State: async (p, ctx) => {
        seenNs = ctx.metadata['containerd-namespace-ttrpc'];
        seenTimeout = ctx.timeoutMs;
        const req = containerd.task.v2.StateRequest.decode(p);
        if (req.id === 'missing') throw new TtrpcError(Code.NotFound, `container ${req.id}: not found`);
        return containerd.task.v2.StateResponse.encode({ id: req.id, execId: req.execId, pid: 1234, status: containerd.v1.types.Status.RUNNING }).finish();
      },
      Wait: async () => {
        await gate;
        return containerd.task.v2.WaitResponse.encode({ exitStatus: 7 }).finish();
      },
      Hang: () => new Promise<Uint8Array>(() => {}),
    },
  });
  const client = await TtrpcClient.connect(`unix://${file}`);
  defer(() => client.close());
  const stateReq = containerd.task.v2.StateRequest.encode({ id: 'c1', execId: 'e1' }).finish();
  const waiting = client.call('containerd.task.v2.Task', 'Wait', containerd.task.v2.WaitRequest.encode({ id: 'c1' }).finish());
  const out = await client.call('containerd.task.v2.Task', 'State', stateReq, { timeoutMs: 1500, metadata: { 'containerd-namespace-ttrpc': 'default' } });
  const st = containerd.task.v2.StateResponse.decode(out);
  assert.equal([st.id, st.execId, st.pid, st.status], ['c1', 'e1', 1234, containerd.v1.types.Status.RUNNING]);
  assert.equal(seenNs, ['default']);
  assert.is(seenTimeout, 1500);

  const many = await Promise.all(
    Array.from({ length: 50 }, (_, i) => client.call('containerd.task.v2.Task', 'State', containerd.task.v2.StateRequest.encode({ id: `c${i}` }).finish())),
  );
  assert.equal(
    many.map((b) => containerd.task.v2.StateResponse.decode(b).id),
    Array.from({ length: 50 }, (_, i) => `c${i}`),
  );

  const fail = async (p: Promise<unknown>): Promise<TtrpcError> => {
    try {
      await p;
    } catch (e) {
      assert.instance(e, TtrpcError);
      return e as TtrpcError;
    }
    throw new Error('the call succeeded');
  };
  const nf = await fail(client.call('containerd.task.v2.Task', 'State', containerd.task.v2.StateRequest.encode({ id: 'missing' }).finish()));
  assert.equal([nf.code, nf.message, String(nf)], [Code.NotFound, 'container missing: not found', 'rpc error: code = NotFound desc = container missing: not found']);
  const un = await fail(client.call('containerd.task.v2.Task', 'Nope', new Uint8Array(0)));
  assert.equal([un.code, un.message], [Code.Unimplemented, 'method Nope']);
  const t0 = Date.now();
  const dl = await fail(client.call('containerd.task.v2.Task', 'Hang', new Uint8Array(0), { timeoutMs: 50 }));
  assert.equal([dl.code, dl.message], [Code.DeadlineExceeded, 'context deadline exceeded']);
  assert.ok(Date.now() - t0 < 1000);
  const ac = new AbortController();
  const aborted = client.call('containerd.task.v2.Task', 'Hang', new Uint8Array(0), { signal: ac.signal });
  ac.abort();
  assert.is((await fail(aborted)).code, Code.Canceled);
  const big = await fail(client.call('containerd.task.v2.Task', 'State', Buffer.alloc(MESSAGE_LENGTH_MAX)));
  assert.is(big.code, Code.ResourceExhausted);

  // The slow Wait is still pending and answers once released; the connection served all the rest.
  release();
  assert.is(containerd.task.v2.WaitResponse.decode(await waiting).exitStatus, 7);
  assert.is(client.closed, false);
});

test('TtrpcClient: the server closing fails pending and later calls with Unavailable "ttrpc: closed"', async () => {
  const { file, server } = await startServer({ svc: { Hang: () => new Promise<Uint8Array>(() => {}), ...echo } });
  const client = await TtrpcClient.connect(file);
  defer(() => client.close());
  assert.is(Buffer.from(await client.call('svc', 'Echo', enc('x'))).toString(), 'x');
  const pending = client.call('svc', 'Hang', new Uint8Array(0));
  await sleep(20);
  await server.close();
  const e = await pending.then(
    () => null,
    (err: TtrpcError) => err,
  );
  assert.equal([e?.code, e?.message], [Code.Unavailable, 'ttrpc: closed']);
  await client.whenClosed;
  const later = await client.call('svc', 'Echo', enc('x')).catch((err: TtrpcError) => err);
  assert.is((later as TtrpcError).code, Code.Unavailable);
  // Connecting to nothing is a plain connect error (the caller retries).
  const refused = await TtrpcClient.connect(path.join(tmpRoot, 'nothing.sock')).catch((err: NodeJS.ErrnoException) => err);
  assert.is((refused as NodeJS.ErrnoException).code, 'ENOENT');
});

test('server.shutdown(): answers what is in flight, then closes; new connections are refused', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const { file, server } = await startServer({
    svc: {
      Slow: async () => {
        await gate;
        return enc('done');
      },
    },
  });
  const client = await TtrpcClient.connect(file);
  defer(() => client.close());
  const slow = client.call('svc', 'Slow', new Uint8Array(0));
  await sleep(20);
  const stopped = server.shutdown();
  await sleep(20);
  assert.is(client.closed, false);
  const late = await TtrpcClient.connect(file).catch((e: Error) => e);
  assert.instance(late, Error, 'the listener is closed');
  release();
  assert.is(Buffer.from(await slow).toString(), 'done');
  await stopped;
  await client.whenClosed;
  assert.is(server.connectionCount, 0);
});

test('server.listen(fd): serves on a listening socket inherited as fd 3 by another process', async () => {
  // Abstract: closing a net.Server that bound a path unlinks the path (libuv), and ours is closed
  // below so that only the child accepts. "@name" is how Go (and TtrpcClient) spell "\0name".
  const name = `tsrun-ttrpc-test-${process.pid}-${++socketCount}`;
  const listener = net.createServer();
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen('\0' + name, resolve);
  });
  defer(() => listener.close());
  const fd = (listener as unknown as { _handle: { fd: number } })._handle.fd;
  const script = `
    const { TtrpcServer } = require('./src/shim/ttrpc');
    const s = new TtrpcServer();
    s.register('svc', { Pid: async () => Buffer.from(String(process.pid)) });
    s.listen(3).then(() => process.stdout.write('ready\\n'), (e) => { console.error(e); process.exit(1); });
  `;
  const child: ChildProcess = spawn(process.execPath, ['-r', 'esbuild-register', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'inherit', fd] });
  defer(() => child.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    child.once('exit', (code) => reject(new Error(`child exited ${code}`)));
  });
  // Only the child accepts from now on.
  await new Promise<void>((r) => listener.close(() => r()));
  const client = await TtrpcClient.connect('@' + name);
  defer(() => client.close());
  assert.is(Buffer.from(await client.call('svc', 'Pid', new Uint8Array(0))).toString(), String(child.pid));
});

// ---------------------------------------------------------------------------------------------
// Peer credentials

test('peer check: a checkPeer that refuses closes the connection; one that accepts sees our credentials', async () => {
  const calls: number[][] = [];
  const refusing = await startServer({ svc: echo }, { checkPeer: (uid, gid, pid) => (calls.push([uid, gid, pid]), false) });
  const c1 = await TtrpcClient.connect(refusing.file);
  defer(() => c1.close());
  const e = await c1.call('svc', 'Echo', enc('x')).catch((err: TtrpcError) => err);
  assert.equal([(e as TtrpcError).code, (e as TtrpcError).message], [Code.Unavailable, 'ttrpc: closed']);
  assert.equal(calls, [[process.getuid!(), process.getgid!(), process.pid]]);
  assert.match(refusing.logs.join('\n'), /refusing connection from pid \d+ uid 0 gid 0 after handshake: ttrpc: invalid credentials/);
  // Positive control: the same client code against an accepting check.
  const accepting = await startServer({ svc: echo }, { checkPeer: () => true });
  const c2 = await TtrpcClient.connect(accepting.file);
  defer(() => c2.close());
  assert.is(Buffer.from(await c2.call('svc', 'Echo', enc('x'))).toString(), 'x');
});

test('peer check: the default refuses a process of another uid (65534); a check allowing it lets it in', async () => {
  assert.is(process.geteuid!(), 0, 'the test suite runs as root');
  // A raw client in plain JS (nothing for uid 65534 to compile): one request frame, then it prints
  // the hex of what came back and whether the server closed the connection.
  const frame = requestFrame(1, 'svc', 'Upper', enc('hi')).toString('hex');
  const clientJs = `
    const net = require('net');
    const s = net.createConnection(process.argv[1]);
    let got = Buffer.alloc(0);
    const done = (how) => { process.stdout.write(JSON.stringify({ how, got: got.toString('hex'), uid: process.getuid() })); process.exit(0); };
    s.on('connect', () => s.write(Buffer.from(${JSON.stringify(frame)}, 'hex')));
    s.on('data', (d) => { got = Buffer.concat([got, d]); if (got.length >= 10 && got.length >= 10 + got.readUInt32BE(0)) done('answered'); });
    s.on('close', () => done('closed'));
    s.on('error', (e) => done('error ' + e.code));
    setTimeout(() => done('timeout'), 4000);
  `;
  const runAsNobody = (file: string) =>
    new Promise<{ how: string; got: string; uid: number }>((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', clientJs, file], { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'inherit'] });
      defer(() => child.kill('SIGKILL'));
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d));
      child.once('error', reject);
      child.once('exit', () => {
        try {
          resolve(JSON.parse(out));
        } catch {
          reject(new Error(`client output: ${out}`));
        }
      });
    });

  const peers: number[] = [];
  const allowing = await startServer({ svc: echo }, { checkPeer: (uid) => (peers.push(uid), uid === 65534) });
  fs.chmodSync(allowing.file, 0o777);
  const ok = await runAsNobody(allowing.file);
  assert.is(ok.uid, 65534);
  assert.is(ok.how, 'answered', 'positive control: the uid 65534 client can connect and talk');
  assert.equal(peers, [65534]);
  const answer = ttrpc.Response.decode(Buffer.from(ok.got, 'hex').subarray(10));
  assert.is(Buffer.from(answer.payload).toString(), 'HI');

  const strict = await startServer({ svc: echo });
  fs.chmodSync(strict.file, 0o777);
  const refused = await runAsNobody(strict.file);
  // Closed before anything was read: the client sees the close, or EPIPE/ECONNRESET on its write.
  assert.match(refused.how, /^(closed|error EPIPE|error ECONNRESET)$/);
  assert.is(refused.got, '', 'nothing was answered');
  assert.match(strict.logs.join('\n'), /refusing connection from pid \d+ uid 65534 gid 65534/);
  // Root (this process) is still let in by the default check.
  const c = await TtrpcClient.connect(strict.file);
  defer(() => c.close());
  assert.is(Buffer.from(await c.call('svc', 'Echo', enc('root'))).toString(), 'root');
});

test.run();
