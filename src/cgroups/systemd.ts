/**
 * The systemd cgroup driver (`--systemd-cgroup`), like runc's libcontainer/cgroups/systemd: the
 * container's cgroup is a transient unit (a scope, or a slice when the name ends in ".slice")
 * that systemd creates over D-Bus with the init's pid in it, Delegate=yes, and the resources
 * systemd owns as unit properties. Everything else goes through the fs managers
 * (v2/manager.ts, v1/manager.ts) on the unit's own cgroup directory: the resources systemd
 * cannot express, device filters, freezing, stats, OOM events, kill --all. The D-Bus calls are
 * the addon's (sd-bus). Rootless, as runc: the unit is the user's own systemd instance's
 * (user@<uid>.service), over the user bus (userBusAddress), in that manager's user.slice.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SystemdAddon, SystemdBusTarget } from '../native/addon';
import type { PlanMountStep } from '../native/init-plan';
import type { CgroupManager, CgroupState, DestroyOptions, ManagerOptions } from './manager';
import { annotationProps, resourceProps, type UnitProperty } from './systemd-props';
import type { LinuxResources } from './types';
import { CgroupError, errCode, sleep, warnDefault } from './util';
import { checkResources } from './validate';

/** What the saved state records about the unit (CgroupState.systemd). */
export interface SystemdUnitState {
  unit: string;
  /** Slice= (scope) or Wants= (slice) of the unit. */
  slice: string;
  /** The user's manager (rootless) instead of the system one. */
  user: boolean;
  /** org.systemd.property.* of the config, as [name, signature, value] (bigints as {"u64": "…"}). */
  extra?: unknown[];
}

const JOB_TIMEOUT_MS = 30_000;

/** sd_booted(3), as runc's IsRunningSystemd: /run/systemd/system is a directory. */
export function isRunningSystemd(): boolean {
  try {
    return fs.lstatSync('/run/systemd/system').isDirectory();
  } catch {
    return false;
  }
}

export const NOT_RUNNING_SYSTEMD = 'systemd not running on this host, cannot use systemd cgroups manager';

/** false: the system bus; a string: the user's bus at that D-Bus address. */
export type BusTarget = SystemdBusTarget;
/** The addon's D-Bus calls (a type only: importing this module does not load the addon). */
type SystemdBus = SystemdAddon;

let busOverride: SystemdBus | null = null;

/** Tests: replace the D-Bus layer. */
export function setSystemdBus(b: SystemdBus | null): void {
  busOverride = b;
}

function bus(): SystemdBus {
  if (busOverride) return busOverride;
  // Looked up at use time: importing src/cgroups never loads the addon.
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return require('../native/addon').systemdNative() as SystemdBus;
}

/** runc's words (dbus.go) before any failure to reach the bus of the user's manager. */
export const USER_BUS_HINT =
  'failed to connect to dbus (hint: for rootless containers, maybe you need to install dbus-user-session package, see https://github.com/opencontainers/runc/blob/master/docs/cgroup-v2.md)';
/** runc's DetectUserDbusSessionBusAddress error. */
export const NO_USER_BUS =
  'could not detect DBUS_SESSION_BUS_ADDRESS from the environment; make sure you have installed the dbus-user-session or dbus-daemon package; note you may need to re-login';

/** A D-Bus address value (godbus's EscapeBusAddressValue): every byte but a-z A-Z 0-9 - _ / \ . * as %xx. */
function escapeBusAddressValue(v: string): string {
  let out = '';
  for (const byte of Buffer.from(v, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[-_/\\.*a-zA-Z0-9]/.test(c) ? c : `%${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/**
 * The bus of the user's systemd instance, by runc's rule (DetectUserDbusSessionBusAddress):
 * $DBUS_SESSION_BUS_ADDRESS when set, else unix:path=$XDG_RUNTIME_DIR/bus when that exists, else
 * runc's error. No uid is needed for the connection (runc's DetectUID, for a user namespace):
 * sd-bus authenticates with EXTERNAL without an identity, and the bus takes our credentials from
 * the socket (SO_PEERCRED), which are the user's outside any user namespace.
 */
export function userBusAddress(env: NodeJS.ProcessEnv = process.env): string {
  const a = env.DBUS_SESSION_BUS_ADDRESS;
  if (a) return a;
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg) {
    const p = path.join(xdg, 'bus');
    if (fs.existsSync(p)) return `unix:path=${escapeBusAddressValue(p)}`;
  }
  throw new CgroupError(`${USER_BUS_HINT}: ${NO_USER_BUS}`);
}

/**
 * One call to the system manager, or (user) to the user's manager over its bus: a failure to
 * connect to the user bus gets runc's hint (what to install), as runc's getConnection does.
 */
function call<T>(user: boolean, f: (b: SystemdBus, target: BusTarget) => T): T {
  const target: BusTarget = user ? userBusAddress() : false;
  try {
    return f(bus(), target);
  } catch (e) {
    const sys = (e as NodeJS.ErrnoException).syscall;
    if (user && typeof sys === 'string' && sys.startsWith('connect to the user D-Bus')) {
      throw new CgroupError(`${USER_BUS_HINT}: ${(e as Error).message}`, errCode(e));
    }
    throw e;
  }
}

/**
 * The cgroup of the user's manager (user@<uid>.service's, e.g.
 * /user.slice/user-1000.slice/user@1000.service): the slices of a user manager are below it, so a
 * rootless unit's directory is this plus the slice path (runc's getSliceFull).
 */
export function userManagerCgroup(): string {
  return call(true, (b, t) => b.systemdManagerProperty(t, 'ControlGroup'));
}

const versions = new Map<boolean, number>();

/** systemd's version number (Manager.Version "252.39-1~deb12u2" → 252), -1 when unknown. */
export function systemdVersion(user: boolean, warn: (m: string) => void = warnDefault): number {
  const known = versions.get(user);
  if (known !== undefined) return known;
  let v = -1;
  try {
    const m = /v?(\d+)/.exec(call(user, (b, t) => b.systemdManagerProperty(t, 'Version')));
    if (m) v = Number(m[1]);
  } catch (e) {
    warn(`unable to get systemd version: ${(e as Error).message}`);
  }
  versions.set(user, v);
  return v;
}

/** JSON cannot hold bigints or Buffers: the extra properties are saved in a tagged form. */
export function encodeProps(p: UnitProperty[]): unknown[] {
  const enc = (v: unknown): unknown =>
    typeof v === 'bigint' ? { u64: v.toString() } : Buffer.isBuffer(v) ? { bytes: v.toString('hex') } : Array.isArray(v) ? v.map(enc) : v;
  return p.map(([n, s, v]) => [n, s, enc(v)]);
}

export function decodeProps(p: unknown[] | undefined): UnitProperty[] {
  const dec = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(dec);
    if (v && typeof v === 'object') {
      const o = v as { u64?: string; bytes?: string };
      if (typeof o.u64 === 'string') return BigInt(o.u64);
      if (typeof o.bytes === 'string') return Buffer.from(o.bytes, 'hex');
    }
    return v;
  };
  return (p ?? []).map((x) => {
    const [n, s, v] = x as [string, string, unknown];
    return [n, s, dec(v)] as UnitProperty;
  });
}

/** Annotations → saved extra properties (checked at create, before anything exists). */
export function extraFromAnnotations(annotations: Record<string, string> | undefined): unknown[] | undefined {
  const p = annotationProps(annotations);
  return p.length ? encodeProps(p) : undefined;
}

export class SystemdManager implements CgroupManager {
  readonly state: CgroupState;
  private readonly warn: (m: string) => void;
  private readonly unit: SystemdUnitState;
  /** Set when the start found a live unit of that name: it belongs to someone else, destroy leaves it. */
  private foreign = false;

  /** `fsMgr` is the v1 or v2 manager over the unit's own cgroup directories. */
  constructor(
    state: CgroupState,
    private readonly fsMgr: CgroupManager,
    private readonly opts: ManagerOptions = {},
  ) {
    if (!state.systemd) throw new CgroupError('invalid cgroup state: no systemd unit');
    this.state = state;
    this.unit = state.systemd;
    this.warn = opts.warn ?? warnDefault;
  }

  private get v2(): boolean {
    return this.state.layout === 'v2';
  }

  private props(r: LinuxResources, devices: boolean): UnitProperty[] {
    return resourceProps(r, { v2: this.v2, version: () => systemdVersion(this.unit.user, this.warn), warn: this.warn, devices });
  }

  /** Nothing exists before the init's pid is known (a scope cannot be empty): checks only. */
  async create(): Promise<void> {
    const r = this.opts.resources ?? {};
    checkResources(r, this.v2 ? 'v2' : 'v1', true);
    // The conversions fail here, before the init is spawned, for what the properties cannot carry.
    resourceProps(r, { v2: this.v2, version: () => 244, warn: () => {}, devices: true });
  }

  /** Nothing to overlap: systemd makes the cgroup (under the lock a warm-up holds) once the pid is known. */
  primeMigration(): Promise<string | null> {
    return Promise.resolve(null);
  }

  /**
   * StartTransientUnit with the init in PIDs, waited for until its job is done (the unit is
   * active before the init goes on), then the fs managers' part on the unit's directories.
   */
  async apply(pid: number): Promise<void> {
    const { unit, slice, user } = this.unit;
    const isSlice = unit.endsWith('.slice');
    const props: UnitProperty[] = [['Description', 's', `tsrun container ${unit}`]];
    if (isSlice) props.push(['Wants', 'as', [slice]]);
    else props.push(['Slice', 's', slice], ['Delegate', 'b', true]);
    if (pid !== -1) props.push(['PIDs', 'au', [pid]]);
    props.push(
      ['MemoryAccounting', 'b', true],
      ['CPUAccounting', 'b', true],
      [this.v2 ? 'IOAccounting' : 'BlockIOAccounting', 'b', true],
      ['TasksAccounting', 'b', true],
      ['DefaultDependencies', 'b', false],
    );
    props.push(...this.props(this.opts.resources ?? {}, true));
    props.push(...decodeProps(this.unit.extra));
    this.startUnit(unit, props, user);
    // What systemd does not express (and the device filter, as runc does both) goes to the files.
    await this.fsMgr.create();
    // v1: the hierarchies systemd does not manage (cpuset, freezer, ...) get the pid from us; on v2
    // (and in the ones systemd manages) it is already there.
    await this.fsMgr.apply(pid);
  }

  private startUnit(unit: string, props: UnitProperty[], user: boolean): void {
    let result: string;
    try {
      result = call(user, (b, t) => b.systemdStartTransientUnit(t, unit, 'replace', props, JOB_TIMEOUT_MS));
    } catch (e) {
      if (errCode(e) !== 'org.freedesktop.systemd1.UnitExists') throw unitError('start', unit, e);
      // A failed leftover of the same name: reset it (systemd then drops it) and try once more.
      try {
        call(user, (b, t) => b.systemdResetFailedUnit(t, unit));
      } catch {}
      try {
        result = call(user, (b, t) => b.systemdStartTransientUnit(t, unit, 'replace', props, JOB_TIMEOUT_MS));
      } catch (e2) {
        if (errCode(e2) === 'org.freedesktop.systemd1.UnitExists') this.foreign = true;
        throw unitError('start', unit, e2);
      }
    }
    if (result !== 'done') {
      try {
        call(user, (b, t) => b.systemdResetFailedUnit(t, unit));
      } catch {}
      throw new CgroupError(result === '' ? `Timeout waiting for systemd to create ${unit}` : `error creating systemd unit \`${unit}\`: got \`${result}\``);
    }
  }

  async update(resources: LinuxResources): Promise<void> {
    // Before the unit's properties change: a refused value changes nothing.
    checkResources(resources, this.v2 ? 'v2' : 'v1', false);
    const props = this.props(resources, resources.devices !== undefined);
    if (props.length) {
      try {
        call(this.unit.user, (b, t) => b.systemdSetUnitProperties(t, this.unit.unit, true, props));
      } catch (e) {
        throw new CgroupError(`unable to set unit properties: ${(e as Error).message}`);
      }
    }
    await this.fsMgr.update(resources);
  }

  freeze(): Promise<void> {
    return this.fsMgr.freeze();
  }

  thaw(): Promise<void> {
    return this.fsMgr.thaw();
  }

  isFrozen(): boolean {
    return this.fsMgr.isFrozen();
  }

  pids(): number[] {
    return this.fsMgr.pids();
  }

  killAll(signal: number): void {
    // Not into another container's unit (our init never got into it: the caller kills it by pid).
    if (this.foreign) return;
    this.fsMgr.killAll(signal);
  }

  statsJson(): string {
    return this.fsMgr.statsJson();
  }

  watchOom(onOom: () => void): () => void {
    return this.fsMgr.watchOom(onOom);
  }

  /**
   * StopUnit (waited for), ResetFailedUnit when the unit failed (an OOM kill fails a scope), and
   * wait until systemd has dropped it; then whatever directories are left (v1 hierarchies we made).
   */
  async destroy(opts: DestroyOptions = {}): Promise<void> {
    // A failed create must not stop (or empty) another container's live unit of the same name.
    if (this.foreign) return;
    const { unit, user } = this.unit;
    if (opts.killLeftovers) {
      try {
        this.fsMgr.killAll(9);
      } catch {}
    }
    let stopErr: Error | null = null;
    try {
      const r = call(user, (b, t) => b.systemdStopUnit(t, unit, 'replace', JOB_TIMEOUT_MS));
      if (r === '') stopErr = new CgroupError(`Timed out while waiting for systemd to remove ${unit}`);
      else if (r !== 'done') this.warn(`error removing unit \`${unit}\`: got \`${r}\`. Continuing...`);
    } catch (e) {
      if (errCode(e) !== 'org.freedesktop.systemd1.NoSuchUnit') stopErr = unitError('stop', unit, e);
    }
    const deadline = Date.now() + (opts.timeoutMs ?? 5000);
    let reset = false;
    for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
      let st: ReturnType<SystemdBus['systemdUnitState']>;
      try {
        st = call(user, (b, t) => b.systemdUnitState(t, unit));
      } catch (e) {
        // No bus (systemd, or the user's manager, is gone): the stop's error says so; the
        // directories are still removed below.
        stopErr ??= unitError('stop', unit, e);
        break;
      }
      if (!st) break;
      if (st.activeState === 'failed' && !reset) {
        reset = true;
        try {
          call(user, (b, t) => b.systemdResetFailedUnit(t, unit));
        } catch (e) {
          this.warn(`unable to reset failed unit: ${(e as Error).message}`);
        }
        continue;
      }
      if (Date.now() >= deadline) {
        // Stopped but still loaded (someone holds a reference): systemd drops it later.
        if (st.activeState === 'inactive') break;
        stopErr ??= new CgroupError(`systemd unit ${unit} is still ${st.activeState} (${st.subState}) after it was stopped`);
        break;
      }
      await sleep(delay);
    }
    await this.fsMgr.destroy({ ...opts, timeoutMs: Math.max(500, deadline - Date.now()) });
    if (stopErr) throw stopErr;
  }

  mountSteps(destination: string, flags: number, newCgroupNamespace: boolean): PlanMountStep[] {
    return this.fsMgr.mountSteps(destination, flags, newCgroupNamespace);
  }
}

function unitError(verb: string, unit: string, e: unknown): CgroupError {
  const code = errCode(e);
  // (The user bus's connection errors already carry runc's hint.)
  if ((code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'EACCES') && !(e as Error).message.startsWith(USER_BUS_HINT)) {
    return new CgroupError(`unable to ${verb} unit ${JSON.stringify(unit)}: cannot reach systemd over D-Bus (${(e as Error).message})`, code);
  }
  return new CgroupError(`unable to ${verb} unit ${JSON.stringify(unit)}: ${(e as Error).message}`, code);
}
