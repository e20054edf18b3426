/**
 * What only a command-line process does around the container library: the fds it was given to
 * pass on (LISTEN_FDS, --preserve-fds), its own terminal proxied to a container's pty, signals
 * forwarded to a container run in the foreground. The library (src/container) never touches
 * `process` of its host; a daemon such as the shim passes its own stdio and fds explicitly.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RuntimeContext } from '../container/context';
import { listenForConsole, type ConsoleServer } from '../container/console';
import { createContainer, type CreateOptions } from '../container/create';
import { deleteContainer } from '../container/delete';
import { RuntimeError } from '../container/errors';
import { startExec, type ExecOptions } from '../container/exec';
import { containerDir } from '../container/ids';
import { sleep } from '../container/proc';
import { loadContainer, ociState } from '../container/state';
import { runHooksWarnOnly } from '../hooks/run';

/** The fds a container process inherits after stdio: LISTEN_FDS (systemd socket activation) and
 * --preserve-fds, as runc passes them. Returns the fds and the env to add. */
export function passedFds(preserveFds: number): { fds: number[]; env: string[] } {
  const fds: number[] = [];
  const env: string[] = [];
  const listenFds = Number(process.env.LISTEN_FDS ?? 0);
  // Only fds meant for us: systemd sets LISTEN_PID to the pid it activated.
  if (listenFds > 0 && Number(process.env.LISTEN_PID) === process.pid) {
    for (let i = 0; i < listenFds; i++) fds.push(3 + i);
    env.push(`LISTEN_FDS=${listenFds}`, 'LISTEN_PID=1');
  }
  const base = 3 + fds.length;
  for (let i = 0; i < preserveFds; i++) fds.push(base + i);
  for (const fd of fds) {
    try {
      fs.fstatSync(fd);
    } catch {
      throw new RuntimeError(`preserved fd ${fd} is not open`);
    }
  }
  return { fds, env };
}

/**
 * Connects a pty master to our stdio. `stop` waits (briefly) until the container's output is
 * drained — the read ends with EIO once the last slave fd is closed — then restores our terminal.
 */
export async function proxyTerminal(master: number): Promise<() => Promise<void>> {
  const tty = await import('node:tty');
  const stdinRaw = process.stdin.isTTY ? (process.stdin.setRawMode(true), true) : false;
  const fromContainer = new tty.ReadStream(master);
  const drained = new Promise<void>((resolve) => {
    fromContainer.on('error', () => resolve());
    fromContainer.on('end', () => resolve());
    fromContainer.on('close', () => resolve());
  });
  // Node's raw mode keeps ONLCR on our terminal, which would turn the container terminal's
  // "\r\n" into "\r\r\n": hand it "\n" and let our terminal add the "\r" back.
  const crlf = process.stdout.isTTY;
  fromContainer.on('data', (d: Buffer) => process.stdout.write(crlf ? d.toString('latin1').replace(/\r\n/g, '\n') : d, crlf ? 'latin1' : undefined));
  const toContainer = (d: Buffer) => {
    try {
      fs.writeSync(master, d);
    } catch {}
  };
  process.stdin.on('data', toContainer);
  return async () => {
    await Promise.race([drained, sleep(5000)]);
    process.stdin.off('data', toContainer);
    if (stdinRaw) process.stdin.setRawMode(false);
    process.stdin.pause();
    fromContainer.destroy();
  };
}

export interface RunOptions extends CreateOptions {
  /** --preserve-fds: fds after stdio and LISTEN_FDS to pass on. */
  preserveFds?: number;
  detach?: boolean;
  keep?: boolean;
}

/** run: create + start (+ wait for the exit status and delete, unless detached). */
export async function runContainer(ctx: RuntimeContext, opts: RunOptions): Promise<number> {
  const { saved, init, consoleMaster } = await createContainer(ctx, { ...opts, passFds: passedFds(opts.preserveFds ?? 0) }, { waitForExit: !opts.detach });
  const stopProxy = consoleMaster !== undefined ? await proxyTerminal(consoleMaster) : async () => {};
  // The init execs the user process right after "ready": it is running now.
  await runHooksWarnOnly('poststart', saved.config.hooks?.poststart, JSON.stringify(ociState(saved, 'running')), (m) => ctx.log.warn(m), saved.bundle);
  if (opts.detach || !init) return 0;
  const forward = (sig: NodeJS.Signals) => {
    try {
      process.kill(saved.initPid, sig);
    } catch {}
  };
  const forwarded: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];
  for (const s of forwarded) process.on(s, forward);
  let status = 255;
  try {
    for (;;) {
      const msg = await init.next();
      if (msg.type === 'exit') {
        status = msg.status;
        break;
      }
      if (msg.type === 'eof') break;
    }
  } finally {
    for (const s of forwarded) process.off(s, forward);
    await stopProxy();
  }
  if (!opts.keep) {
    try {
      await deleteContainer(ctx, saved.id, true);
    } catch (e) {
      ctx.log.warn(`delete after run: ${(e as Error).message}`);
    }
  }
  return status;
}

/**
 * exec as the CLI runs it: in the foreground without a console socket tsrun takes the pty itself
 * and connects it to its own stdio (runc's behaviour, for run as for exec); resolves with the
 * exit status (0 when detached, once it runs).
 */
export async function execProcess(ctx: RuntimeContext, cliOpts: ExecOptions & { preserveFds?: number }): Promise<number> {
  const opts: ExecOptions = { ...cliOpts, passFds: passedFds(cliOpts.preserveFds ?? 0) };
  const ownConsole = !!opts.process.terminal && !opts.consoleSocket && !opts.detach;
  if (!ownConsole) return (await startExec(ctx, opts)).exited;
  const saved = loadContainer(ctx.root, opts.id);
  const socketPath = path.join(containerDir(ctx.root, saved.id), `exec-${process.pid}-${Date.now()}.sock`);
  const consoleServer: ConsoleServer = await listenForConsole(socketPath);
  let stop: (() => Promise<void>) | undefined;
  try {
    const started = await startExec(ctx, { ...opts, consoleSocket: socketPath });
    stop = await proxyTerminal(await consoleServer.master());
    return await started.exited;
  } finally {
    await stop?.();
    consoleServer.close();
    fs.rmSync(socketPath, { force: true });
  }
}

