/**
 * The engine takes no configuration from the directory tsrun is started in. tsrun runs as root
 * with its cwd wherever its caller is — often the bundle, which is the image author's. A Bun
 * executable by default reads `.env` files from its cwd into process.env (TSRUN_INIT there would
 * name the binary tsrun spawns as root) and `bunfig.toml` (whose `preload` runs code at start).
 * The CLI is compiled with both turned off (scripts/build.mjs, writeBunCli), and so is the
 * containerd shim, which containerd starts with its cwd in the bundle.
 *
 * Positive controls: the same engine, compiling a probe with its defaults, reads both from the
 * same directory; for the shim, dist/shim.js itself compiled with the defaults.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO } from '../helpers/tsrun';
import { withSandbox } from './helpers';

const BUN = path.join(REPO, 'node_modules/@oven/bun-linux-x64/bin/bun');

/** A cwd that would configure a Bun executable: .env and bunfig.toml with a preload. */
function plantEngineConfig(dir: string): { initMarker: string; preloadMarker: string } {
  const initMarker = path.join(dir, 'planted-init-ran');
  const preloadMarker = path.join(dir, 'planted-preload-ran');
  const init = path.join(dir, 'planted-init');
  fs.writeFileSync(init, `#!/bin/sh\ntouch ${initMarker}\nexit 1\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(dir, '.env'), `TSRUN_INIT=${init}\nTSRUN_PLANTED=from-dotenv\n`);
  fs.writeFileSync(path.join(dir, 'preload.js'), `require('fs').writeFileSync(${JSON.stringify(preloadMarker)}, 'x');\n`);
  fs.writeFileSync(path.join(dir, 'bunfig.toml'), `preload = ["./preload.js"]\n`);
  return { initMarker, preloadMarker };
}

withSandbox(test, 'a .env and a bunfig.toml in the cwd configure nothing: tsrun runs its own init and no preload', ['true'], (s) => {
  const { initMarker, preloadMarker } = plantEngineConfig(s.dir);
  s.chownToUser(s.dir);
  const r = s.tsrun(['run', '-b', s.bundle, s.id]);
  assert.is(r.status, 0, `run: ${r.stderr}`);
  assert.not.ok(fs.existsSync(initMarker), 'the planted TSRUN_INIT ran');
  assert.not.ok(fs.existsSync(preloadMarker), 'the planted preload ran');

  // Control: an executable compiled by the same engine with its defaults reads both.
  const probeSrc = path.join(s.dir, 'probe.js');
  fs.writeFileSync(probeSrc, `console.log(process.env.TSRUN_PLANTED ?? 'none');\n`);
  const probe = path.join(s.dir, 'probe');
  const b = spawnSync(BUN, ['build', '--compile', probeSrc, '--outfile', probe], { encoding: 'utf8', cwd: path.dirname(BUN) });
  assert.is(b.status, 0, `control: bun build: ${b.stderr}`);
  const p = spawnSync(probe, [], { encoding: 'utf8', cwd: s.dir });
  assert.is(p.stdout.trim(), 'from-dotenv', 'control: a default Bun executable reads .env from its cwd');
  assert.ok(fs.existsSync(preloadMarker), 'control: a default Bun executable runs the preload of bunfig.toml in its cwd');
});

/** A listening unix socket at `p` (the shim's `start` then prints the address, and spawns nothing). */
function listenAt(p: string): Promise<net.Server> {
  fs.rmSync(p, { force: true });
  const srv = net.createServer((c) => c.destroy());
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(p, () => resolve(srv));
  });
}

test('the shim: a .env and a bunfig.toml in its cwd (the bundle) configure nothing', async () => {
  const shim = path.join(REPO, 'bin/containerd-shim-tsrun-v2');
  const engine = path.join(REPO, 'bin/.containerd-shim-tsrun-v2');
  assert.ok(fs.existsSync(engine), `${engine} missing: build first`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-test-shimcfg-'));
  const servers: net.Server[] = [];
  try {
    const { preloadMarker } = plantEngineConfig(dir);
    // `start` without -namespace takes $NAMESPACE (containerd sets it): the planted one would
    // name another socket. Both answer, so `start` only prints the address it computed.
    fs.appendFileSync(path.join(dir, '.env'), 'NAMESPACE=planted-ns\n');
    const address = path.join(dir, 'ctrd.sock');
    const socketOf = (ns: string) => `/run/containerd/s/${createHash('sha256').update(path.join(address, ns, 'c1')).digest('hex')}`;
    fs.mkdirSync('/run/containerd/s', { recursive: true, mode: 0o711 });
    for (const ns of ['', 'planted-ns']) servers.push(await listenAt(socketOf(ns)));
    const env = { ...process.env };
    delete env.NAMESPACE;
    const args = ['-address', address, '-publish-binary', '/bin/true', '-id', 'c1', 'start'];
    const r = spawnSync(shim, args, { encoding: 'utf8', cwd: dir, env, timeout: 30000 });
    assert.is(r.status, 0, `shim start: ${r.stderr}`);
    assert.is(r.stdout, `unix://${socketOf('')}`, 'the shim took its namespace from the planted .env');
    assert.not.ok(fs.existsSync(preloadMarker), 'the planted preload ran in the shim');

    // Control: the same shim compiled with the engine's defaults reads both.
    const probe = path.join(dir, 'shim-default');
    const b = spawnSync(BUN, ['build', '--compile', path.join(REPO, 'dist/shim.js'), '--outfile', probe], { encoding: 'utf8', cwd: path.dirname(BUN) });
    assert.is(b.status, 0, `control: bun build: ${b.stderr}`);
    const p = spawnSync(probe, args, { encoding: 'utf8', cwd: dir, env, timeout: 30000 });
    assert.is(p.status, 0, `control: shim start: ${p.stderr}`);
    assert.is(p.stdout, `unix://${socketOf('planted-ns')}`, 'control: a default-compiled shim takes NAMESPACE from .env in its cwd');
    assert.ok(fs.existsSync(preloadMarker), 'control: a default-compiled shim runs the preload of bunfig.toml in its cwd');
  } finally {
    for (const srv of servers) srv.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
