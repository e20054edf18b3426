/**
 * Errors a user (or containerd, which matches some of these strings) sees. The wording of the
 * lifecycle errors is runc's: containerd's go-runc and dockerd compare against it.
 */
export class RuntimeError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

export const errNotExist = () => new RuntimeError('container does not exist');
export const errExists = () => new RuntimeError('container with given ID already exists');
export const errNotRunning = () => new RuntimeError('container not running');
export const errPaused = () => new RuntimeError('container paused');
export const errNotPaused = () => new RuntimeError('container not paused');
