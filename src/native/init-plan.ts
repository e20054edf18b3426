/**
 * The contract between the TypeScript runtime and the native container init (`tsrun-init`).
 *
 * Node never forks a process that runs JavaScript inside a container. Instead it spawns the small,
 * single-threaded C++ program `tsrun-init` (built from addon/init/) and sends it one InitPlan as a
 * JSON line on the sync socket. Everything in the plan is already validated and resolved by
 * TypeScript (numbers, not names: mount flags, clone flags, capability numbers, signal numbers), so
 * the C++ side only checks it as a whole and executes it, in order. See addon/init/PROTOCOL.md for
 * the message flow.
 *
 * The plan's shape (every object, field, type, range and enum) is defined once, in
 * schemas/plan.schema.json: scripts/build-plan.mjs generates these types (./plan.gen.ts) and the
 * init's C++ types and check (addon/init/plan.gen.h, plan_schema.gen.inc) from it. Change the schema,
 * not the types.
 */
export type {
  CreatePlan,
  ExecPlan,
  InitPlan,
  PlanCapabilities,
  PlanDevice,
  PlanHook,
  PlanIdmap,
  PlanIdMapping,
  PlanMountStep,
  PlanNamespace,
  PlanNamespaceType,
  PlanProcess,
  PlanRlimit,
  PlanSeccomp,
  PlanTimeOffset,
} from './plan.gen';

/** Messages from the init to the parent, one JSON object a line on the sync socket. */
export type InitMessage =
  | { type: 'pid'; pid: number }
  | { type: 'hooks' }
  /** The createContainer hooks begin: a failure from here on continues with poststop (runtime.md). */
  | { type: 'createContainerHooks' }
  | { type: 'ready' }
  | { type: 'exit'; status: number }
  /** phase and errno: absent only on errors the parent makes up (a truncated message). */
  | { type: 'error'; message: string; phase?: 'plan' | 'namespaces' | 'rootfs' | 'hooks' | 'process' | 'exec'; errno?: number };
