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
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
