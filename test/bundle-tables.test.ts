/** Name ↔ number tables: signals (kill), capabilities, mount options, as runc maps them. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { capabilityNumber, capabilityNumbers, CAPABILITY_NAMES } from '../src/bundle/capabilities';
import * as M from '../src/bundle/mount-options';
import { parseSignal, signalName } from '../src/bundle/signals';

test('signals: KILL, SIGKILL, kill, 9 are the same; RT signals; numbers up to 64', () => {
  for (const s of ['KILL', 'SIGKILL', 'kill', 'sigkill', '9']) assert.is(parseSignal(s), 9, s);
  assert.is(parseSignal('TERM'), 15);
  assert.is(parseSignal('SIGCHLD'), 17);
  assert.is(parseSignal('WINCH'), 28);
  assert.is(parseSignal('SIGSYS'), 31);
  assert.is(parseSignal('RTMIN'), 34);
  assert.is(parseSignal('SIGRTMIN+3'), 37);
  assert.is(parseSignal('RTMAX-1'), 63);
  assert.is(parseSignal('0'), 0);
  assert.is(signalName(37), 'SIGRTMIN+3');
  assert.is(signalName(15), 'SIGTERM');
  for (const bad of ['SIGNOPE', 'NOPE', '65', '-1', '', 'RTMAX+1', '9x']) {
    assert.throws(() => parseSignal(bad), (e: Error) => e.message === `invalid signal: ${bad}`, bad);
  }
});

test('capabilities: CAP_CHOWN=0 … CAP_CHECKPOINT_RESTORE=40, unknown ones collected, not fatal', () => {
  assert.is(CAPABILITY_NAMES.length, 41);
  assert.is(capabilityNumber('CAP_CHOWN'), 0);
  assert.is(capabilityNumber('CAP_SYS_ADMIN'), 21);
  assert.is(capabilityNumber('CAP_AUDIT_WRITE'), 29);
  assert.is(capabilityNumber('CAP_CHECKPOINT_RESTORE'), 40);
  assert.is(capabilityNumber('CAP_NOPE'), undefined);
  const unknown = new Set<string>();
  assert.equal(capabilityNumbers(['CAP_KILL', 'CAP_NOPE', 'CAP_KILL', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE'], unknown, 39), [5, 39]);
  // Above the kernel's cap_last_cap: unavailable, like an unknown name.
  assert.equal([...unknown].sort(), ['CAP_CHECKPOINT_RESTORE', 'CAP_NOPE']);
});

test('mount options: flags set and cleared in order, data for the rest', () => {
  const p = M.parseMountOptions(['nosuid', 'strictatime', 'mode=755', 'size=65536k']);
  assert.is(p.flags, M.MS_NOSUID | M.MS_STRICTATIME);
  assert.is(p.data, 'mode=755,size=65536k');
  assert.is(M.parseMountOptions(['ro', 'rw']).flags, 0, 'rw after ro clears it');
  assert.is(M.parseMountOptions(['rw', 'ro']).flags, M.MS_RDONLY);
  assert.is(M.parseMountOptions(['rbind']).flags, M.MS_BIND | M.MS_REC);
  assert.is(M.parseMountOptions(['bind', 'nodev', 'noexec', 'relatime']).flags, M.MS_BIND | M.MS_NODEV | M.MS_NOEXEC | M.MS_RELATIME);
  assert.is(M.parseMountOptions(['nosuid', 'suid', 'exec', 'defaults']).flags, 0);
  assert.is(M.parseMountOptions(['newinstance', 'ptmxmode=0666', 'gid=5']).data, 'newinstance,ptmxmode=0666,gid=5');
});

test('mount options: propagation in order, recursive attributes (atime modes clear _ATIME)', () => {
  assert.equal(M.parseMountOptions(['rprivate', 'shared']).propagation, [M.MS_PRIVATE | M.MS_REC, M.MS_SHARED]);
  assert.equal(M.parseMountOptions(['rslave', 'runbindable']).propagation, [M.MS_SLAVE | M.MS_REC, M.MS_UNBINDABLE | M.MS_REC]);
  const r = M.parseMountOptions(['rro', 'rnosuid', 'rexec']);
  assert.is(r.recursiveAttrSet, M.MOUNT_ATTR_RDONLY | M.MOUNT_ATTR_NOSUID);
  assert.is(r.recursiveAttrClear, M.MOUNT_ATTR_NOEXEC);
  const a = M.parseMountOptions(['rnoatime']);
  assert.is(a.recursiveAttrSet, M.MOUNT_ATTR_NOATIME);
  assert.is(a.recursiveAttrClear, M.MOUNT_ATTR__ATIME);
  assert.is(M.parseMountOptions(['rrelatime']).recursiveAttrClear, M.MOUNT_ATTR__ATIME);
  // runc's extensions are never fs data: tmpcopyup (for tmpfs), idmap (top mount), ridmap (all).
  assert.is(M.parseMountOptions(['tmpcopyup']).copyUp, true);
  assert.is(M.parseMountOptions(['tmpcopyup']).data, '');
  assert.is(M.parseMountOptions(['tmpcopyup']).idmapRecursive, undefined);
  assert.is(M.parseMountOptions(['rbind', 'idmap']).idmapRecursive, false);
  assert.is(M.parseMountOptions(['rbind', 'ridmap']).idmapRecursive, true);
  assert.is(M.parseMountOptions(['rbind', 'ridmap']).data, '');
});

test('mount options: every option `features` advertises is recognised (not passed as data)', () => {
  const { MOUNT_OPTIONS } = require('../src/container/features') as { MOUNT_OPTIONS: string[] };
  const known = new Set(M.knownMountOptions());
  for (const o of MOUNT_OPTIONS) assert.ok(known.has(o), `${o} is advertised but not parsed`);
});

test.run();
