/**
 * One flock(2) per container, on its state directory. Every operation that changes a container
 * holds it for its whole duration, so `delete` racing `start` (or two `create`s of one id)
 * serialise. flock is released by the kernel when the process dies, so a crashed tsrun never
 * leaves a container locked. Taken non-blocking in a loop so the shim's event loop never blocks.
 */
import * as fs from 'node:fs';
import { native } from '../native/addon';
import { sleep } from './proc';

export interface ContainerLock {
  release(): void;
}

export async function lockDir(dir: string, timeoutMs = 60_000): Promise<ContainerLock> {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  const deadline = Date.now() + timeoutMs;
  try {
    for (let delay = 1; ; delay = Math.min(delay * 2, 20)) {
      try {
        native().flock(fd, true, true);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EWOULDBLOCK' && (e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        if (Date.now() > deadline) throw new Error(`timed out waiting for the lock on ${dir}`);
        await sleep(delay);
      }
    }
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      fs.closeSync(fd); // closing the last fd drops the flock
    },
  };
}
