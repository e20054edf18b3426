/**
 * v1 devices, runc's fs DevicesGroup.Set: the target is the config's rules with runc's defaults
 * appended (the same on create and on update, so an update can never lock out /dev/null),
 * reached from what devices.list shows by the emulator's minimal transition, then checked against
 * devices.list. Written at create, before the init joins the cgroup: the container's first
 * instruction already runs under the rules.
 */
import * as path from 'node:path';
import { containerDeviceRules, DeviceEmulator, v1RuleString } from '../devices';
import { CgroupError, readCgroupFile, writeCgroupFileAsync, writeCgroupFilesAsync } from '../util';
import type { V1Subsystem } from './controller';

export const devices: V1Subsystem = {
  name: 'devices',
  async set(r, env) {
    if (!env.creating && !r.devices) return;
    const target = DeviceEmulator.fromRules(containerDeviceRules(r.devices));
    const dir = env.dir;
    if (!dir) {
      if (env.rootless) return;
      throw new CgroupError('cannot set devices limit: the devices controller is not mounted on this host');
    }
    const listFile = path.join(dir, 'devices.list');
    try {
      const current = DeviceEmulator.fromList(readCgroupFile(listFile));
      const steps = current.transition(target);
      if (steps.length) {
        // An "a" reset passes through allow-all or deny-all: freeze whoever could see it.
        const reset = steps.some((s) => s.type === 'a');
        const thaw = reset ? await env.freezeForDeviceReset() : null;
        const ruleFile = (rule: { allow: boolean }) => path.join(dir, rule.allow ? 'devices.allow' : 'devices.deny');
        try {
          // All of them in one go on the thread pool, in order, up to the first refused.
          await writeCgroupFilesAsync(steps.map((rule) => [ruleFile(rule), v1RuleString(rule)]));
        } catch (e) {
          // Stopped after a reset (the reset is the first step): the cgroup may allow more than
          // either rule set. Fail closed (deny all), then back to the old rules when devices.list
          // showed them all.
          const written = (e as { index?: number }).index ?? steps.length;
          if (reset && written > 0) {
            try {
              await writeCgroupFileAsync(path.join(dir, 'devices.deny'), 'a');
              if (!current.isDenyList()) await writeCgroupFilesAsync(new DeviceEmulator().transition(current).map((rule) => [path.join(dir, 'devices.allow'), v1RuleString(rule)]));
            } catch {}
          }
          throw e;
        } finally {
          await thaw?.();
        }
      }
      // runc's final check: the kernel must show exactly the target (a deny-list only shows its mode).
      const now = DeviceEmulator.fromList(readCgroupFile(listFile));
      if (target.isDenyList() ? !now.isDenyList() : !now.equals(target)) {
        throw new CgroupError(`${listFile}: the device rules in force (${now.list().join(', ')}) are not the ones configured (${target.list().join(', ')})`);
      }
    } catch (e) {
      // runc ignores device cgroup errors when rootless: it cannot work there.
      if (env.rootless) return;
      throw e;
    }
  },
};
