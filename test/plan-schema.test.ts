/**
 * schemas/plan.schema.json is the one definition of the init plan. Here:
 *   - the schema itself drives a mutation test: for every field it defines, plans that break it
 *     (wrong type, out of range, unknown enum, missing, unknown extra member, relative path, NUL
 *     byte, too long, too many) are derived from a known-good plan, and tsrun-init must refuse each
 *     with "plan: <that pointer>: ..." before it creates anything; the known-good plans (create and
 *     exec) are the positive controls and must run;
 *   - the plans the TypeScript builder makes from configs (tsrun spec's, rootless and not, with
 *     seccomp, mounts, devices, hooks...) fit the schema (ajv, tests only).
 * The walk over the schema below is written independently of scripts/build-plan.mjs, from the
 * schema as JSON Schema: it checks what the generated C++ does, not how it was generated.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { CreatePlan, ExecPlan, InitPlan } from '../src/native/init-plan';
import { spawnInit, type InitEvent } from '../src/native/init-process';
import { exampleSpec } from '../src/cli/commands/spec';
import { compileSeccomp } from '../src/seccomp/compile';
import { buildCreatePlan, buildExecPlan } from '../src/plan/plan';
import { MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_REC, MS_SLAVE } from '../src/bundle/mount-options';
import type { Spec } from '../src/bundle/types';
import { assertValidPlan, planProblems, planSchema } from './helpers/plan-schema';
import { copyRootfs } from './helpers/rootfs';
import { makeInit } from './helpers/tsrun';

const REPO = path.resolve(__dirname, '..');
makeInit();

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-plan-schema-'));
const rootfs = path.join(dir, 'rootfs');
copyRootfs(rootfs);
const marker = path.join(rootfs, 'tmp/ran');
// The source of the good plan's id-mapped bind (the test's own ext4 directory).
const idmapSource = path.join(dir, 'idmap-source');
fs.mkdirSync(idmapSource);
const pids: number[] = [];
process.on('exit', () => {
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {}
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

// One instruction, SECCOMP_RET_ALLOW: BPF_RET|BPF_K (0x06), k = 0x7fff0000.
const ALLOW_ALL_BPF = Buffer.from([0x06, 0, 0, 0, 0, 0, 0xff, 0x7f]).toString('base64');

/** A plan in which every field the schema defines is present (lists with one entry or more). */
function goodCreatePlan(): CreatePlan {
  const hasTimeNs = fs.existsSync('/proc/self/ns/time');
  return {
    mode: 'create',
    id: 'plan-schema',
    process: {
      args: ['sh', '-c', 'touch /tmp/ran'],
      env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
      cwd: '/',
      uid: 0,
      gid: 0,
      additionalGids: [1],
      umask: 0o22,
      terminal: false,
      consoleWidth: 0,
      consoleHeight: 0,
      rlimits: [{ resource: 7, soft: 1024, hard: '1024' }],
      oomScoreAdj: 0,
      noNewPrivileges: true,
      capabilities: { bounding: [5], effective: [5], permitted: [5], inheritable: [5], ambient: [5] },
      seccomp: { bpfBase64: ALLOW_ALL_BPF, flags: 0, listenerPath: '', listenerStatePrefix: '', listenerStateSuffix: '' },
      apparmorProfile: '',
      selinuxLabel: '',
      preserveFds: 0,
    },
    consoleSocket: '',
    waitForExit: true,
    // ipc joined by path (the host's, harmless), the others new.
    namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'uts' }, { type: 'ipc', path: `/proc/${process.pid}/ns/ipc` }, { type: 'network' }, ...(hasTimeNs ? [{ type: 'time' as const }] : [])],
    // Written only for a new user namespace: the check sees them, the run ignores them.
    uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
    gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
    timeOffsets: { monotonic: { secs: 1, nanosecs: 0 }, boottime: { secs: 2, nanosecs: 5 } },
    hostname: 'plan',
    domainname: 'schema',
    rootfs,
    rootfsReadonly: false,
    rootPropagation: MS_SLAVE | MS_REC,
    rootPropagationExplicit: false,
    mountSteps: [
      { kind: 'mount', source: 'proc', destination: '/proc', fstype: 'proc', flags: MS_NOSUID | MS_NODEV | MS_NOEXEC, data: '', remountFlags: 0, propagation: [], recursiveAttrSet: 0, recursiveAttrClear: 0, sourceIsDir: false },
      { kind: 'mkdir', path: '/plan-dir', mode: 0o755 },
      { kind: 'mount', source: 'tmpfs', destination: '/plan-dir', fstype: 'tmpfs', flags: MS_NOSUID, data: 'size=64k', remountFlags: 0, propagation: [MS_SLAVE], recursiveAttrSet: 0, recursiveAttrClear: 0, copyUp: true, sourceIsDir: true },
      { kind: 'symlink', target: 'plan-dir', linkPath: '/plan-link' },
      {
        kind: 'mount', source: idmapSource, destination: '/plan-idmap', fstype: '', flags: MS_BIND | MS_REC, data: '', remountFlags: 0, propagation: [], recursiveAttrSet: 0, recursiveAttrClear: 0, sourceIsDir: true,
        idmap: { recursive: true, uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }], gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }] },
      },
    ],
    devices: [{ path: '/dev/plan-null', type: 'c', major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0, bind: false }],
    devSymlinks: [{ target: '/proc/self/fd', linkPath: '/dev/fd' }],
    setupDev: true,
    devRemountFlags: 0,
    noPivot: false,
    sysctl: [{ key: 'kernel.domainname', value: 'schema' }],
    maskedPaths: ['/proc/kcore'],
    readonlyPaths: ['/proc/sys'],
    syncRuntimeHooks: false,
    createContainerHooks: [{ path: '/bin/true', args: ['true'], env: [], timeout: 10 }],
    startContainerHooks: [{ path: '/bin/true', args: ['true'], env: ['A=b'], timeout: 10 }],
    statePrefix: '{"ociVersion":"1.2.0","id":"plan-schema","status":"creating","pid":',
    stateSuffix: ',"bundle":"/nonexistent"}',
    execFifo: '',
    sessionKeyring: '',
    startReplyFifo: '',
    personality: 0,
    rootless: false,
  };
}

function goodExecPlan(initPid: number): ExecPlan {
  const p = goodCreatePlan();
  return {
    mode: 'exec',
    id: 'plan-schema',
    process: { ...p.process, args: ['sh', '-c', 'echo exec-ran'] },
    consoleSocket: '',
    waitForExit: true,
    initPid,
    initStartTime: Number(fs.readFileSync(`/proc/${initPid}/stat`, 'utf8').split(') ')[1].split(' ')[19]),
    joinNamespaces: ['pid', 'mount', 'uts', 'ipc', 'network'],
  };
}

// ---------------------------------------------------------------- running the init

interface Outcome {
  msgs: InitEvent[];
  error?: string;
  status?: number;
  code: number | null;
}

async function runInit(plan: unknown, ms = 15000): Promise<Outcome> {
  const nul = fs.openSync('/dev/null', 'r+');
  let init;
  try {
    init = await spawnInit({ stdio: [nul, nul, nul], extraFds: [] });
  } finally {
    fs.closeSync(nul);
  }
  init.sendPlan(plan as InitPlan);
  const msgs: InitEvent[] = [];
  const deadline = Date.now() + ms;
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const e = await Promise.race([init.next(), new Promise<null>((r) => (timer = setTimeout(() => r(null), Math.max(1, deadline - Date.now()))))]);
      clearTimeout(timer);
      if (!e) throw new Error(`no message within ${ms} ms (got ${JSON.stringify(msgs)})`);
      msgs.push(e);
      if (e.type === 'pid') {
        pids.push(e.pid);
        init.sendPlaced();
      }
      if (e.type === 'eof' || e.type === 'error' || e.type === 'exit') break;
    }
    const exit = await init.stage0Exit;
    return {
      msgs,
      error: (msgs.find((m) => m.type === 'error') as { message: string } | undefined)?.message,
      status: (msgs.find((m) => m.type === 'exit') as { status: number } | undefined)?.status,
      code: exit.code,
    };
  } finally {
    init.kill();
  }
}

// ---------------------------------------------------------------- the schema, walked

type Json = any;
const defs: Record<string, Json> = planSchema.definitions;

/** $ref resolved (one level at a time; the schema has no cycles). */
function resolve(node: Json): Json {
  while (node.$ref) node = defs[node.$ref.replace('#/definitions/', '')];
  return node;
}

interface Mutation {
  what: string;
  pointer: string;
  expect: RegExp;
  apply: (plan: Json) => void;
}

const escapePointer = (k: string) => k.replace(/~/g, '~0').replace(/\//g, '~1');
const STRING_RULE: Record<string, 'text' | 'absolute' | 'absoluteOrEmpty' | undefined> = {
  '^[^\\u0000]*$': 'text',
  '^/[^\\u0000]*$': 'absolute',
  '^(/[^\\u0000]*)?$': 'absoluteOrEmpty',
};

/** Sets (or with DELETE removes) the value at `keys` of a plan. */
const DELETE = Symbol('delete');
function setAt(plan: Json, keys: (string | number)[], value: unknown) {
  let o = plan;
  for (const k of keys.slice(0, -1)) o = o[k];
  const last = keys[keys.length - 1];
  if (value === DELETE) delete o[last];
  else o[last] = value;
}

/**
 * Every mutation of the value at `keys` (described by `node`), and of everything below it. Each
 * property the walk reaches is recorded in `covered` as "<definition or pointer>.<property>".
 */
function mutations(node: Json, value: Json, keys: (string | number)[], covered: Set<string>, owner: string): Mutation[] {
  const pointer = keys.map((k) => `/${escapePointer(String(k))}`).join('');
  const out: Mutation[] = [];
  // (The root itself is never replaced: it is an object by construction of the test.)
  const add = (what: string, expect: RegExp, v: unknown, at = pointer) => {
    if (keys.length) out.push({ what, pointer: at, expect, apply: (p) => setAt(p, keys, v) });
  };
  if (node.$ref) {
    const name = node.$ref.replace('#/definitions/', '');
    return mutations(defs[name], value, keys, covered, /^[A-Z]/.test(name) ? name : owner);
  }
  if (node.anyOf && node.anyOf[0]?.type === 'null') {
    // Nullable: the non-null form is walked when present; null is always tried too.
    if (value === null) {
      add('a boolean where null or a value is expected', /must be/, resolve(node.anyOf[1]).type === 'boolean' ? 7 : true);
      return out;
    }
    return mutations(node.anyOf[1], value, keys, covered, owner);
  }
  if (node.anyOf) {
    // u64: a number or a decimal string.
    add('u64: a boolean', /must be an unsigned 64-bit integer/, true);
    add('u64: negative', /must be an unsigned 64-bit integer/, -1);
    add('u64: not decimal', /must be an unsigned 64-bit integer/, '12a');
    add('u64: leading zero', /must be an unsigned 64-bit integer/, '012');
    add('u64: 2^64', /must be an unsigned 64-bit integer/, '18446744073709551616');
    return out;
  }
  if (node.oneOf) {
    const tag: string = node.discriminator.propertyName;
    add('not an object', /must be an object/, 'x');
    out.push({ what: `unknown ${tag}`, pointer: `${pointer}/${tag}`, expect: /unknown .*"bogus"/, apply: (p) => setAt(p, [...keys, tag], 'bogus') });
    out.push({ what: `${tag} missing`, pointer: `${pointer}/${tag}`, expect: /missing/, apply: (p) => setAt(p, [...keys, tag], DELETE) });
    const alt = node.oneOf.find((v: Json) => resolve(v).properties[tag].const === value[tag]);
    assert.ok(alt, `${pointer}: no variant for ${tag} ${value[tag]}`);
    // Variants named by definition (the plan's modes) are covered as that definition.
    if (alt.$ref) return [...out, ...mutations(alt, value, keys, covered, owner)];
    covered.add(`${owner}#${value[tag]}`);
    return [...out, ...mutations(alt, value, keys, covered, `${owner}#${value[tag]}`)];
  }
  if (node.const !== undefined) {
    add('const: a number', /must be a string/, 1);
    return out;
  }
  switch (node.type) {
    case 'object': {
      add('not an object', /must be an object/, ['x']);
      out.push({ what: 'unknown member', pointer: `${pointer}/zzUnknown`, expect: /unknown field/, apply: (p) => setAt(p, [...keys, 'zzUnknown'], 1) });
      for (const [name, prop] of Object.entries<Json>(node.properties)) {
        if (!(name in value)) continue;
        covered.add(`${owner}.${name}`);
        if ((node.required ?? []).includes(name)) {
          out.push({ what: `${name} missing`, pointer: `${pointer}/${name}`, expect: /missing/, apply: (p) => setAt(p, [...keys, name], DELETE) });
        }
        out.push(...mutations(prop, value[name], [...keys, name], covered, owner));
      }
      return out;
    }
    case 'array': {
      add('not an array', /must be an array/, { x: 1 });
      if (node.minItems) add('too few entries', /must not be empty|fewer than/, []);
      if (node.maxItems !== undefined && value.length > 0) add('too many entries', /more than \d+ entries/, Array.from({ length: node.maxItems + 1 }, () => value[0]));
      // Entries are walked where there are some (coverage: "<owner>.<property>[]").
      if (value.length > 0) covered.add(`${owner}.${String(keys[keys.length - 1])}[]`);
      value.forEach((item: Json, i: number) => out.push(...mutations(node.items, item, [...keys, i], covered, owner)));
      return out;
    }
    case 'string': {
      add('a number', /must be a string/, 1);
      if (node.enum) {
        add('unknown enum value', /unknown .*"bogus"/, 'bogus');
        return out;
      }
      const rule = STRING_RULE[node.pattern];
      assert.ok(rule, `${pointer}: a string without one of the known patterns`);
      add('a NUL byte', /contains a NUL byte/, `${value || '/'}\u0000x`);
      if (rule === 'absolute') add('a relative path', /must be an absolute path/, 'relative/path');
      if (rule === 'absoluteOrEmpty') add('a relative path', /must be an absolute path or empty/, 'relative/path');
      if (node.maxLength !== undefined) add('too long', /longer than \d+ bytes/, `/${'a'.repeat(node.maxLength)}`);
      if (node.minLength) add('empty', /must not be empty|shorter than/, '');
      return out;
    }
    case 'integer':
      add('a string', /must be an integer/, '1');
      add('a fraction', /must be an integer/, 1.5);
      add('below the minimum', /is out of range/, node.minimum - 1);
      add('above the maximum', /is out of range/, node.maximum + 1);
      return out;
    case 'boolean':
      add('a number', /must be a boolean/, 1);
      return out;
  }
  throw new Error(`${pointer}: the walk does not know ${JSON.stringify(node).slice(0, 80)}`);
}

/** Every property of every object of the schema (and every oneOf variant), as the walk names them. */
function allProperties(): Set<string> {
  const all = new Set<string>();
  const visit = (node: Json, owner: string, seen: Set<string>) => {
    if (node.$ref) {
      const name = node.$ref.replace('#/definitions/', '');
      if (seen.has(name)) return;
      return visit(defs[name], /^[A-Z]/.test(name) ? name : owner, new Set([...seen, name]));
    }
    for (const alt of node.anyOf ?? []) visit(alt, owner, seen);
    for (const alt of node.oneOf ?? []) {
      const v = resolve(alt);
      const tag = v.properties[node.discriminator.propertyName].const;
      // Variants named by definition (the plan's modes) are covered as that definition.
      if (alt.$ref) visit(alt, owner, seen);
      else {
        all.add(`${owner}#${tag}`);
        visit(v, `${owner}#${tag}`, seen);
      }
    }
    if (node.items) visit(node.items, owner, seen);
    for (const [name, prop] of Object.entries<Json>(node.properties ?? {})) {
      all.add(`${owner}.${name}`);
      if (resolve(prop).type === 'array') all.add(`${owner}.${name}[]`);
      visit(prop, owner, seen);
    }
  };
  visit(planSchema, 'InitPlan', new Set());
  return all;
}

async function refusedEach(good: Json, ms: Mutation[]) {
  const failures: string[] = [];
  for (const m of ms) {
    const plan = structuredClone(good);
    m.apply(plan);
    const r = await runInit(plan);
    const prefix = `plan: ${m.pointer}: `;
    if (!r.error?.startsWith(prefix) || !m.expect.test(r.error.slice(prefix.length))) failures.push(`${m.pointer} (${m.what}): got ${JSON.stringify(r.error)}, want "${prefix}" + ${m.expect}`);
    else if (r.msgs.some((e) => e.type === 'pid') || r.code !== 1) failures.push(`${m.pointer} (${m.what}): a process was created or stage 0 exited ${r.code}`);
    // ajv agrees (the TS side of the same schema).
    else if (planProblems(plan) === '') failures.push(`${m.pointer} (${m.what}): ajv accepts what the init refused`);
  }
  assert.ok(fs.existsSync(rootfs));
  assert.not.ok(fs.existsSync(marker), 'no mutated plan ran its process');
  assert.not.ok(fs.existsSync(path.join(rootfs, 'plan-dir')), 'no mutated plan made its mount steps');
  assert.not.ok(fs.existsSync(path.join(rootfs, 'dev/plan-null')), 'no mutated plan made its devices');
  assert.equal(failures, [], `${failures.length} of ${ms.length} mutations:\n${failures.join('\n')}`);
}

test('every field of the schema: a plan breaking it is refused with its pointer, nothing created; the full plans run', async () => {
  const covered = new Set<string>();
  const create = goodCreatePlan();
  assertValidPlan(create, 'the good create plan');
  const createMutations = mutations(planSchema, create, [], covered, 'InitPlan');
  // Positive control 1: the full create plan is accepted, runs, and leaves what it made in the
  // (shared, bind-mounted) rootfs: the marker and the mkdir step's directory.
  fs.rmSync(marker, { force: true });
  const ok = await runInit(create);
  assert.is(ok.error, undefined, `the good create plan runs: ${ok.error}`);
  assert.is(ok.status, 0);
  assert.ok(fs.existsSync(marker), 'control: the process ran');
  assert.ok(fs.existsSync(path.join(rootfs, 'plan-dir')), 'control: the mount steps ran');
  fs.rmSync(marker);
  fs.rmSync(path.join(rootfs, 'plan-dir'), { recursive: true });
  fs.rmSync(path.join(rootfs, 'plan-link'));
  fs.rmSync(path.join(rootfs, 'plan-idmap'), { recursive: true, force: true });
  fs.rmSync(path.join(rootfs, 'dev/plan-null'), { force: true });

  // A container to exec into (it must not touch the marker: its process only sleeps).
  const waiting = { ...goodCreatePlan(), waitForExit: false, process: { ...create.process, args: ['sleep', '300'] }, mountSteps: [create.mountSteps[0]], devices: [], devSymlinks: [], startContainerHooks: [] } as CreatePlan;
  const started = await (async () => {
    const nul = fs.openSync('/dev/null', 'r+');
    const init = await spawnInit({ stdio: [nul, nul, nul], extraFds: [] });
    fs.closeSync(nul);
    init.sendPlan(waiting);
    let pid = 0;
    for (;;) {
      const e = await init.next();
      if (e.type === 'pid') {
        pid = e.pid;
        pids.push(pid);
        init.sendPlaced();
      } else if (e.type === 'ready') return pid;
      else if (e.type !== 'createContainerHooks') throw new Error(`container to exec into: ${JSON.stringify(e)}`);
    }
  })();
  const exec = goodExecPlan(started);
  assertValidPlan(exec, 'the good exec plan');
  const execMutations = mutations(planSchema, exec, [], covered, 'InitPlan');
  // Positive control 2: the exec plan runs.
  const execOk = await runInit(exec);
  assert.is(execOk.error, undefined, `the good exec plan runs: ${execOk.error}`);
  assert.is(execOk.status, 0);

  // The walk reached every property of the schema (else the good plans miss a field).
  const missing = [...allProperties()].filter((p) => !covered.has(p));
  assert.equal(missing, [], 'the good plans hold every field of the schema');

  const t0 = Date.now();
  await refusedEach(create, createMutations);
  await refusedEach(exec, execMutations);
  console.log(`    ${createMutations.length + execMutations.length} mutations refused in ${Date.now() - t0} ms (${covered.size} fields)`);
  assert.ok(createMutations.length > 300, `${createMutations.length} create mutations`);
});

// The rules across fields that the schema cannot express stay hand-written in plan_check.cpp
// (check_rules): each is refused with its pointer; the good plan above is their control.
test('the cross-field rules of plan_check.cpp: each refused with its pointer, before anything is created', async () => {
  const rules: [string, (p: Json) => void, string, RegExp][] = [
    ['rlimit soft above hard (a string hard)', (p) => (p.process.rlimits = [{ resource: 7, soft: 2048, hard: '1024' }]), '/process/rlimits/0', /soft limit above hard limit/],
    ['uid mapping ending above 4294967294', (p) => (p.uidMappings = [{ containerID: 4294967000, hostID: 0, size: 296 }]), '/uidMappings/0', /range ends above 4294967294/],
    ['gid mapping host range ending above 4294967294', (p) => (p.gidMappings = [{ containerID: 0, hostID: 4294967294, size: 2 }]), '/gidMappings/0', /range ends above 4294967294/],
    ['a namespace type twice', (p) => p.namespaces.push({ type: 'uts' }), '/namespaces/6/type', /duplicate namespace "uts"/],
    ['copyUp on a non-tmpfs', (p) => (p.mountSteps[0].copyUp = true), '/mountSteps/0/copyUp', /only for tmpfs/],
    ['rootless without a user namespace', (p) => Object.assign(p, { rootless: true, namespaces: p.namespaces.filter((n: Json) => n.type !== 'user') }), '/rootless', /needs a user namespace/],
    ['a sysctl key climbing out of /proc/sys', (p) => (p.sysctl = [{ key: 'kernel/../../../etc/x', value: '1' }]), '/sysctl/0/key', /not a sysctl name/],
    ['an absolute sysctl key', (p) => (p.sysctl = [{ key: '/etc/x', value: '1' }]), '/sysctl/0/key', /not a sysctl name/],
    ['mounts without a mount namespace', (p) => (p.namespaces = p.namespaces.filter((n: Json) => n.type !== 'mount')), '/mountSteps', /must be empty without a mount namespace/],
    [
      'a read-only root without a mount namespace',
      (p) => Object.assign(p, { namespaces: p.namespaces.filter((n: Json) => n.type !== 'mount'), mountSteps: [], devices: [], devSymlinks: [], maskedPaths: [], readonlyPaths: [], sysctl: [], setupDev: false, rootfsReadonly: true }),
      '/rootfsReadonly',
      /must be false without a mount namespace/,
    ],
  ];
  if (!fs.existsSync('/proc/self/ns/time')) rules[3][2] = '/namespaces/5/type';
  for (const [what, change, pointer, expect] of rules) {
    const plan = goodCreatePlan() as Json;
    change(plan);
    assert.is(planProblems(plan), '', `${what}: fits the schema (only the rule is broken)`);
    const r = await runInit(plan);
    assert.ok(r.error?.startsWith(`plan: ${pointer}: `), `${what}: ${r.error}`);
    assert.match(r.error ?? '', expect, what);
    assert.not.ok(r.msgs.some((e) => e.type === 'pid'), `${what}: no process created`);
  }
  assert.not.ok(fs.existsSync(marker));
  assert.not.ok(fs.existsSync(path.join(rootfs, 'plan-dir')));
});

// ---------------------------------------------------------------- the generator

test('build-plan.mjs refuses a schema it cannot translate into C++ (nothing silently unchecked)', () => {
  const gen = (schema: Json) => {
    const d = fs.mkdtempSync(path.join(dir, 'gen-'));
    fs.writeFileSync(path.join(d, 'plan.schema.json'), JSON.stringify(schema));
    const r = spawnSync(process.execPath, [path.join(REPO, 'scripts/build-plan.mjs'), '--schema', path.join(d, 'plan.schema.json'), '--out', d], { encoding: 'utf8' });
    return { status: r.status, stderr: r.stderr, dir: d };
  };
  const broken: [string, (s: Json) => void, RegExp][] = [
    ['a string without a pattern', (s) => (s.definitions.PlanHook.properties.path = { type: 'string' }), /#\/definitions\/PlanHook\/properties\/path: a string needs one of the patterns/],
    ['an object open to unknown members', (s) => delete s.definitions.PlanDevice.additionalProperties, /#\/definitions\/PlanDevice: objects must have additionalProperties: false/],
    ['a keyword outside the subset', (s) => (s.definitions.ExecPlan.properties.joinNamespaces.uniqueItems = true), /joinNamespaces: keyword "uniqueItems" is not in the subset/],
    ['a bound no double holds exactly', (s) => (s.definitions.PlanSeccomp.properties.flags.maximum = 2 ** 64), /flags: maximum must be a safe integer/],
    ['a pattern the init does not know', (s) => (s.definitions.text.pattern = '^[a-z]*$'), /a string needs one of the patterns/],
    ['a variant without its discriminator', (s) => delete s.definitions.PlanMountStep.oneOf[1].properties.kind, /discriminator: oneOf subschemas .* must have "properties\/kind"|a variant needs a required "kind"/],
    ['a member C++ cannot name', (s) => (s.definitions.PlanHook.properties.delete = { type: 'boolean' }), /"delete" is not usable as a C\+\+ name/],
    ['a variant whose discriminator is not required', (s) => (s.definitions.PlanMountStep.oneOf[2].required = ['path', 'mode']), /oneOf\/2: a variant needs a required "kind"|discriminator/],
  ];
  for (const [what, change, expect] of broken) {
    const schema = structuredClone(planSchema);
    change(schema);
    const r = gen(schema);
    assert.is.not(r.status, 0, `${what}: refused`);
    assert.match(r.stderr, expect, what);
    assert.not.ok(fs.existsSync(path.join(r.dir, 'plan_schema.gen.inc')) || fs.existsSync(path.join(r.dir, 'plan.gen.h')), `${what}: no output`);
  }
  // Control: the schema itself generates, into exactly what the build made (the outputs are fresh).
  const ok = gen(planSchema);
  assert.is(ok.status, 0, ok.stderr);
  assert.is(fs.readFileSync(path.join(ok.dir, 'plan_schema.gen.inc'), 'utf8'), fs.readFileSync(path.join(REPO, 'addon/init/plan_schema.gen.inc'), 'utf8'), 'addon/init/plan_schema.gen.inc is up to date');
  assert.is(fs.readFileSync(path.join(ok.dir, 'plan.gen.h'), 'utf8'), fs.readFileSync(path.join(REPO, 'addon/init/plan.gen.h'), 'utf8'), 'addon/init/plan.gen.h is up to date');
  assert.is(fs.readFileSync(path.join(ok.dir, 'plan.gen.ts'), 'utf8'), fs.readFileSync(path.join(REPO, 'src/native/plan.gen.ts'), 'utf8'), 'src/native/plan.gen.ts is up to date (node scripts/build.mjs plan)');
});

// ---------------------------------------------------------------- the TypeScript builder

const bundle = path.join(dir, 'bundle');
fs.mkdirSync(path.join(bundle, 'rootfs'), { recursive: true });
fs.mkdirSync(path.join(bundle, 'data'));

function build(config: Json): CreatePlan {
  return buildCreatePlan({
    id: 'c1',
    bundle,
    config: config as Spec,
    execFifo: '/run/tsrun/c1/exec.fifo',
    consoleSocket: '/run/console.sock',
    noPivot: false,
    preserveFds: 1,
    waitForExit: false,
    statePrefix: '{"pid":',
    stateSuffix: '}',
    seccomp: config.linux?.seccomp ? compileSeccomp(config.linux.seccomp, () => {}) : null,
    cgroupMountSteps: (d) => [{ kind: 'mount', source: 'cgroup2', destination: d, fstype: 'cgroup2', flags: MS_NOSUID, data: '', remountFlags: 0, propagation: [], recursiveAttrSet: 0, recursiveAttrClear: 0, sourceIsDir: true }],
    warn: () => {},
  });
}

test('the plans the TypeScript builder makes from configs fit the schema', () => {
  const configs: [string, Json][] = [
    ['tsrun spec', exampleSpec(false)],
    ['tsrun spec --rootless', exampleSpec(true)],
  ];
  const full = structuredClone(exampleSpec(false)) as Json;
  full.mounts.push({ destination: '/data', source: 'data', options: ['rbind', 'ro'] }, { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['tmpcopyup', 'nosuid'] }, { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro'] });
  full.linux.devices = [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 }];
  full.linux.sysctl = { 'net.ipv4.ip_forward': '1' };
  full.linux.namespaces.push({ type: 'time' }, { type: 'cgroup' });
  full.linux.timeOffsets = { monotonic: { secs: 5, nanosecs: 1 } };
  full.linux.personality = { domain: 'LINUX32' };
  full.linux.rootfsPropagation = 'shared';
  full.hooks = { createContainer: [{ path: '/bin/true', timeout: 3 }], startContainer: [{ path: '/bin/true', args: ['true', 'x'], env: ['A=b'] }] };
  full.process.rlimits.push({ type: 'RLIMIT_CORE', hard: 18446744073709551615, soft: 1 });
  full.process.oomScoreAdj = -500;
  full.process.user.additionalGids = [5, 6];
  full.linux.seccomp = { defaultAction: 'SCMP_ACT_ERRNO', architectures: ['SCMP_ARCH_X86_64'], syscalls: [{ names: ['read', 'write', 'exit'], action: 'SCMP_ACT_ALLOW' }] };
  configs.push(['a config with every plan feature', full]);
  const userns = structuredClone(full) as Json;
  userns.linux.namespaces.push({ type: 'user' });
  userns.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  userns.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  configs.push(['the same in a user namespace', userns]);
  for (const [what, config] of configs) {
    const plan = build(config);
    assertValidPlan(plan, what);
    assertValidPlan(JSON.parse(JSON.stringify(plan)), `${what}, as sent`);
    const exec = buildExecPlan({ id: 'c1', initPid: 4242, initStartTime: 12345, process: config.process, config: config as Spec, consoleSocket: '', preserveFds: 0, waitForExit: true, seccomp: null, warn: () => {} });
    assertValidPlan(exec, `${what}: exec`);
  }
  // Control: the validator is not a yes-man.
  const broken = build(exampleSpec(false)) as Json;
  broken.process.uid = 4294967295;
  assert.match(planProblems(broken), /\/process\/uid must be <= 2147483647/);
});

test.run();
