/**
 * v2 devices: the rules become an eBPF BPF_CGROUP_DEVICE program (runc's devicefilter), which
 * only the native addon can load (see deviceFilterLoader).
 */
import { containerDeviceRules, type DeviceRule } from '../devices';
import { CgroupError } from '../util';
import type { V2Controller } from './controller';

export type DeviceFilterLoader = (cgroupDir: string, rules: DeviceRule[]) => void;

let registeredLoader: DeviceFilterLoader | null = null;

/** Lets the native layer (or a test) provide the eBPF device filter loader. */
export function setDeviceFilterLoader(fn: DeviceFilterLoader | null): void {
  registeredLoader = fn;
}

/**
 * The loader: a registered one, else `loadDeviceFilter` from the addon wrapper when it has one.
 * Looked up at use time, so importing src/cgroups never loads the addon.
 */
function deviceFilterLoader(): DeviceFilterLoader | null {
  if (registeredLoader) return registeredLoader;
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const mod = require('../../native/addon');
    if (typeof mod.loadDeviceFilter === 'function') return mod.loadDeviceFilter;
    const n = typeof mod.native === 'function' ? mod.native() : null;
    if (n && typeof n.loadDeviceFilter === 'function') return (dir: string, rules: DeviceRule[]) => n.loadDeviceFilter(dir, rules);
  } catch {}
  return null;
}

export const devices: V2Controller = {
  name: 'devices',
  async set(dir, r, env) {
    if (!env.creating && !r.devices) return;
    const rules = containerDeviceRules(r.devices);
    const loader = deviceFilterLoader();
    if (!loader) {
      if (env.rootless) return;
      // TODO(native): src/native/addon.ts must export loadDeviceFilter(cgroupDir, rules), which
      // attaches a BPF_CGROUP_DEVICE program (runc's devicefilter) to the cgroup.
      throw new CgroupError('device rules on cgroup v2 need the native eBPF loader (loadDeviceFilter in src/native/addon.ts is not available)');
    }
    try {
      loader(dir, rules);
    } catch (e) {
      // runc's fs2: device errors are ignored when rootless (an unprivileged user may not load
      // BPF_CGROUP_DEVICE programs); its devices are the host's nodes, bound with the user's access.
      if (!env.rootless) throw e;
      env.warn(`rootless: device rules not applied (${(e as Error).message}); the container's devices are host nodes bound with the user's own access`);
    }
  },
};
