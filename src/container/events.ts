/** events: stats (and oom events) of a container that is not stopped. */
import { cgroupOf, NO_CGROUP, WHY_NO_CGROUP } from './container-cgroup';
import type { RuntimeContext } from './context';
import { deriveStatus, loadContainer } from './state';
import { waitGone } from './proc';
import type { SavedState } from './state-store';
import { checkTransition } from './transitions';

export interface EventsOptions {
  intervalMs: number;
  once: boolean;
  emit: (event: { type: string; id: string; data?: unknown }) => void;
}

/** The next interval, cut short when the init exits (the stream ends then: stopped). */
function untilNextOrStopped(saved: SavedState, intervalMs: number): Promise<boolean> {
  return waitGone(saved.initPid, saved.initStartTime, intervalMs);
}

/**
 * runc's events: `--stats` prints one stats event; otherwise a stats event every interval and an
 * oom event whenever the kernel OOM-kills in the container, until the container stops.
 */
export async function containerEvents(ctx: RuntimeContext, id: string, opts: EventsOptions): Promise<void> {
  const saved = loadContainer(ctx.root, id);
  checkTransition('events', deriveStatus(ctx.root, saved), id);
  if (!saved.cgroup) {
    // runc prints empty statistics for a rootless container without a cgroup; so does tsrun,
    // and says so.
    ctx.log.warn(`events: ${NO_CGROUP.any}${WHY_NO_CGROUP}: the statistics are empty`);
    const { emptyStats } = await import('../cgroups/manager');
    if (opts.once) {
      opts.emit({ type: 'stats', id, data: emptyStats() });
      return;
    }
    while (deriveStatus(ctx.root, saved) !== 'stopped') {
      opts.emit({ type: 'stats', id, data: emptyStats() });
      await untilNextOrStopped(saved, opts.intervalMs);
    }
    return;
  }
  const cg = cgroupOf(ctx, saved);
  if (opts.once) {
    opts.emit({ type: 'stats', id, data: cg.stats() });
    return;
  }
  const stopOom = cg.watchOom(() => opts.emit({ type: 'oom', id }));
  try {
    while (deriveStatus(ctx.root, saved) !== 'stopped') {
      try {
        opts.emit({ type: 'stats', id, data: cg.stats() });
      } catch (e) {
        // The cgroup vanishes with the container: that ends the stream, it is not an error.
        if (deriveStatus(ctx.root, saved) === 'stopped') break;
        ctx.log.warn(`stats: ${(e as Error).message}`);
      }
      await untilNextOrStopped(saved, opts.intervalMs);
    }
  } finally {
    stopOom();
  }
}
