/**
 * One flock(2) per container, on its state directory. Every operation that changes a container
 * holds it for its whole duration, so `delete` racing `start` (or two `create`s of one id)
 * serialise. flock is released by the kernel when the process dies, so a crashed tsrun never
 * leaves a container locked. Uncontended, it is one non-blocking flock; a held lock is waited for
 * by a blocking flock on a thread of its own (the addon's flockWait), so that neither the event
 * loop (the shim's) blocks nor anything polls.
 */
import * as fs from 'node:fs';
import { native } from '../native/addon';
import { errNotExist } from './errors';
import { containerDir, validateId } from './ids';
import { checkRoot } from './state-store';

export interface ContainerLock {
  release(): void;
}

/**
 * The lock of container `id` in `root`. The root is checked first (owner, mode, not a symlink):
 * nothing inside a root others may write is opened, not even to lock it. A container that does
 * not exist is runc's "container does not exist".
 */
export async function lockContainer(root: string, id: string, timeoutMs?: number): Promise<ContainerLock> {
  validateId(id);
  if (!checkRoot(root)) throw errNotExist();
  try {
    return await lockDir(containerDir(root, id), timeoutMs);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw errNotExist();
    throw e;
  }
}

async function lockDir(dir: string, timeoutMs = 60_000): Promise<ContainerLock> {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    try {
      native().flock(fd, true, true);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EWOULDBLOCK' && (e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      await new Promise<void>((resolve, reject) =>
        native().flockWait(fd, true, timeoutMs, (err) => {
          if (!err) resolve();
          else reject(err.code === 'ETIMEDOUT' ? new Error(`timed out waiting for the lock on ${dir}`) : err);
        }),
      );
    }
  } catch (e) {
    // After a timeout the waiting thread may still get the lock: closing fd lets go of it then.
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
