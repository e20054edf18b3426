#!/usr/bin/env node
// Builds everything tsrun needs at run time, in order:
//   1. ajv standalone validators (schemas/ → dist/schemas/validators.js), so that validation
//      costs a require() and no schema compilation at start-up;
//   2. the static container init (addon/init/tsrun-init), and the shim's protobuf code;
//   3. the N-API addon (build/Release/tsrun_native.node), against the system Node headers
//      (node-gyp must never try to download headers: this machine reaches no nodejs.org);
//   4. esbuild bundles of the CLI and the shim (one file each: fewer modules to load at start);
//   5. bin/tsrun and bin/containerd-shim-tsrun-v2, whose shebang is the absolute path of the
//      Node 22 binary from node_modules (43 ms start-up against 125 ms for the system Node 20).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const only = process.argv.slice(2);
const want = (step) => only.length === 0 || only.includes(step);
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
const node22 = path.join(root, 'node_modules/node/bin/node');
if (!fs.existsSync(node22)) throw new Error(`${node22} missing: run npm install first`);

if (want('schemas') && fs.existsSync(path.join(root, 'scripts/build-schemas.mjs'))) {
  run(process.execPath, ['scripts/build-schemas.mjs']);
}

if (want('init')) run('make', ['-s', '-C', 'addon/init']);

// The shim's protobuf messages (src/shim/proto → src/shim/gen), before the bundle that includes them.
if (want('proto') || want('bundle')) run(process.execPath, ['scripts/build-proto.mjs', '--if-stale']);

if (want('addon') && fs.existsSync(path.join(root, 'binding.gyp'))) {
  const nodedir = fs.existsSync('/usr/include/node/node_api.h') ? '/usr' : path.dirname(path.dirname(process.execPath));
  run(process.execPath, [path.join(root, 'node_modules/node-gyp/bin/node-gyp.js'), 'rebuild', `--nodedir=${nodedir}`, '--loglevel=warn']);
}

if (want('bundle')) {
  const esbuild = await import('esbuild');
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {}
  const version = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version;
  const common = {
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    sourcemap: 'linked',
    // Less to read and parse at every start (the compile cache then holds less, too).
    minify: true,
    keepNames: true,
    logLevel: 'warning',
    define: { __TSRUN_VERSION__: JSON.stringify(version), __TSRUN_COMMIT__: JSON.stringify(commit) },
  };
  const entries = [
    ['src/cli/main.ts', 'dist/tsrun.js', 'bin/tsrun'],
    ['src/shim/main.ts', 'dist/shim.js', 'bin/containerd-shim-tsrun-v2'],
  ];
  for (const [entry, out, bin] of entries) {
    if (!fs.existsSync(path.join(root, entry))) continue;
    await esbuild.build({ ...common, entryPoints: [path.join(root, entry)], outfile: path.join(root, out) });
    // The compile cache makes the second and later starts skip parsing/compiling the bundle.
    const launcher = `#!${node22}
try { require('node:module').enableCompileCache(${JSON.stringify(path.join(root, 'dist/.compile-cache'))}); } catch {}
require(${JSON.stringify(path.join(root, out))});
`;
    const binPath = path.join(root, bin);
    fs.mkdirSync(path.dirname(binPath), { recursive: true }); // bin/ holds only generated files
    fs.writeFileSync(`${binPath}.tmp`, launcher, { mode: 0o755 });
    fs.renameSync(`${binPath}.tmp`, binPath);
  }
}
