/**
 * Hooks run by the runtime process itself, in the runtime namespace: prestart, createRuntime,
 * poststart and poststop. (createContainer and startContainer run inside the container and are
 * executed by tsrun-init.) Each gets the container state JSON on stdin, its own args (args[0] is
 * argv[0], like execve) and env, and is killed when its timeout passes.
 */
import { spawn } from 'node:child_process';
import type { Hook } from '../bundle/types';
import type { ErrorKind } from '../container/errors';

export type HookPhase = 'prestart' | 'createRuntime' | 'createContainer' | 'startContainer' | 'poststart' | 'poststop';

/** A hook that failed or timed out: the caller's precondition (errorKind). */
export class HookError extends Error {
  readonly kind: ErrorKind = 'FailedPrecondition';
}

/**
 * `cwd`: the working directory runc gives the hook — the bundle for the hooks of create and run
 * (runc chdirs into the bundle), the caller's own (undefined) for start's poststart and delete's
 * poststop. Relative paths in a hook's args resolve as they do under runc.
 */
export async function runHook(phase: HookPhase, index: number, hook: Hook, stateJson: string, cwd?: string): Promise<void> {
  const args = hook.args && hook.args.length > 0 ? hook.args : [hook.path];
  const env: Record<string, string> = {};
  for (const kv of hook.env ?? []) {
    const eq = kv.indexOf('=');
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const what = `${phase} hook #${index} (${hook.path})`;
  await new Promise<void>((resolve, reject) => {
    const child = spawn(hook.path, args.slice(1), {
      argv0: args[0],
      env,
      cwd,
      stdio: ['pipe', 'inherit', 'pipe'],
    });
    let stderr = '';
    let timedOut = false;
    const timer =
      hook.timeout && hook.timeout > 0
        ? setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, hook.timeout * 1000)
        : null;
    child.stderr!.on('data', (d: Buffer) => {
      if (stderr.length < 4096) stderr += d.toString();
    });
    // A hook that does not read its stdin must not fail with EPIPE.
    child.stdin!.on('error', () => {});
    child.stdin!.end(stateJson);
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new HookError(`${what}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : e.message}`));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (timedOut) return reject(new HookError(`${what}: timeout after ${hook.timeout}s`));
      if (code === 0) return resolve();
      const detail = stderr.trim() ? `, stderr: ${stderr.trim().split('\n').slice(-1)[0]}` : '';
      reject(new HookError(`${what}: ${signal ? `killed by signal ${signal}` : `exit status ${code}`}${detail}`));
    });
  });
}

/** Runs the hooks of one phase in order; the first failure stops the rest and is thrown. */
export async function runHooks(phase: HookPhase, hooks: Hook[] | undefined, stateJson: string, cwd?: string): Promise<void> {
  for (const [i, hook] of (hooks ?? []).entries()) await runHook(phase, i, hook, stateJson, cwd);
}

/**
 * Phases whose failures the spec turns into warnings (poststart, poststop): every hook runs, each
 * failure goes to `warn`.
 */
export async function runHooksWarnOnly(phase: HookPhase, hooks: Hook[] | undefined, stateJson: string, warn: (m: string) => void, cwd?: string): Promise<void> {
  for (const [i, hook] of (hooks ?? []).entries()) {
    try {
      await runHook(phase, i, hook, stateJson, cwd);
    } catch (e) {
      warn((e as Error).message);
    }
  }
}
