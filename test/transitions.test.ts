/**
 * The state machine table (src/container/transitions.ts) on its own: what each operation is
 * allowed from and runc's error text from every other status (clients compare the texts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { errorKind } from '../src/container/errors';
import { checkTransition, type Operation, type Status } from '../src/container/transitions';

const refusal = (op: Operation, status: Status): string | null => {
  try {
    checkTransition(op, status, 'c1');
    return null;
  } catch (e) {
    assert.is(errorKind(e), 'FailedPrecondition', `${op} from ${status}`);
    return (e as Error).message;
  }
};

test('start: created only, with runc\'s three refusals', () => {
  assert.is(checkTransition('start', 'created', 'c1'), 'running');
  assert.is(refusal('start', 'running'), 'cannot start an already running container');
  assert.is(refusal('start', 'paused'), 'cannot start an already running container');
  assert.is(refusal('start', 'stopped'), 'cannot start a container that has stopped');
  assert.is(refusal('start', 'creating'), 'cannot start a container in the creating state');
});

test('pause, resume: a paused container is left as it is; resume wants paused', () => {
  assert.is(checkTransition('pause', 'running', 'c1'), 'paused');
  assert.is(checkTransition('pause', 'created', 'c1'), 'paused');
  assert.is(checkTransition('pause', 'paused', 'c1'), 'unchanged');
  assert.is(refusal('pause', 'stopped'), 'container not running');
  assert.is(checkTransition('resume', 'paused', 'c1'), 'running');
  for (const s of ['created', 'running', 'stopped', 'creating'] as Status[]) assert.is(refusal('resume', s), 'container not paused');
});

test('exec, update, kill, delete', () => {
  assert.is(refusal('exec', 'paused'), 'cannot exec in a paused container (use --ignore-paused to override)');
  assert.is(refusal('exec', 'stopped'), 'cannot exec in a stopped container');
  assert.is(checkTransition('execIgnorePaused', 'paused', 'c1'), 'same');
  assert.is(refusal('update', 'stopped'), 'container not running');
  assert.is(checkTransition('update', 'paused', 'c1'), 'same');
  assert.is(refusal('kill', 'stopped'), 'container not running');
  assert.is(refusal('kill', 'creating'), 'container not running');
  assert.is(checkTransition('killAll', 'stopped', 'c1'), 'same');
  assert.is(checkTransition('delete', 'stopped', 'c1'), 'gone');
  assert.is(refusal('delete', 'running'), 'cannot delete container c1 that is not stopped: running');
  assert.is(refusal('delete', 'created'), 'cannot delete container c1 that is not stopped: created');
  for (const s of ['creating', 'created', 'running', 'paused', 'stopped'] as Status[]) assert.is(checkTransition('forceDelete', s, 'c1'), 'gone');
});

test.run();
