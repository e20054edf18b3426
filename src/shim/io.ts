/**
 * The stdio of a task as containerd hands it over: fifo paths (ctr's and the CRI's default),
 * `file://` and `binary://` log URIs, or a terminal. The container gets real pipes (never Node's
 * socketpairs: `echo > /dev/stdout` fails on a socket) and the shim copies between them and
 * containerd's ends with non-blocking streams (pipeReader, pipeWriter), so nothing ever blocks the
 * event loop or a thread.
 *
 * The shim holds a writer of the stdin fifo of its own (as the runc shim does), so containerd
 * closing its end is not an EOF; CloseIO drops that writer, the copy reads what is left and the
 * container's stdin ends.
 * Output fifos are opened read-write too: that open never blocks (a write-only open waits for a
 * reader), and writes are kept until containerd reads them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import * as tty from 'node:tty';
import { native } from '../native/addon';

const C = fs.constants;

export interface StdioPaths {
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
}

/** What the container gets, and what the shim keeps until the process is done. */
export interface ProcessIo {
  /** fds 0, 1, 2 for the container process (closed by `release` once it has them). */
  readonly stdio: [number, number, number];
  /** After the process has its copies: the shim closes the container's ends of the pipes. */
  release(): void;
  /** Terminal: the pty master the init sent; copying starts here. */
  attachConsole(master: number): void;
  resize(width: number, height: number): void;
  /** CloseIO: the process sees EOF on stdin (after what was already written). */
  closeStdin(): void;
  /** Resolves once all output is copied (the process and whatever inherited its stdio are done). */
  readonly drained: Promise<void>;
  /** Tears everything down (Delete). */
  close(): void;
}

function openFifo(p: string): number {
  // O_NONBLOCK keeps the open from waiting for the other side; libuv sets it on its handles anyway.
  const fd = fs.openSync(p, C.O_RDWR | C.O_NONBLOCK | C.O_NOFOLLOW);
  if (!fs.fstatSync(fd).isFIFO()) {
    fs.closeSync(fd);
    throw new Error(`${p} is not a fifo`);
  }
  return fd;
}

/** Ends an output once what was written is flushed (a fifo cannot be shut down like a socket). */
function finish(s: Writable | null): void {
  if (!s || s.destroyed) return;
  if (s instanceof net.Socket) {
    if (s.writableLength === 0) s.destroy();
    else s.once('drain', () => s.destroy());
  } else s.end();
}

/** Bun's API, where the engine is Bun (this file is also run by Node: unit tests, TSRUN_SHIM_ENGINE=node). */
interface BunFileSink {
  write(chunk: Uint8Array): number | Promise<number>;
  flush(): number | Promise<number>;
  end(): number | Promise<number>;
}
const bun = (globalThis as { Bun?: { file(fd: number): { stream(): ReadableStream<Uint8Array>; writer(o: { highWaterMark: number }): BunFileSink } } }).Bun;

/**
 * The writing end of a pipe or fifo as a stream that owns `fd`: on Node a libuv pipe handle
 * (net.Socket). On Bun, net.Socket({ fd }) loses what a full pipe does not take (90 kB into a
 * pipe arrive as 64 kB), so there it is Bun's FileSink, which polls the fd until all is written;
 * a chunk is done once flushed, so writableLength is what is still on its way. Bun does not close
 * an fd it was given: the stream does, once it is done.
 */
function pipeWriter(fd: number): Writable {
  if (!bun) return new net.Socket({ fd, readable: false, writable: true });
  const sink = bun.file(fd).writer({ highWaterMark: 64 * 1024 });
  return new Writable({
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _encoding, cb) {
      try {
        const written = sink.write(chunk);
        Promise.resolve(written)
          .then(() => sink.flush())
          .then(() => cb(), cb);
      } catch (e) {
        cb(e as Error);
      }
    },
    final(cb) {
      Promise.resolve(sink.flush()).then(() => cb(), cb);
    },
    destroy(err, cb) {
      // The fd is closed once the sink lets go of it (what it still holds written, or 2 s).
      const close = () => {
        try {
          fs.closeSync(fd);
        } catch {}
      };
      try {
        const ended = sink.end();
        if (typeof ended === 'number') close();
        else Promise.race([ended, new Promise((r) => setTimeout(r, 2000).unref())]).then(close, close);
      } catch {
        close();
      }
      cb(err);
    },
  });
}

/**
 * The reading end of a pipe or fifo as a stream that owns `fd`, never a blocking read on a
 * thread: on Node a libuv pipe handle (net.Socket). Bun's net.Socket({ fd }) never reads from a
 * pipe, and its fs.ReadStream does plain read(2)s (EAGAIN on a non-blocking fifo, a blocked
 * worker on a blocking pipe: with a few idle containers nothing else gets done), so there it is
 * Bun.file(fd).stream(), which polls the fd in the event loop; Bun does not close an fd it was
 * given, so the stream closes it once it is done.
 */
function pipeReader(fd: number): Readable {
  if (!bun) return new net.Socket({ fd, readable: true, writable: false });
  const s = Readable.fromWeb(bun.file(fd).stream() as import('node:stream/web').ReadableStream<Uint8Array>, { highWaterMark: 64 * 1024 });
  s.once('close', () => {
    try {
      fs.closeSync(fd);
    } catch {}
  });
  return s;
}

/** The scheme of a stdout "path": fifo (a plain path), file:// or binary://. */
function logUri(p: string): URL | null {
  if (!p.includes('://')) return null;
  return new URL(p);
}

export interface IoOptions {
  id: string;
  namespace: string;
  log: (msg: string) => void;
}

export async function openProcessIo(paths: StdioPaths, opts: IoOptions): Promise<ProcessIo> {
  const devNull = () => fs.openSync('/dev/null', 'r+');
  const toClose: number[] = [];
  const streams: Readable[] = [];
  const drains: Promise<void>[] = [];
  let logger: ChildProcess | null = null;
  let stdinWriter: Writable | null = null;
  let stdinSource: Readable | null = null;
  let master = -1;
  let masterStream: tty.ReadStream | null = null;
  let masterWrite = -1;

  const ended = (s: Readable) =>
    new Promise<void>((resolve) => {
      s.once('end', resolve);
      s.once('close', resolve);
      s.once('error', () => resolve());
    });

  // Where output goes: a writable stream per stream name (fifo, file or a logger's pipe).
  const sinks: Record<'stdout' | 'stderr', Writable | null> = { stdout: null, stderr: null };
  const uri = logUri(paths.stdout);
  if (uri && uri.protocol === 'file:') {
    const file = decodeURIComponent(uri.pathname);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const fd = fs.openSync(file, C.O_WRONLY | C.O_CREAT | C.O_APPEND, 0o644);
    // A regular file never blocks: the thread pool write is a plain append.
    sinks.stdout = fs.createWriteStream('', { fd, autoClose: true });
    sinks.stderr = fs.createWriteStream('', { fd: fs.openSync(file, C.O_WRONLY | C.O_APPEND), autoClose: true });
  } else if (uri && uri.protocol === 'binary:') {
    // containerd's logging binary protocol: stdout on fd 3, stderr on fd 4, and a "ready" pipe on
    // fd 5 that the logger closes once it is set up.
    const [outR, outW] = native().pipe();
    const [errR, errW] = native().pipe();
    const [readyR, readyW] = native().pipe();
    const args: string[] = [];
    // containerd's NewBinaryIO: each query key, then its value, as separate arguments ("" too).
    for (const [k, v] of uri.searchParams) args.push(k, v);
    const bin = decodeURIComponent(uri.pathname);
    logger = spawn(bin, args, {
      stdio: ['ignore', 'ignore', 'ignore', outR, errR, readyW],
      env: { ...process.env, CONTAINER_ID: opts.id, CONTAINER_NAMESPACE: opts.namespace },
      detached: true,
    });
    logger.on('error', (e) => opts.log(`logging binary ${bin}: ${e.message}`));
    for (const fd of [outR, errR, readyW]) fs.closeSync(fd);
    const ready = pipeReader(readyR);
    await new Promise<void>((resolve) => {
      ready.on('data', () => {});
      ready.once('end', resolve);
      ready.once('close', resolve);
      ready.once('error', () => resolve());
    });
    ready.destroy();
    sinks.stdout = pipeWriter(outW);
    sinks.stderr = pipeWriter(errW);
  } else {
    if (paths.stdout) sinks.stdout = pipeWriter(openFifo(paths.stdout));
    if (paths.stderr && !paths.terminal) sinks.stderr = pipeWriter(openFifo(paths.stderr));
  }
  for (const s of Object.values(sinks)) if (s) s.on('error', (e: Error) => opts.log(`io: ${e.message}`));

  const stdio: [number, number, number] = [-1, -1, -1];
  let stdinKeeper = -1;
  if (paths.stdin) {
    // Reader first (a non-blocking read-only open never waits), then our writer, before libuv
    // reads anything: without a writer a fifo reads as EOF.
    const r = fs.openSync(paths.stdin, C.O_RDONLY | C.O_NONBLOCK | C.O_NOFOLLOW);
    if (!fs.fstatSync(r).isFIFO()) {
      fs.closeSync(r);
      throw new Error(`${paths.stdin} is not a fifo`);
    }
    stdinKeeper = fs.openSync(paths.stdin, C.O_WRONLY | C.O_NONBLOCK);
    stdinSource = pipeReader(r);
    stdinSource.on('error', (e) => opts.log(`stdin: ${e.message}`));
  }
  if (!paths.terminal) {
    if (stdinSource) {
      const [r, w] = native().pipe();
      stdio[0] = r;
      toClose.push(r);
      stdinWriter = pipeWriter(w);
      stdinWriter.on('error', () => {});
      const writer = stdinWriter;
      stdinSource.pipe(writer, { end: false });
      stdinSource.once('end', () => finish(writer));
    } else {
      stdio[0] = devNull();
      toClose.push(stdio[0]);
    }
    for (const [i, name] of [
      [1, 'stdout'],
      [2, 'stderr'],
    ] as const) {
      const sink = sinks[name];
      if (!sink) {
        stdio[i] = devNull();
        toClose.push(stdio[i]);
        continue;
      }
      const [r, w] = native().pipe();
      stdio[i] = w;
      toClose.push(w);
      const src = pipeReader(r);
      streams.push(src);
      drains.push(ended(src));
      // Both streams write into one sink (file://): neither may end it on its own.
      src.pipe(sink as NodeJS.WritableStream, { end: false });
    }
  } else {
    // The init's stdio is /dev/null (the container's is the pty); copying starts at attachConsole.
    for (let i = 0; i < 3; i++) {
      stdio[i] = devNull();
      toClose.push(stdio[i]);
    }
  }

  let consoleDone: () => void = () => {};
  const consoleDrained = paths.terminal ? new Promise<void>((r) => (consoleDone = r)) : Promise.resolve();
  let released = false;
  const io: ProcessIo = {
    stdio,
    release() {
      if (released) return;
      released = true;
      for (const fd of toClose) {
        try {
          fs.closeSync(fd);
        } catch {}
      }
    },
    attachConsole(fd: number) {
      master = fd;
      masterWrite = native().dup(fd);
      masterStream = new tty.ReadStream(fd);
      masterStream.on('error', () => {}); // EIO once the last slave is closed: the end
      const out = sinks.stdout;
      if (out) masterStream.pipe(out as NodeJS.WritableStream, { end: false });
      else masterStream.resume();
      ended(masterStream).then(() => {
        // The stream closed the master: a late ResizePty finds no terminal (the process is gone).
        master = -1;
        consoleDone();
      });
      if (stdinSource) {
        stdinSource.on('data', (d: Buffer) => {
          // The pty buffer is large and the terminal reads it; a full one drops input as a
          // terminal would (never blocks the loop: the fd is non-blocking).
          try {
            fs.writeSync(masterWrite, d);
          } catch {}
        });
      }
    },
    resize(width: number, height: number) {
      if (master >= 0) native().setWinsize(master, width, height);
    },
    closeStdin() {
      // The copy then reads to EOF (once containerd's writer is closed too) and ends the pipe.
      if (stdinKeeper >= 0) {
        fs.closeSync(stdinKeeper);
        stdinKeeper = -1;
      }
    },
    drained: Promise.all([...drains, consoleDrained]).then(() => {}),
    close() {
      io.release();
      io.closeStdin();
      stdinSource?.destroy();
      stdinWriter?.destroy();
      for (const s of streams) s.destroy();
      masterStream?.destroy();
      if (masterWrite >= 0) {
        try {
          fs.closeSync(masterWrite);
        } catch {}
        masterWrite = -1;
      }
      for (const s of Object.values(sinks)) finish(s);
      logger?.unref();
    },
  };
  // Once the output is all copied, containerd's readers get their EOF.
  io.drained.then(() => {
    for (const s of Object.values(sinks)) finish(s);
  });
  return io;
}
