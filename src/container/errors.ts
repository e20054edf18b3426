/**
 * Errors a user (or containerd, which matches some of these strings) sees. The wording of the
 * lifecycle errors is runc's: containerd's go-runc and dockerd compare against it. The kind says
 * what kind of failure it is, so that callers branch on it and never on the text: the CLI prints
 * the message, the shim maps the code onto a gRPC status.
 */
export type ErrorKind = 'NotFound' | 'AlreadyExists' | 'FailedPrecondition' | 'InvalidArgument' | 'Unavailable' | 'Internal' | 'Unknown';

export class RuntimeError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    readonly kind: ErrorKind = 'Unknown',
  ) {
    super(message);
  }
}

/** The phase of tsrun-init that failed (addon/init/PROTOCOL.md, "Messages"). */
export type InitPhase = 'plan' | 'namespaces' | 'rootfs' | 'hooks' | 'process' | 'exec';

/**
 * A failure tsrun-init reported: its message (runc-like wording), the phase it was in and the
 * errno (0 when the failure was not a system call's). A plan the init refuses is ours (the
 * library built it); a failed createContainer/startContainer hook is the caller's precondition,
 * as a failed runtime hook is.
 */
export class InitError extends RuntimeError {
  constructor(
    message: string,
    readonly phase: InitPhase | undefined,
    readonly errno: number,
    exitCode = 1,
  ) {
    super(message, exitCode, phase === 'plan' ? 'Internal' : phase === 'hooks' ? 'FailedPrecondition' : 'Unknown');
  }
}

export const errNotExist = () => new RuntimeError('container does not exist', 1, 'NotFound');
export const errExists = () => new RuntimeError('container with given ID already exists', 1, 'AlreadyExists');
export const errNotRunning = () => new RuntimeError('container not running', 1, 'FailedPrecondition');
export const errPaused = () => new RuntimeError('container paused', 1, 'FailedPrecondition');
export const errNotPaused = () => new RuntimeError('container not paused', 1, 'FailedPrecondition');
/** A wrong state for the operation (runc's "cannot start an already running container"…). */
export const errState = (message: string) => new RuntimeError(message, 1, 'FailedPrecondition');
export const errInvalid = (message: string) => new RuntimeError(message, 1, 'InvalidArgument');

const KINDS: ReadonlySet<string> = new Set<ErrorKind>(['NotFound', 'AlreadyExists', 'FailedPrecondition', 'InvalidArgument', 'Unavailable', 'Internal', 'Unknown']);

/**
 * The kind of any error: ours carry one. So do the errors of the modules below the library (a
 * config, seccomp profile or signal that does not validate: InvalidArgument; a hook that failed:
 * FailedPrecondition), as a `kind` field of their own: this module does not import them (they
 * are not loaded by every command), and neither the text nor the class's name is matched.
 */
export function errorKind(e: unknown): ErrorKind {
  if (e instanceof RuntimeError) return e.kind;
  const kind = e instanceof Error ? (e as { kind?: unknown }).kind : undefined;
  return typeof kind === 'string' && KINDS.has(kind) ? (kind as ErrorKind) : 'Unknown';
}
