/**
 * The task's root filesystem: the mounts of CreateTaskRequest.rootfs (what the snapshotter
 * prepared: a bind of one layer, an overlay of several) made in order on `<bundle>/rootfs`, and
 * unmounted by Delete and by `shim delete` after a dead shim. Options are parsed with runc's table
 * (src/bundle/mount-options.ts); a read-only bind is a bind followed by a read-only remount, as
 * mount(2) ignores MS_RDONLY on the first bind.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native } from '../native/addon';
import { MS_BIND, MS_RDONLY, MS_REMOUNT, parseMountOptions } from '../bundle/mount-options';

export interface TaskMount {
  type: string;
  source: string;
  target?: string;
  options: string[];
}

const MNT_DETACH = 2;
/** mount(2) copies at most a page of data: longer overlay lowerdir lists go relative to a common directory. */
const MAX_DATA = 4095;

/** The common parent of every lowerdir (containerd's trick for long overlay lists). */
function compactLowerdirs(data: string): { cwd: string; data: string } | null {
  const parts = data.split(',');
  const i = parts.findIndex((p) => p.startsWith('lowerdir='));
  if (i < 0) return null;
  const dirs = parts[i].slice('lowerdir='.length).split(':');
  let common = path.dirname(dirs[0]);
  while (!dirs.every((d) => d.startsWith(common + '/'))) {
    if (common === '/') return null;
    common = path.dirname(common);
  }
  parts[i] = 'lowerdir=' + dirs.map((d) => path.relative(common, d)).join(':');
  return { cwd: common, data: parts.join(',') };
}

export function mountRootfs(rootfs: string, mounts: TaskMount[]): void {
  if (mounts.length === 0) return;
  fs.mkdirSync(rootfs, { recursive: true, mode: 0o711 });
  const done: string[] = [];
  try {
    for (const m of mounts) {
      const target = m.target ? path.join(rootfs, path.normalize('/' + m.target)) : rootfs;
      const o = parseMountOptions(m.options);
      const isBind = m.type === 'bind' || (o.flags & MS_BIND) !== 0;
      const flags = isBind ? o.flags | MS_BIND : o.flags;
      let data = o.data;
      if (data.length > MAX_DATA && m.type === 'overlay') {
        const compact = compactLowerdirs(data);
        if (!compact) throw new Error(`overlay options of ${data.length} bytes cannot be shortened`);
        // mount(2) resolves the relative lowerdirs against our cwd: chdir is process-wide, but
        // this is one synchronous stretch of JavaScript, so nothing else runs in between.
        const cwd = process.cwd();
        process.chdir(compact.cwd);
        try {
          native().mount(m.source, target, m.type, flags >>> 0, compact.data);
        } finally {
          process.chdir(cwd);
        }
      } else {
        native().mount(m.source, target, isBind ? '' : m.type, (flags & ~(isBind ? MS_RDONLY : 0)) >>> 0, data);
      }
      done.push(target);
      if (isBind && flags & MS_RDONLY) native().mount('', target, '', (MS_BIND | MS_REMOUNT | MS_RDONLY) >>> 0, '');
    }
  } catch (e) {
    for (const t of done.reverse()) unmountAll(t);
    throw e;
  }
}

/** Unmounts everything stacked on `target` (idempotent: nothing mounted is done). */
export function unmountAll(target: string): void {
  for (let i = 0; i < 64; i++) {
    try {
      native().umount(target, MNT_DETACH);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EINVAL' || code === 'ENOENT') return;
      throw e;
    }
  }
}
