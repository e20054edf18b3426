/** events: stats (and oom events) of a container that is not stopped. */
import { cgroupStatsJson } from '../cgroups/stats';
import { cgroupOf, NO_CGROUP, WHY_NO_CGROUP } from './container-cgroup';
import type { RuntimeContext } from './context';
import { deriveStatus, loadContainer } from './state';
import { waitGone } from './proc';
import type { SavedState } from './state-store';
import { checkTransition } from './transitions';

export interface EventsOptions {
  intervalMs: number;
  once: boolean;
  /** One event as runc's JSON line (runc's types.Event), without the newline. */
  emit: (line: string) => void;
}

/**
 * runc's Event {type, id, data}: the stats are the reader's JSON as it is (exact uint64s).
 * bin/tsrun's front door prints `events --stats` the same way (addon/cli/front.cpp render_stats).
 */
function eventLine(type: 'stats' | 'oom', id: string, statsJson?: string): string {
  return `{"type":${JSON.stringify(type)},"id":${JSON.stringify(id)}${statsJson === undefined ? '' : `,"data":${statsJson}`}}`;
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
    const empty = cgroupStatsJson('none', {});
    if (opts.once) {
      opts.emit(eventLine('stats', id, empty));
      return;
    }
    while (deriveStatus(ctx.root, saved) !== 'stopped') {
      opts.emit(eventLine('stats', id, empty));
      await untilNextOrStopped(saved, opts.intervalMs);
    }
    return;
  }
  const cg = cgroupOf(ctx, saved);
  if (opts.once) {
    opts.emit(eventLine('stats', id, cg.statsJson()));
    return;
  }
  const stopOom = cg.watchOom(() => opts.emit(eventLine('oom', id)));
  try {
    while (deriveStatus(ctx.root, saved) !== 'stopped') {
      try {
        opts.emit(eventLine('stats', id, cg.statsJson()));
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
