/** update: new resources for a container that is not stopped; the status does not change. */
import { withRollback } from '../cgroups/util';
import type { LinuxResources } from '../bundle/types';
import { cgroupOf } from './container-cgroup';
import type { RuntimeContext } from './context';
import { errInvalid } from './errors';
import { containerDir } from './ids';
import { lockContainer } from './lock';
import { deriveStatus, loadContainer } from './state';
import { writeState } from './state-store';
import { checkTransition } from './transitions';

/** Drops undefined members (and empty objects) so that "not given" never reaches the cgroup code. */
function prune<T>(v: T): T | undefined {
  if (Array.isArray(v)) return v;
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const p = prune(x);
      if (p !== undefined) out[k] = p;
    }
    return Object.keys(out).length ? (out as T) : undefined;
  }
  return v === undefined || v === null ? undefined : v;
}

/** Merges an update into the saved resources (runc keeps the config it last applied). */
function mergeResources(base: Record<string, any>, update: Record<string, any>): Record<string, any> {
  const out: Record<string, any> = { ...base };
  for (const [k, v] of Object.entries(update)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && base[k] && typeof base[k] === 'object' ? mergeResources(base[k], v) : v;
  }
  return out;
}

export async function updateContainer(ctx: RuntimeContext, id: string, resources: Record<string, any>): Promise<void> {
  loadContainer(ctx.root, id); // "container does not exist" before anything else
  // Validated before anything is written, with config.json's schema for linux.resources.
  const { resourcesProblems } = await import('../bundle/load');
  const problems = resourcesProblems(resources);
  if (problems.length) throw errInvalid(`invalid resources: ${problems.join('; ')}`);
  const lock = await lockContainer(ctx.root, id);
  try {
    // Read under the lock: two racing updates must not lose one another's changes.
    const saved = loadContainer(ctx.root, id);
    checkTransition('update', deriveStatus(ctx.root, saved), id);
    const update = prune(resources) ?? {};
    // A write that fails half-way restores what was already written: all or nothing.
    const cg = cgroupOf(ctx, saved, 'update');
    await withRollback(() => cg.update(update as LinuxResources));
    const linux = (saved.config.linux ??= {});
    linux.resources = mergeResources((linux.resources ?? {}) as Record<string, any>, update) as LinuxResources;
    await writeState(ctx.root, saved);
  } finally {
    lock.release();
  }
}

