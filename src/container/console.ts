/** The console socket of `run -t` in the foreground and of the shim: the init sends its pty master there. */
import { native } from '../native/addon';
import { RuntimeError } from './errors';

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
  let connected: (c: import('node:net').Socket) => void = () => {};
  const connection = new Promise<import('node:net').Socket>((resolve) => (connected = resolve));
  server.on('connection', (c) => {
    if (conn) c.destroy();
    else connected((conn = c));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  return {
    async master() {
      // Woken by the connection, then by the socket's readability (the addon's poll: libuv must
      // not read, see above); 5 s for both, as long as it ever took.
      const deadline = Date.now() + 5000;
      const notSent = () => new RuntimeError('the container init did not send its terminal');
      let timer: NodeJS.Timeout | undefined;
      const c = await Promise.race([connection, new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), 5000)))]);
      clearTimeout(timer);
      const fd = (c as unknown as { _handle?: { fd?: number } } | null)?._handle?.fd;
      if (fd === undefined || fd < 0) throw notSent();
      for (;;) {
        try {
          return native().recvFd(fd).fd;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        }
        const left = deadline - Date.now();
        if (left <= 0 || !(await new Promise<boolean>((resolve) => native().waitReadable(fd, left, resolve)))) throw notSent();
      }
    },
    close() {
      (conn as import('node:net').Socket | null)?.destroy();
      server.close();
    },
  };
}
