/** pause: running or created → paused; resume: paused → running (transitions.ts). */
import { cgroupOf } from './container-cgroup';
import type { RuntimeContext } from './context';
import { containerDir } from './ids';
import { lockContainer } from './lock';
import { deriveStatus, loadContainer } from './state';
import { checkTransition } from './transitions';

export async function pauseContainer(ctx: RuntimeContext, id: string): Promise<void> {
  // State is read under the lock: a delete or another start in between is seen.
  const lock = await lockContainer(ctx.root, id);
  try {
    const saved = loadContainer(ctx.root, id);
    if (checkTransition('pause', deriveStatus(ctx.root, saved), id) === 'unchanged') return;
    await cgroupOf(ctx, saved, 'freeze').freeze();
  } finally {
    lock.release();
  }
}

export async function resumeContainer(ctx: RuntimeContext, id: string): Promise<void> {
  // State is read under the lock: a delete or another start in between is seen.
  const lock = await lockContainer(ctx.root, id);
  try {
    const saved = loadContainer(ctx.root, id);
    checkTransition('resume', deriveStatus(ctx.root, saved), id);
    await cgroupOf(ctx, saved, 'freeze').thaw();
  } finally {
    lock.release();
  }
}
