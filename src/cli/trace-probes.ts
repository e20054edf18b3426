/**
 * TSRUN_TRACE only (see trace.ts): marks taken by wrapping the Node APIs the runtime calls, so
 * that the runtime's own code needs no trace points. Loaded only when tracing is on.
 *
 *   load <module> / load-end       a module or chunk loaded by require (outermost only)
 *   config                         a config.json or process.json opened (validation follows)
 *   state                          a state.json or intent.json read or written
 *   cgroup / cgroup-end            a run of file operations under /sys/fs/cgroup
 *   spawn <name> / spawned         the init's spawn (the one trace point of the runtime: a
 *                                  diagnostics channel, src/native/init-process.ts) or a hook's
 *                                  child_process.spawn, and its return
 *   send <type> / recv <type>      the init's sync-socket messages (plan, pid, placed, ready…)
 *   fifo / fifo-end                start: the exec fifo opened for the release … the fifos removed
 */
import { subscribe } from 'node:diagnostics_channel';
import { CGROUP_WRITE_CHANNEL } from '../cgroups/util';
import { INIT_SPAWN_CHANNEL } from '../native/init-process';
import type { Mark } from './trace';

// The module object itself (an `import * as` namespace cannot be patched).
// eslint-disable-next-line @typescript-eslint/no-var-requires
const fs = require('node:fs') as typeof import('node:fs');

export function installProbes(marks: Mark[]): void {
  const now = () => performance.now();
  const mark = (label: string) => {
    const t = now();
    // A run of the same kind of operation is one span: "x-end" then "x" again soon is dropped.
    const last = marks[marks.length - 1];
    if (last && last[0] === `${label.split(' ')[0]}-end` && t - last[1] < 0.5 && !label.startsWith('load')) {
      marks.pop();
      return;
    }
    marks.push([label, t]);
  };

  // Module loads: chunks of the bundle, builtins loaded lazily, the validators. child_process is
  // probed when something loads it (not before: `state` never does).
  let cpPatched = false;
  const maybePatch = (id: string, mod: unknown) => {
    if (!cpPatched && (id === 'node:child_process' || id === 'child_process')) {
      cpPatched = true;
      patchChildProcess(mod as typeof import('node:child_process'));
    }
    return mod;
  };
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const Module = require('node:module') as { prototype: { require: (id: string) => unknown } };
    const orig = Module.prototype.require;
    let depth = 0;
    Module.prototype.require = function (this: unknown, id: string) {
      if (depth > 0) return maybePatch(id, orig.call(this, id));
      depth++;
      const at = marks.length;
      const t0 = now();
      marks.push([`load ${id.replace(/^.*\//, '')}`, t0]);
      try {
        return maybePatch(id, orig.call(this, id));
      } finally {
        depth--;
        const t1 = now();
        // Builtins already loaded (fs, path…) return at once: not worth a mark.
        if (t1 - t0 < 0.05 && marks.length === at + 1) marks.pop();
        else marks.push(['load-end', t1]);
      }
    };
  } catch {}
  // Bun's require does not go through Module.prototype.require; its child_process costs nothing.
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  if (process.versions.bun) maybePatch('node:child_process', require('node:child_process'));

  const pathOf = (p: unknown) => (typeof p === 'string' ? p : p instanceof URL ? p.pathname : Buffer.isBuffer(p) ? p.toString() : '');
  /** fds opened under /sys/fs/cgroup: their reads and writes are cgroup work too. */
  const cgroupFds = new Set<number>();
  type FsName = 'openSync' | 'mkdirSync' | 'rmdirSync' | 'rmSync' | 'readFileSync' | 'writeFileSync' | 'writeSync' | 'readSync' | 'closeSync';
  const wrapFs = (name: FsName) => {
    const orig = fs[name] as (...a: unknown[]) => unknown;
    (fs as unknown as Record<string, unknown>)[name] = function (this: unknown, ...a: unknown[]) {
      let kind = '';
      if (typeof a[0] === 'number') {
        if (cgroupFds.has(a[0])) kind = 'cgroup';
        if (name === 'closeSync') cgroupFds.delete(a[0]);
      } else {
        const p = pathOf(a[0]);
        if (p.startsWith('/sys/fs/cgroup/')) kind = 'cgroup';
        else if (name === 'openSync' && /\/(config|process)[^/]*\.json$/.test(p)) kind = 'config';
        else if ((name === 'openSync' || name === 'readFileSync') && /\/\.?(state|intent)\.json[^/]*$/.test(p)) kind = 'state';
        else if (name === 'openSync' && p.endsWith('/exec.fifo')) kind = 'fifo';
        else if (name === 'rmSync' && p.endsWith('/start.fifo')) kind = 'fifo-end';
      }
      if (kind === 'cgroup') mark('cgroup');
      else if (kind) marks.push([kind, now()]);
      let r: unknown;
      try {
        r = orig.apply(this, a);
        return r;
      } finally {
        if (kind === 'cgroup') {
          if (name === 'openSync' && typeof r === 'number') cgroupFds.add(r);
          marks.push(['cgroup-end', now()]);
        }
      }
    };
  };
  for (const n of ['openSync', 'mkdirSync', 'rmdirSync', 'rmSync', 'readFileSync', 'writeFileSync', 'writeSync', 'readSync', 'closeSync'] as const) wrapFs(n);

  // The thread pool's versions: cgroup mkdirs, rmdirs and state files go through fs.promises, a
  // cgroup's writes through the addon (src/cgroups/util.ts publishes them). A cgroup operation is
  // a span from the call until it settles (the CLI awaits each one in turn).
  const fsp = fs.promises as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const cgroupEnd = () => marks.push(['cgroup-end', now()]);
  for (const name of ['mkdir', 'rmdir', 'readdir', 'open', 'rename'] as const) {
    const orig = fsp[name];
    fsp[name] = function (this: unknown, ...a: unknown[]) {
      const p = pathOf(a[0]);
      if (/\/\.?(state|intent)\.json[^/]*$/.test(p)) marks.push(['state', now()]);
      if (!p.startsWith('/sys/fs/cgroup/')) return orig.apply(this, a);
      mark('cgroup');
      const r = orig.apply(this, a);
      r.then(cgroupEnd, cgroupEnd);
      return r;
    };
  }
  subscribe(CGROUP_WRITE_CHANNEL, (msg) => {
    if ((msg as { phase: string }).phase === 'write') mark('cgroup');
    else cgroupEnd();
  });

  // The init's spawn (published by src/native/init-process.ts) and its sync socket; hooks' spawns.
  subscribe(INIT_SPAWN_CHANNEL, (msg) => {
    const m = msg as { phase: 'spawn' | 'spawned' | 'send' | 'recv'; type?: string; exited?: Promise<unknown> };
    if (m.phase === 'spawn') {
      marks.push(['spawn tsrun-init', now()]);
      return;
    }
    if (m.phase === 'send' || m.phase === 'recv') {
      marks.push([`${m.phase} ${m.type ?? '?'}`, now()]);
      return;
    }
    marks.push(['spawned', now()]);
    m.exited?.then(() => marks.push(['init exit', now()]));
  });

  function patchChildProcess(cp: typeof import('node:child_process')): void {
    const spawn = cp.spawn;
    (cp as { spawn: unknown }).spawn = function (this: unknown, ...a: unknown[]) {
      const bin = String(a[0]).replace(/^.*\//, '');
      marks.push([`spawn ${bin}`, now()]);
      const child = (spawn as (...x: unknown[]) => import('node:child_process').ChildProcess).apply(this, a);
      marks.push(['spawned', now()]);
      return child;
    };
  }
}
