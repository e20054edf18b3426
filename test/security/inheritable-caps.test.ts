/**
 * CVE-2022-29162: `runc exec --cap` also put the capability in the inheritable set, so a program
 * with file capabilities (or any execve keeping inheritable ones) could gain it beyond what the
 * container's processes normally have. The inheritable set must stay empty unless the bundle or
 * process file asks for it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { processFile, tsrunDetached, withSandbox, type Sandbox } from './helpers';

const CAP_SYS_ADMIN = 21n;
const PROBE = ['grep', '^Cap', '/proc/self/status'];

function caps(out: string): Record<string, bigint> {
  const r: Record<string, bigint> = {};
  for (const m of out.matchAll(/^Cap(\w+):\s+([0-9a-f]+)$/gm)) r[m[1]] = BigInt(`0x${m[2]}`);
  assert.ok('Inh' in r && 'Eff' in r, `no capability lines in: ${out}`);
  return r;
}

const has = (set: bigint, cap: bigint) => (set >> cap) & 1n;

function running(s: Sandbox): void {
  const r = tsrunDetached(s, ['run', '-d', '-b', s.bundle, s.id]);
  assert.is(r.status, 0, r.stderr);
}

withSandbox(test, 'exec --cap CAP_SYS_ADMIN: the capability is effective and the inheritable set stays empty', ['sleep', '30'], (s) => {
  running(s);
  const r = s.tsrun(['exec', '--cap', 'CAP_SYS_ADMIN', s.id, ...PROBE]);
  assert.is(r.status, 0, `exec --cap: ${r.stderr}`);
  const c = caps(r.stdout);
  // The flag did something (so an empty CapInh is not just an exec that ignored it).
  assert.is(has(c.Eff, CAP_SYS_ADMIN), 1n, `CapEff ${c.Eff.toString(16)} lacks CAP_SYS_ADMIN`);
  assert.is(c.Inh, 0n, `CapInh is ${c.Inh.toString(16)}`);
  assert.is(s.tsrun(['delete', '-f', s.id]).status, 0);
  assert.equal(s.leftovers(), []);
});

withSandbox(test, 'run and exec of the default process: the inheritable set is empty', PROBE, (s) => {
  const r = s.tsrun(['run', '-b', s.bundle, s.id]);
  assert.is(r.status, 0, r.stderr);
  assert.is(caps(r.stdout).Inh, 0n);
  s.config.process.args = ['sleep', '30'];
  s.writeConfig();
  const id = `${s.id}-x`;
  assert.is(tsrunDetached(s, ['run', '-d', '-b', s.bundle, id], '', id).status, 0);
  // A process file with capabilities but no inheritable list: nothing inheritable either.
  const e = s.tsrun(['exec', '-p', processFile(s, PROBE, (p) => (p.capabilities.bounding = [...p.capabilities.bounding, 'CAP_SYS_ADMIN'])), id]);
  assert.is(e.status, 0, e.stderr);
  assert.is(caps(e.stdout).Inh, 0n);
  assert.is(s.tsrun(['delete', '-f', id]).status, 0);
  assert.equal(s.leftovers(), []);
});

withSandbox(test, 'control: a bundle that configures inheritable capabilities shows them in CapInh (run and exec -p)', PROBE, (s) => {
  s.config.process.capabilities.inheritable = ['CAP_SYS_ADMIN', 'CAP_KILL'];
  s.config.process.capabilities.bounding.push('CAP_SYS_ADMIN');
  s.writeConfig();
  const r = s.tsrun(['run', '-b', s.bundle, s.id]);
  assert.is(r.status, 0, r.stderr);
  assert.is(has(caps(r.stdout).Inh, CAP_SYS_ADMIN), 1n, r.stdout);
  s.config.process.args = ['sleep', '30'];
  s.writeConfig();
  const id = `${s.id}-x`;
  assert.is(tsrunDetached(s, ['run', '-d', '-b', s.bundle, id], '', id).status, 0);
  const e = s.tsrun(['exec', '-p', processFile(s, PROBE), id]);
  assert.is(e.status, 0, e.stderr);
  assert.is(has(caps(e.stdout).Inh, CAP_SYS_ADMIN), 1n, e.stdout);
  assert.is(s.tsrun(['delete', '-f', id]).status, 0);
  assert.equal(s.leftovers(), []);
});

test.run();
