/**
 * The container state machine as one table, as runc's state_linux.go: for each operation on an
 * existing container, the statuses it is allowed from and what it moves the container to, and
 * the error (runc's words: containerd's go-runc and dockerd compare them) it gives from any other
 * status. Every operation checks its precondition here, under the container's lock where it takes
 * one; the status itself is never stored (state.ts deriveStatus reads it from the world).
 *
 *   (none) --create--> created --start--> running --(init exits)--> stopped --delete--> (none)
 *                         |                 |  ^
 *                         |              pause resume
 *                         |                 v  |
 *                         |               paused
 *                         +--delete -f (kills the waiting init)--> (none)
 *
 * create is not in the table: its precondition is that no container of that id exists (its state
 * directory is made exclusively; errExists otherwise), and it leaves the container created.
 */
import type { OciState } from './state-store';
import { RuntimeError, errNotPaused, errNotRunning, errState } from './errors';

export type Status = OciState['status'];

/**
 * What an allowed operation does to the status: a new status; 'same' (the operation does not
 * change it: exec, update, a signal — whose effect the init decides); 'unchanged' (already there:
 * the operation does nothing, as pause of a paused container); 'gone' (deleted).
 */
export type Outcome = Status | 'same' | 'unchanged' | 'gone';

export type Operation = 'start' | 'pause' | 'resume' | 'exec' | 'execIgnorePaused' | 'update' | 'kill' | 'killAll' | 'delete' | 'forceDelete' | 'events' | 'stats';

interface Rule {
  allowed: Partial<Record<Status, Outcome>>;
  /** The error from any status not in `allowed`. */
  refuse(status: Status, id: string): RuntimeError;
}

const ALL: Status[] = ['creating', 'created', 'running', 'paused', 'stopped'];
// Plain loops, not Object.fromEntries: this table is built on every CLI call that checks a
// status, and fromEntries showed in events' profile on Bun's interpreter.
function allBut(except: Status | null, outcome: Outcome): Partial<Record<Status, Outcome>> {
  const allowed: Partial<Record<Status, Outcome>> = {};
  for (const s of ALL) if (s !== except) allowed[s] = outcome;
  return allowed;
}
const every = (outcome: Outcome) => allBut(null, outcome) as Record<Status, Outcome>;

export const TRANSITIONS: Record<Operation, Rule> = {
  start: {
    allowed: { created: 'running' },
    refuse: (status) =>
      status === 'running' || status === 'paused'
        ? errState('cannot start an already running container')
        : status === 'stopped'
          ? errState('cannot start a container that has stopped')
          : errState(`cannot start a container in the ${status} state`),
  },
  // runc pauses running and created containers alike; a paused one is left as it is.
  pause: { allowed: { running: 'paused', created: 'paused', paused: 'unchanged' }, refuse: () => errNotRunning() },
  resume: { allowed: { paused: 'running' }, refuse: () => errNotPaused() },
  // A creating container is not refused (runc has no such status): the exec fails in the init.
  exec: {
    allowed: { creating: 'same', created: 'same', running: 'same' },
    refuse: (status) => (status === 'paused' ? errState('cannot exec in a paused container (use --ignore-paused to override)') : errState('cannot exec in a stopped container')),
  },
  execIgnorePaused: { allowed: allBut('stopped', 'same'), refuse: () => errState('cannot exec in a stopped container') },
  update: { allowed: allBut('stopped', 'same'), refuse: () => errNotRunning() },
  // The init's signal decides whether it stops. A creating container has no init to signal yet.
  kill: { allowed: { created: 'same', running: 'same', paused: 'same' }, refuse: () => errNotRunning() },
  // runc: kill --all of a stopped container succeeds (there may be nothing left to signal).
  killAll: { allowed: every('same'), refuse: () => errNotRunning() },
  // The spec is explicit (runtime.md, delete): a container that is not stopped MUST NOT be
  // deleted. runc 1.1 deletes created containers anyway; tsrun follows the spec and asks for -f.
  delete: { allowed: { stopped: 'gone' }, refuse: (status, id) => errState(`cannot delete container ${id} that is not stopped: ${status}`) },
  // delete -f kills whatever still runs first.
  forceDelete: { allowed: every('gone'), refuse: () => errNotRunning() },
  events: { allowed: allBut('stopped', 'same'), refuse: () => errNotRunning() },
  stats: { allowed: allBut('stopped', 'same'), refuse: () => errNotRunning() },
};

/** The operation's outcome from `status`; throws the operation's error when it is not allowed. */
export function checkTransition(op: Operation, status: Status, id: string): Outcome {
  const rule = TRANSITIONS[op];
  const outcome = rule.allowed[status];
  if (outcome === undefined) throw rule.refuse(status, id);
  return outcome;
}
