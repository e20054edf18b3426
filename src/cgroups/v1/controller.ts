/**
 * One cgroup v1 subsystem (runc's fs.subsystem): what it writes of linux.resources. The manager
 * (manager.ts) walks SUBSYSTEMS in runc's Set order. The stats have their own reader (stats.ts).
 */
import type { LinuxResources } from '../types';

/** What a subsystem gets from the manager for one set. */
export interface V1SetEnv {
  /**
   * The subsystem's directory, asked for only when a value is to be written there: without one
   * (hierarchy not mounted, or skipped rootless) runc's "cannot set <name> limit" error.
   */
  need(): string;
  /** The directory when there is one (the subsystem decides whether its absence is an error). */
  readonly dir: string | undefined;
  /** At create (device rules are always written then), not update. */
  readonly creating: boolean;
  readonly rootless: boolean;
  warn(msg: string): void;
  /** The manager's pids and freezer, for a device rules change that must be atomic. */
  freezeForDeviceReset(): Promise<(() => Promise<void>) | null>;
}

export interface V1Subsystem {
  /** Its hierarchy: the key of CgroupState.paths. */
  readonly name: string;
  /** Writes with writeCgroupFileAsync, in runc's order, one after the other. */
  set?(r: LinuxResources, env: V1SetEnv): Promise<void>;
}
