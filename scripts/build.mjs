#!/usr/bin/env node
// Builds everything tsrun needs at run time, in order:
//   1. ajv standalone validators (schemas/ → dist/schemas/validators.js), so that validation
//      costs a require() and no schema compilation at start-up;
//   2. the init plan's TypeScript and C++ types and C++ check, from schemas/plan.schema.json
//      (build-plan.mjs); the static container init (addon/init/tsrun-init), the shim's protobuf code;
//   3. the N-API addon (build/Release/tsrun_native.node), against the system Node headers
//      (node-gyp must never try to download headers: this machine reaches no nodejs.org);
//   4. esbuild bundles of the CLI (dist/cli/main.js, yargs beside it: see below) and the shim;
//   5. bin/.tsrun-cli, the CLI compiled by Bun into one executable with its bytecode (or with
//      TSRUN_CLI_ENGINE=node a launcher whose shebang is the Node 22 binary from node_modules),
//      and bin/.containerd-shim-tsrun-v2, the shim compiled the same way (TSRUN_SHIM_ENGINE=node:
//      a Node 22 launcher), behind bin/tsrun and
//      bin/containerd-shim-tsrun-v2: static front doors (addon/cli/front.cpp,
//      addon/shim/launcher.cpp) that answer their most frequent calls without an engine and exec
//      the engine entry for everything else.
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

// The plan's types (src/native/plan.gen.ts, for tsc; addon/init/plan.gen.h) and check
// (addon/init/plan_schema.gen.inc), which the init's Makefile would also make when stale.
if (want('plan') || want('init')) run(process.execPath, ['scripts/build-plan.mjs', '--if-stale']);

if (want('init')) {
  run('make', ['-s', '-C', 'addon/init', `NODE=${process.execPath}`]);
  run('make', ['-s', '-C', 'addon/shim']);
  run('make', ['-s', '-C', 'addon/cli']);
}

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
  /** Written under a temporary name then renamed: a tsrun starting meanwhile never reads half a file. */
  const writeAtomic = (file, data, mode = 0o644) => {
    fs.writeFileSync(`${file}.tmp-${process.pid}`, data, { mode });
    fs.renameSync(`${file}.tmp-${process.pid}`, file);
  };
  // Launchers: the shebang is the Node 22 binary; the compile cache makes the second and later
  // starts skip parsing/compiling what they load.
  const cacheDir = path.join(root, 'dist/.compile-cache');
  const writeLauncher = (bin, target) => {
    const launcher = `#!${node22}
try { require('node:module').enableCompileCache(${JSON.stringify(cacheDir)}); } catch {}
require(${JSON.stringify(target)});
`;
    const binPath = path.join(root, bin);
    fs.mkdirSync(path.dirname(binPath), { recursive: true }); // bin/ holds only generated files
    writeAtomic(binPath, launcher, 0o755);
  };
  // The CLI's launcher goes further. Node's compile cache is made right after a file is compiled,
  // so it holds the top level only: every function a call runs is compiled again on every call
  // (~15 ms for run, ~7 ms more for the validators). So main.js (and the validators, which it
  // loads through globalThis.__tsrunRequire) run from V8 code caches made when the process exits,
  // holding every function that ran: one cache per command (state runs other code than create),
  // written by the first successful call of that command after a build (or when V8 rejects the
  // cache: the file changed, another engine version); atomically, so concurrent calls never read
  // half of one. The directory is root's alone (0700), like the code it caches.
  // Only performance depends on this list (src/cli/dispatch.ts COMMANDS is the real one).
  const CLI_COMMANDS = ['create', 'start', 'run', 'state', 'list', 'kill', 'delete', 'spec', 'exec', 'ps', 'features', 'pause', 'resume', 'update', 'events'];
  const writeCliLauncher = (bin, target) => {
    const launcher = `#!${node22}
'use strict';
// TSRUN_TRACE (src/cli/trace.ts): when the engine handed over to JavaScript.
if (process.env.TSRUN_TRACE) globalThis.__tsrunLaunch = performance.now();
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const Module = require('node:module');
try { Module.enableCompileCache(${JSON.stringify(cacheDir)}); } catch {}
const cacheDir = ${JSON.stringify(path.join(cacheDir, 'tsrun'))};
// The command word (as src/cli/argv.ts commandWord finds it) names the cache; anything but
// tsrun's commands shares one.
const COMMANDS = new Set(${JSON.stringify(CLI_COMMANDS)});
let command = 'none';
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--root' || a === '--log' || a === '--log-format' || a === '--rootless') i++;
  else if (a === '--') break;
  else if (!a.startsWith('-')) { command = COMMANDS.has(a) ? a : 'other'; break; }
}
const saves = [];
function load(file) {
  // V8 checks a cache against the source's length only: the name says which file it was made
  // from (a build renames a new file into place: another inode), and which engine.
  const st = fs.statSync(file);
  const prefix = \`\${command}.\${path.basename(file, '.js')}.\`;
  const cacheFile = path.join(cacheDir, \`\${prefix}\${st.ino}-\${st.size}-\${Math.trunc(st.mtimeMs)}.\${process.version}.v8\`);
  let cachedData;
  try { cachedData = fs.readFileSync(cacheFile); } catch {}
  const script = new vm.Script(Module.wrap(fs.readFileSync(file, 'utf8')), { filename: file, cachedData });
  if (!cachedData || script.cachedDataRejected) {
    // Only from a call that went the usual way: not an error, not help (yargs).
    if (saves.length === 0) process.once('exit', (code) => { if (code === 0 && !Object.keys(require.cache).some((f) => f.endsWith('/yargs.js'))) for (const save of saves) save(); });
    saves.push(() => {
      try {
        fs.mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
        fs.writeFileSync(\`\${cacheFile}.\${process.pid}\`, script.createCachedData());
        fs.renameSync(\`\${cacheFile}.\${process.pid}\`, cacheFile);
        // Caches of earlier builds go.
        for (const f of fs.readdirSync(cacheDir)) if (f.startsWith(prefix) && f.endsWith('.v8') && path.join(cacheDir, f) !== cacheFile) fs.rmSync(path.join(cacheDir, f), { force: true });
      } catch {}
    });
  }
  const m = new Module(file, module);
  m.filename = file;
  script.runInThisContext().call(m.exports, m.exports, Module.createRequire(file), m, file, path.dirname(file));
  m.loaded = true;
  return m.exports;
}
globalThis.__tsrunRequire = load;
load(${JSON.stringify(target)});
`;
    const binPath = path.join(root, bin);
    fs.mkdirSync(path.dirname(binPath), { recursive: true }); // bin/ holds only generated files
    writeAtomic(binPath, launcher, 0o755);
  };

  // The CLI's engine (README, "Benchmarks"): Bun, from the npm package @oven/bun-linux-x64, with
  // main.js and the validators compiled into one executable with their bytecode (`bun build
  // --compile --bytecode`): it starts in ~10 ms where Node 22 needs ~40 before any of our code
  // runs. TSRUN_CLI_ENGINE=node builds the Node launcher above instead (to compare them).
  const cliEngine = process.env.TSRUN_CLI_ENGINE === 'node' ? 'node' : 'bun';
  const bunBin = path.join(root, 'node_modules/@oven/bun-linux-x64/bin/bun');
  const writeBunCli = (bin, target) => {
    if (!fs.existsSync(bunBin)) throw new Error(`${bunBin} missing: run npm install first (or TSRUN_CLI_ENGINE=node)`);
    const validators = path.join(root, 'dist/schemas/validators.js');
    const entry = path.join(cliDir, 'bun-entry.js');
    // The validators by a literal path, so that the executable holds them (with their bytecode);
    // evaluated only when a command validates. yargs.js stays a file beside main.js, read only
    // for --help, errors and unusual command lines.
    writeAtomic(entry, `'use strict';
// TSRUN_TRACE (src/cli/trace.ts): when the engine handed over to JavaScript.
if (process.env.TSRUN_TRACE) globalThis.__tsrunLaunch = performance.now();
globalThis.__tsrunRequire = (file) => (file === ${JSON.stringify(validators)} ? require(${JSON.stringify(validators)}) : require(file));
require(${JSON.stringify(target)});
`);
    const out = path.join(root, `${bin}.tmp-${process.pid}`);
    run(bunBin, ['build', '--compile', '--bytecode', '--target=bun', '--no-compile-autoload-dotenv', '--no-compile-autoload-bunfig', entry, '--outfile', out], { stdio: ['ignore', 'ignore', 'inherit'] });
    fs.renameSync(out, path.join(root, bin));
  };

  // The CLI: dist/cli/main.js, one CommonJS file with the CLI and the runtime (every module in
  // it is evaluated only when first imported, so `state` never runs create's code), and beside it
  // what few calls need, each required on first use:
  //   dist/cli/yargs.js            yargs, for --help, errors and unusual command lines;
  //   ../schemas/validators.js     the ajv validators (dist/schemas/), for commands that validate.
  // Fewer files is faster here: each require() of a file costs ~0.6 ms on this machine, while
  // 100 kB that are loaded but not run cost ~0.6 ms too (the compile cache skips parsing).
  // Builtins: every `import … from 'node:x'` of the sources goes through one module per builtin
  // (`export * from 'node:x'`, live getters), instead of esbuild's per-importer __toESM copy of
  // all of the builtin's properties (~0.2 ms each, 40 of them). child_process, net and tty are
  // modules whose exports load the builtin on first use: child_process alone costs ~6 ms to load;
  // async_hooks and diagnostics_channel (~0.1 ms each on Bun), which the cgroup module imports for
  // what only a daemon or a trace uses, too.
  const cliDir = path.join(root, 'dist/cli');
  const LAZY_BUILTINS = new Set(['child_process', 'net', 'tty', 'async_hooks', 'diagnostics_channel']);
  const cliPlugin = {
    name: 'tsrun-cli',
    setup(b) {
      // The validators: dist/schemas/validators.js, through the launcher's code cache when there is one.
      b.onResolve({ filter: /\/dist\/schemas\/validators\.js$/ }, () => ({ path: 'validators', namespace: 'tsrun-validators' }));
      b.onLoad({ filter: /.*/, namespace: 'tsrun-validators' }, () => ({
        loader: 'js',
        contents: `const file = require("node:path").join(__dirname, "../schemas/validators.js");
module.exports = typeof globalThis.__tsrunRequire === "function" ? globalThis.__tsrunRequire(file) : require(file);
`,
      }));
      b.onResolve({ filter: /^yargs\/yargs$/ }, () => ({ path: './yargs.js', external: true }));
      b.onResolve({ filter: /^node:[a-z_]+$/ }, (a) => (a.kind === 'import-statement' && a.namespace === 'file' ? { path: a.path.slice(5), namespace: 'builtin' } : undefined));
      b.onLoad({ filter: /.*/, namespace: 'builtin' }, async (a) => {
        if (!LAZY_BUILTINS.has(a.path)) return { loader: 'js', contents: `export * from "node:${a.path}";\n` };
        const keys = Object.keys(await import(`node:${a.path}`)).filter((k) => k !== 'default');
        return {
          loader: 'js',
          contents: `let m;
const load = () => m || (m = require("node:${a.path}"));
for (const k of ${JSON.stringify(keys)}) Object.defineProperty(exports, k, { enumerable: true, get: () => load()[k] });
`,
        };
      });
    },
  };
  fs.mkdirSync(cliDir, { recursive: true });
  const outputs = [
    [{ entryPoints: [path.join(root, 'node_modules/yargs/yargs.cjs')] }, 'yargs.js'],
    // import() becomes require(): Node's ESM loader never starts (yargs.js, node:net, node:tty).
    [{ entryPoints: [path.join(root, 'src/cli/main.ts')], plugins: [cliPlugin], supported: { 'dynamic-import': false } }, 'main.js'],
  ];
  for (const [opts, name] of outputs) {
    const r = await esbuild.build({ ...common, ...opts, outfile: path.join(cliDir, name), write: false });
    for (const o of r.outputFiles) writeAtomic(o.path, o.contents);
  }
  // dist/tsrun.js stays the CLI's entry for whoever requires it by that name.
  writeAtomic(path.join(root, 'dist/tsrun.js'), "module.exports = require('./cli/main.js');\n");
  fs.rmSync(path.join(root, 'dist/tsrun.js.map'), { force: true });
  // bin/tsrun is the native front door (addon/cli/front.cpp): it answers `state` and `--version`
  // itself and execs this launcher for everything else. --version's text is the CLI's own.
  if (cliEngine === 'bun') writeBunCli('bin/.tsrun-cli', path.join(cliDir, 'main.js'));
  else writeCliLauncher('bin/.tsrun-cli', path.join(cliDir, 'main.js'));
  writeAtomic(path.join(cliDir, 'version.txt'), execFileSync(path.join(root, 'bin/.tsrun-cli'), ['--version']));
  writeAtomic(path.join(root, 'bin/tsrun'), fs.readFileSync(path.join(root, 'addon/cli/tsrun-front')), 0o755);

  // The shim: dist/shim.js, one file, compiled by Bun like the CLI into bin/.containerd-shim-tsrun-v2
  // (with TSRUN_SHIM_ENGINE=node a Node 22 launcher of that name instead). The same two flags:
  // containerd starts the shim with its cwd in the bundle, the image author's directory.
  const shimEntry = path.join(root, 'src/shim/main.ts');
  if (fs.existsSync(shimEntry)) {
    await esbuild.build({ ...common, entryPoints: [shimEntry], outfile: path.join(root, 'dist/shim.js') });
    const shimEngine = process.env.TSRUN_SHIM_ENGINE === 'node' ? 'node' : 'bun';
    const shimBin = 'bin/.containerd-shim-tsrun-v2';
    if (shimEngine === 'bun') {
      if (!fs.existsSync(bunBin)) throw new Error(`${bunBin} missing: run npm install first (or TSRUN_SHIM_ENGINE=node)`);
      const out = path.join(root, `${shimBin}.tmp-${process.pid}`);
      run(bunBin, ['build', '--compile', '--bytecode', '--target=bun', '--no-compile-autoload-dotenv', '--no-compile-autoload-bunfig', path.join(root, 'dist/shim.js'), '--outfile', out], { stdio: ['ignore', 'ignore', 'inherit'] });
      fs.renameSync(out, path.join(root, shimBin));
    } else {
      writeLauncher(shimBin, path.join(root, 'dist/shim.js'));
    }
    fs.rmSync(path.join(root, 'bin/.containerd-shim-tsrun-v2.js'), { force: true }); // the entry's name before the shim ran on Bun
    // bin/containerd-shim-tsrun-v2 is the native front door (addon/shim/launcher.cpp): it answers
    // start/delete through a running daemon and execs the engine entry above for everything else.
    writeAtomic(path.join(root, 'bin/containerd-shim-tsrun-v2'), fs.readFileSync(path.join(root, 'addon/shim/containerd-shim-tsrun-v2')), 0o755);
  }
}
