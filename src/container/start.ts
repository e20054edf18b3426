/** start: created → running (transitions.ts). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runHooksWarnOnly } from '../hooks/run';
import { native } from '../native/addon';
import type { RuntimeContext } from './context';
import { RuntimeError } from './errors';
import { containerDir } from './ids';
import { lockContainer } from './lock';
import { isSameProcessAlive } from './proc';
import { deriveStatus, loadContainer, ociState } from './state';
import { EXEC_FIFO, START_REPLY_FIFO, writeState, type SavedState } from './state-store';
import { checkTransition } from './transitions';

/** Releases the init waiting on its exec fifo, then runs the poststart hooks. */
export async function startContainer(ctx: RuntimeContext, id: string): Promise<void> {
  // State is read under the lock: a delete or another start in between is seen.
  const lock = await lockContainer(ctx.root, id);
  let saved: SavedState;
  try {
    saved = loadContainer(ctx.root, id);
    checkTransition('start', deriveStatus(ctx.root, saved), id);
    const fifo = path.join(containerDir(ctx.root, id), EXEC_FIFO);
    let fd: number;
    try {
      // Non-blocking: if no init holds the fifo any more, ENXIO instead of waiting forever.
      fd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    } catch (e) {
      throw new RuntimeError(`cannot start container: exec fifo: ${(e as Error).message}`);
    }
    // The reply fifo is opened before the byte is written, so no reply can be missed.
    const replyPath = path.join(containerDir(ctx.root, id), START_REPLY_FIFO);
    let reply = -1;
    try {
      reply = fs.openSync(replyPath, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    } catch {
      // A container created by an older tsrun: no reply channel.
    }
    try {
      fs.writeSync(fd, '0');
    } finally {
      fs.closeSync(fd);
    }
    let failure = '';
    if (reply >= 0) {
      try {
        failure = await readUntilEof(reply, saved);
      } finally {
        fs.closeSync(reply);
      }
    }
    fs.rmSync(fifo, { force: true });
    fs.rmSync(replyPath, { force: true });
    if (failure) {
      // The init stops the container itself; poststop runs at delete, as after any stop.
      throw new RuntimeError(failure.trim().split('\n').pop()!);
    }
    saved.started = true;
    await writeState(ctx.root, saved);
  } finally {
    lock.release();
  }
  // After the lock: a slow poststart hook must not hold up kill or delete of the container.
  await runHooksWarnOnly('poststart', saved.config.hooks?.poststart, JSON.stringify(ociState(saved, 'running')), (m) => ctx.log.warn(m));
}

/**
 * Reads the start reply fifo until every writer is gone: the init holds it until its execve
 * (CLOEXEC) succeeds or it writes why it failed and exits. Woken by the fifo itself: readable
 * when there is data, hung up when the last writer went — also when the init dies, since the
 * init's is the only writer (stage 0 closed its copy after the clone).
 */
async function readUntilEof(fd: number, saved: SavedState): Promise<string> {
  const buf = Buffer.alloc(4096);
  let text = '';
  for (;;) {
    let n: number;
    try {
      n = fs.readSync(fd, buf, 0, buf.length, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      // Writers remain but nothing to read yet.
      if (!isSameProcessAlive(saved.initPid, saved.initStartTime)) return text;
      await new Promise<boolean>((resolve) => native().waitReadable(fd, -1, resolve));
      continue;
    }
    if (n === 0) return text;
    text += buf.toString('utf8', 0, n);
  }
}
