/**
 * The engine takes no configuration from the directory tsrun is started in. tsrun runs as root
 * with its cwd wherever its caller is — often the bundle, which is the image author's. A Bun
 * executable by default reads `.env` files from its cwd into process.env (TSRUN_INIT there would
 * name the binary tsrun spawns as root) and `bunfig.toml` (whose `preload` runs code at start).
 * The CLI is compiled with both turned off (scripts/build.mjs, writeBunCli).
 *
 * Positive control: the same engine, compiling a probe with its defaults, reads both from the
 * same directory.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
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

test.run();
