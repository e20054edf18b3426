/**
 * The shim daemon's first moments, against the shipped executable (bin/.containerd-shim-tsrun-v2
 * run as the daemon, the way `start` runs it): it binds the group's socket, then tells `start` on
 * fd 3. When `start` is gone by then (it printed no address: no containerd will ever call the
 * socket), the daemon exits and leaves no socket file; the control is a `start` that reads the
 * byte, which gets a daemon listening on its socket.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native } from '../src/native/addon';
import { controlSocketPath } from '../src/shim/control';

const REPO = path.resolve(__dirname, '..');
const DAEMON = path.join(REPO, 'bin/.containerd-shim-tsrun-v2');

function daemonArgs(dir: string) {
  // An address of its own: the daemon's control socket is named after it.
  const address = path.join(dir, 'containerd.sock');
  const socket = path.join(dir, 'group.sock');
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, TSRUN_SHIM_SOCKET: socket, TSRUN_SHIM_LINGER_MS: '0' };
  return { address, socket, env, args: ['-namespace', 'shimdaemon-test', '-address', address, '-id', 'c1'] };
}

test('start gone before the daemon says it listens: the daemon exits, no socket is left; control: a start that reads gets a listening daemon', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-test-shimdaemon-'));
  const n = native();
  let child: ReturnType<typeof spawn> | undefined;
  const { address, socket, env, args } = daemonArgs(dir);
  try {
    // Control: `start`'s end of the pipe stays open and reads the byte.
    {
      child = spawn(DAEMON, args, { cwd: dir, env, stdio: ['ignore', 'ignore', 'ignore', 'pipe'], detached: true });
      const ready = child.stdio[3] as NodeJS.ReadableStream;
      const said = await new Promise<string>((resolve) => {
        const timer = setTimeout(() => resolve('nothing within 20 s'), 20_000);
        ready.once('data', (d: Buffer) => (clearTimeout(timer), resolve(d.toString())));
        ready.once('end', () => (clearTimeout(timer), resolve('end of the pipe: the daemon died')));
      });
      (ready as unknown as { destroy(): void }).destroy();
      assert.is(said, 'x', 'control: the daemon said it listens');
      assert.ok(fs.statSync(socket).isSocket(), 'control: the group socket is there');
      child.kill('SIGKILL');
      child = undefined;
      fs.rmSync(socket, { force: true });
      fs.rmSync(controlSocketPath(address), { force: true });
    }
    // `start` is gone: its end of the pipe is closed before the daemon writes.
    const [ours, theirs] = n.socketpair();
    fs.closeSync(ours);
    const r = spawnSync(DAEMON, args, { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe', theirs], encoding: 'utf8', timeout: 20_000 });
    fs.closeSync(theirs);
    assert.is(r.signal, null, `the daemon ended by itself (${r.signal})`);
    assert.is(r.status, 1, r.stderr);
    assert.not.ok(fs.existsSync(socket), 'no socket file left for a group nobody was told of');
    assert.not.ok(fs.existsSync(controlSocketPath(address)), 'no control socket either');
  } finally {
    child?.kill('SIGKILL');
    fs.rmSync(socket, { force: true });
    fs.rmSync(controlSocketPath(address), { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
