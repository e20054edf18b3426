/**
 * The Container handle: what a long-running caller (the containerd shim) and the CLI drive. Each
 * method is one operation, one file each (create.ts, start.ts, kill.ts, delete.ts, pause.ts,
 * update.ts, exec.ts, state.ts); the handle adds what a daemon needs on top: the init's pid
 * together with a promise of its exit status, and an exec that reports its pid before its exit.
 * Which operation is allowed from which status, and what it moves the container to, is the table
 * in transitions.ts (runc's state_linux.go); `status` is derived from the world each time
 * (state.ts deriveStatus).
 */
import { parseStats } from '../cgroups/stats';
import type { CgroupStats } from '../cgroups/types';
import type { Process } from '../bundle/types';
import { managerOf } from './container-cgroup';
import type { RuntimeContext } from './context';
import { createContainer, type CreateOptions } from './create';
import { deleteContainer } from './delete';
import { errNotRunning } from './errors';
import { exitStatus, startExec, type ExecOptions, type StartedProcess } from './exec';
import { killContainer } from './kill';
import { pauseContainer, resumeContainer } from './pause';
import { containerPids } from './pids';
import { startContainer } from './start';
import { containerState, deriveStatus, loadContainer } from './state';
import type { OciState } from './state-store';
import { checkTransition } from './transitions';
import { updateContainer } from './update';

export type ContainerCreateOptions = Omit<CreateOptions, 'id' | 'bundle' | 'superviseExit'>;
export type ContainerExecOptions = Omit<ExecOptions, 'id' | 'process' | 'detach'>;

export class Container {
  private constructor(
    readonly ctx: RuntimeContext,
    readonly id: string,
    /** Host pid of the init (0 until created). */
    readonly pid: number,
    /** The init's exit status (128+signal), when this handle created it; null for a loaded one. */
    readonly exited: Promise<number> | null,
  ) {}

  /**
   * Creates the container and leaves its init waiting for start. Stage 0 stays the init's parent
   * and reports its exit, so that `exited` resolves without anybody waiting for arbitrary children
   * of this process.
   */
  static async create(ctx: RuntimeContext, id: string, bundle: string, opts: ContainerCreateOptions = {}): Promise<Container> {
    const created = await createContainer(ctx, { ...opts, id, bundle, superviseExit: true });
    const exited = created.init ? exitStatus(created.init) : Promise.resolve(255);
    // Nobody may be listening yet: a rejected promise must never be "unhandled".
    exited.catch(() => {});
    return new Container(ctx, id, created.saved.initPid, exited);
  }

  /**
   * delete -f by id, whatever is left: also a container whose state file was never written or is
   * corrupt (its intent record names what to remove), which no handle can be loaded for.
   */
  static forceDelete(ctx: RuntimeContext, id: string): Promise<void> {
    return deleteContainer(ctx, id, true);
  }

  /** A handle on an existing container (NotFound when there is none). */
  static load(ctx: RuntimeContext, id: string): Container {
    const saved = loadContainer(ctx.root, id);
    return new Container(ctx, id, saved.initPid, null);
  }

  state(): OciState {
    return containerState(this.ctx, this.id);
  }

  status(): OciState['status'] {
    return deriveStatus(this.ctx.root, loadContainer(this.ctx.root, this.id));
  }

  start(): Promise<void> {
    return startContainer(this.ctx, this.id);
  }

  kill(signal: number, all = false): Promise<void> {
    return killContainer(this.ctx, this.id, signal, all);
  }

  delete(force = false): Promise<void> {
    return deleteContainer(this.ctx, this.id, force);
  }

  pause(): Promise<void> {
    return pauseContainer(this.ctx, this.id);
  }

  resume(): Promise<void> {
    return resumeContainer(this.ctx, this.id);
  }

  update(resources: Record<string, unknown>): Promise<void> {
    return updateContainer(this.ctx, this.id, resources);
  }

  /** A new process in the container: resolves once it runs, with its pid and exit promise. */
  async exec(process: Process, opts: ContainerExecOptions = {}): Promise<StartedProcess> {
    const started = await startExec(this.ctx, { ...opts, id: this.id, process });
    started.exited.catch(() => {});
    return started;
  }

  /** Host pids of every process in the container's cgroup. */
  pids(): number[] {
    return containerPids(this.ctx, this.id);
  }

  /** runc's `events --stats` data. */
  stats(): CgroupStats {
    const saved = loadContainer(this.ctx.root, this.id);
    checkTransition('stats', deriveStatus(this.ctx.root, saved), this.id);
    if (!saved.cgroup) throw errNotRunning();
    return parseStats(managerOf(this.ctx, saved.cgroup).statsJson());
  }

  /** Calls `onOom` at every OOM kill in the container's cgroup; returns the stop function. */
  watchOom(onOom: () => void): () => void {
    const saved = loadContainer(this.ctx.root, this.id);
    if (!saved.cgroup) return () => {};
    return managerOf(this.ctx, saved.cgroup).watchOom(onOom);
  }

  /** Whether the container has a pid namespace of its own (else its processes outlive its init). */
  hasOwnPidNamespace(): boolean {
    const saved = loadContainer(this.ctx.root, this.id);
    return (saved.config.linux?.namespaces ?? []).some((n) => n.type === 'pid' && !n.path);
  }

  /** The cgroup version that holds the container's resources (v1 on a hybrid host, as runc). */
  cgroupVersion(): 1 | 2 {
    const saved = loadContainer(this.ctx.root, this.id);
    return saved.cgroup?.layout === 'v2' ? 2 : 1;
  }
}
