/** The console socket of `run -t` in the foreground and of the shim: the init sends its pty master there. */
import { native } from '../native/addon';
import { RuntimeError } from './errors';
import { sleep } from './proc';

export interface ConsoleServer {
  /** The pty master the init sent (it arrives before "ready"). */
  master(): Promise<number>;
  close(): void;
}

/**
 * A unix socket for the init's pty master. Connections are accepted paused, so that libuv never
 * reads from them: the message carries the fd (SCM_RIGHTS) and only recvmsg may consume it.
 */
export async function listenForConsole(socketPath: string): Promise<ConsoleServer> {
  const net = await import('node:net');
  const server = net.createServer({ pauseOnConnect: true });
  let conn: import('node:net').Socket | null = null;
  server.on('connection', (c) => {
    if (conn) c.destroy();
    else conn = c;
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  return {
    async master() {
      for (let i = 0; i < 500; i++) {
        const fd = (conn as unknown as { _handle?: { fd?: number } } | null)?._handle?.fd;
        if (fd !== undefined && fd >= 0) {
          try {
            return native().recvFd(fd).fd;
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
          }
        }
        await sleep(10);
      }
      throw new RuntimeError('the container init did not send its terminal');
    },
    close() {
      (conn as import('node:net').Socket | null)?.destroy();
      server.close();
    },
  };
}
