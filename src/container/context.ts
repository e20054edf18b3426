/** What every container operation needs from its caller (the CLI, or the shim in-process). */
export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export interface RuntimeContext {
  /** State root, e.g. /run/tsrun. */
  root: string;
  log: Logger;
  /** --systemd-cgroup */
  systemdCgroup: boolean;
  /**
   * runc's rootless cgroup manager (--rootless, auto: euid != 0 or inside a user namespace):
   * cgroup permission errors skip the cgroup with a warning when nothing needs it. Absent: auto.
   */
  rootlessCgroups?: boolean;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
