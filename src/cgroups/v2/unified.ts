/**
 * linux.resources.unified: raw cgroup2 files, written last (they override what the typed
 * resources set). A write that fails says why in runc's words when the key is the cause.
 */
import * as path from 'node:path';
import { CgroupError, errCode, readOptional, writeCgroupFileAsync } from '../util';
import type { V2Controller } from './controller';

export const unified: V2Controller = {
  name: 'unified',
  async set(dir, r) {
    if (!r.unified) return;
    // (The keys were checked to be file names before anything was written: validate.ts.)
    const avail = new Set((readOptional(path.join(dir, 'cgroup.controllers')) ?? '').trim().split(/\s+/));
    for (const [k, v] of Object.entries(r.unified)) {
      try {
        await writeCgroupFileAsync(path.join(dir, k), v);
      } catch (e) {
        const c = errCode(e);
        if (c === 'ENOENT' || c === 'EACCES' || c === 'EPERM') {
          const dot = k.indexOf('.');
          if (dot <= 0) throw new CgroupError(`linux.resources.unified: key ${JSON.stringify(k)} must be in the form CONTROLLER.PARAMETER`);
          const ctrl = k.slice(0, dot);
          if (ctrl !== 'cgroup' && !avail.has(ctrl)) throw new CgroupError(`linux.resources.unified: ${JSON.stringify(k)} can't be set: controller ${JSON.stringify(ctrl)} not available`);
        }
        throw e;
      }
    }
  },
};
