/**
 * One cgroup v2 controller's part of linux.resources (runc's fs2 setXxx/statXxx): every one
 * writes to the container's single directory. The manager (manager.ts) walks CONTROLLERS in order.
 */
import type { LinuxResources } from '../types';

export interface V2SetEnv {
  /** At create (device rules are always written then), not update. */
  readonly creating: boolean;
  readonly rootless: boolean;
  warn(msg: string): void;
}

export interface V2Controller {
  /** The controller's name in cgroup.controllers (or the resources' key it handles). */
  readonly name: string;
  /** Writes with writeCgroupFileAsync, in order, one after the other. */
  set?(dir: string, r: LinuxResources, env: V2SetEnv): Promise<void>;
}
