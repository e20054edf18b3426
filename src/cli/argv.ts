/**
 * The fast path of the command line: it parses the ordinary command lines of containerd, dockerd
 * and podman without loading yargs at all, from the same option definitions (each command's yargs
 * builder is run against a recorder instead of yargs). It accepts only command lines whose
 * meaning is plain (known options, each given once, values where they must be, the right number
 * of positionals) and builds the argv yargs would (kebab and camelCase keys, aliases, defaults,
 * `_`, `$0`, `--`); anything else — -h/--help, an unknown option, a missing id, `--opt=value` of a
 * boolean, a value that starts with a dash, a repeated option — returns null and goes to yargs,
 * which then prints exactly the help or error it always did. test/cli-dispatch.test.ts checks the
 * two agree.
 *
 * No command module is imported here: the caller passes the commands it knows (dispatch.ts).
 */
import type { Argv, CommandModule } from 'yargs';

export type Command = CommandModule<any, any>;

/** The options every command takes, in yargs' registration order. */
export const GLOBAL_OPTIONS: [string, Record<string, unknown>][] = [
  ['root', { type: 'string', describe: 'directory for container state (tmpfs recommended); default /run/tsrun, or $XDG_RUNTIME_DIR/tsrun when run as a user other than root', global: true }],
  ['log', { type: 'string', describe: 'append log records to this file (default: stderr)', global: true }],
  ['log-format', { choices: ['text', 'json'], default: 'text', describe: 'format of the log records', global: true }],
  ['debug', { type: 'boolean', default: false, describe: 'log debug records', global: true }],
  ['systemd-cgroup', { type: 'boolean', default: false, describe: 'create the container\'s cgroup as a transient systemd unit (cgroupsPath "slice:prefix:name"; default system.slice, tsrun-<id>.scope; rootless: a unit of your own systemd instance, in its user.slice)', global: true }],
  ['rootless', { type: 'string', describe: "ignore cgroup permission errors (runc's rootless cgroup manager): true|false|auto (auto: true when not root or inside a user namespace). Running as a user other than root is rootless in any case", global: true }],
];
/** The global options that take a value (--root, --log, --log-format, --rootless): the next word is theirs. */
const GLOBAL_VALUE_OPTIONS = new Set(GLOBAL_OPTIONS.filter(([, o]) => o.type !== 'boolean').map(([n]) => `--${n}`));

/** The command's names: its own and its aliases (`list` is also `ps-all`). */
export function commandNames(c: Command): string[] {
  const aliases = c.aliases === undefined ? [] : Array.isArray(c.aliases) ? c.aliases : [c.aliases];
  return [String(c.command).split(' ')[0], ...aliases];
}

/** Where the command is: the first word that is not a global option (or its value); -1 if none. */
export function commandIndex(args: string[]): number {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') return i + 1 < args.length ? i + 1 : -1;
    if (a.startsWith('-')) {
      if (GLOBAL_VALUE_OPTIONS.has(a)) i++;
      continue;
    }
    return i;
  }
  return -1;
}

/** The first word that is not a global option (or its value): the command, if any. */
export function commandWord(args: string[]): string | undefined {
  const i = commandIndex(args);
  return i < 0 ? undefined : args[i];
}


interface OptionDef {
  /** Canonical (kebab-case) name. */
  name: string;
  type: 'string' | 'boolean' | 'number';
  array: boolean;
  aliases: string[];
  choices?: readonly unknown[];
  default?: unknown;
  hasDefault: boolean;
}

interface PositionalDef {
  name: string;
  variadic: boolean;
  optional: boolean;
  default?: unknown;
  hasDefault: boolean;
}

interface CommandDef {
  names: string[];
  positionals: PositionalDef[];
  options: OptionDef[];
  /** `--x` and `-x` (long names, aliases) → option. */
  byFlag: Map<string, OptionDef>;
  handler: (argv: unknown) => unknown;
}

function optionDef(name: string, o: Record<string, unknown>): OptionDef | null {
  const type = o.choices ? 'string' : (o.type as OptionDef['type']);
  if (type !== 'string' && type !== 'boolean' && type !== 'number') return null;
  const alias = o.alias === undefined ? [] : Array.isArray(o.alias) ? (o.alias as string[]) : [o.alias as string];
  return { name, type, array: !!o.array, aliases: alias, choices: o.choices as unknown[] | undefined, default: o.default, hasDefault: 'default' in o };
}

const camel = (s: string) => s.replace(/-+([^-])/g, (_, c: string) => c.toUpperCase());

/** Runs a yargs builder against a recorder: its positionals and options, or null if it does more. */
function recordBuilder(c: Command): { positionals: Map<string, Record<string, unknown>>; options: OptionDef[] } | null {
  const positionals = new Map<string, Record<string, unknown>>();
  const options: OptionDef[] = [];
  let ok = true;
  const recorder: Record<string, unknown> = {
    positional(name: string, o: Record<string, unknown>) {
      positionals.set(name, o);
      return recorder;
    },
    option(name: string, o: Record<string, unknown>) {
      const d = optionDef(name, o);
      if (!d) ok = false;
      else options.push(d);
      return recorder;
    },
  };
  const builder = c.builder;
  if (typeof builder !== 'function') return builder === undefined ? { positionals, options } : null;
  try {
    builder(recorder as unknown as Argv);
  } catch {
    return null; // a builder that uses more of yargs than the recorder has: yargs parses it
  }
  return ok ? { positionals, options } : null;
}

let globalDefs: OptionDef[] | null = null;
const commandDefs = new Map<Command, CommandDef | null>();

export function commandDef(c: Command): CommandDef | null {
  if (commandDefs.has(c)) return commandDefs.get(c)!;
  let def: CommandDef | null = null;
  const rec = recordBuilder(c);
  globalDefs ??= GLOBAL_OPTIONS.map(([n, o]) => optionDef(n, o)!);
  if (rec) {
    const positionals: PositionalDef[] = [];
    let ok = true;
    for (const m of String(c.command).matchAll(/([<[])([^\]>]+)[\]>]/g)) {
      const variadic = m[2].endsWith('..');
      const name = variadic ? m[2].slice(0, -2) : m[2];
      const o = rec.positionals.get(name) ?? {};
      if (o.type !== undefined && o.type !== 'string') ok = false;
      positionals.push({ name, variadic, optional: m[1] === '[', default: o.default, hasDefault: 'default' in o });
    }
    const options = [...globalDefs, ...rec.options];
    const byFlag = new Map<string, OptionDef>();
    for (const o of options) {
      for (const n of [o.name, ...o.aliases]) {
        const flag = n.length === 1 ? `-${n}` : `--${n}`;
        if (byFlag.has(flag)) ok = false;
        byFlag.set(flag, o);
      }
    }
    if (ok && c.handler) def = { names: commandNames(c), positionals, options, byFlag, handler: c.handler as CommandDef['handler'] };
  }
  commandDefs.set(c, def);
  return def;
}

export interface FastParse {
  argv: Record<string, unknown>;
  handler: (argv: unknown) => unknown;
}

/**
 * The argv yargs would give the command's handler for `args` (already through joinDashValues and
 * protectArgs), or null when the command line is anything but plain: then yargs must parse it.
 */
export function fastArgv(args: string[], commands: Command[]): FastParse | null {
  const word = commandWord(args);
  if (word === undefined) return null;
  const c = commands.find((x) => commandNames(x).includes(word));
  if (!c) return null;
  const def = commandDef(c);
  if (!def) return null;

  const values = new Map<OptionDef, unknown>();
  const words: string[] = [];
  let rest: string[] | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') {
      rest = args.slice(i + 1);
      break;
    }
    if (!a.startsWith('-')) {
      words.push(a);
      continue;
    }
    let flag = a;
    let inline: string | undefined;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 2) {
      flag = a.slice(0, eq);
      inline = a.slice(eq + 1);
    }
    const o = def.byFlag.get(flag);
    if (!o) return null; // -h, --help, unknown, grouped short flags, camelCase spellings…
    if (values.has(o) && !o.array) return null; // yargs would make an array of it
    let value: unknown;
    if (o.type === 'boolean') {
      if (inline !== undefined) return null;
      // yargs takes a following "true"/"false" as the flag's value.
      if (args[i + 1] === 'true' || args[i + 1] === 'false') return null;
      value = true;
    } else {
      let text = inline;
      if (text === undefined) {
        text = args[i + 1];
        if (text === undefined || text === '--') return null;
        i++;
      }
      if (text === '' || text.startsWith('-') && text !== '-') return null;
      if (text === '-' && inline === undefined) return null; // yargs would read "-" as a positional
      if (o.type === 'number') {
        if (!/^(0|[1-9]\d{0,9})$/.test(text)) return null;
        value = Number(text);
      } else value = text;
      if (o.choices && !o.choices.includes(value)) return null;
    }
    if (o.array) {
      const prev = (values.get(o) as unknown[] | undefined) ?? [];
      values.set(o, [...prev, value]);
    } else values.set(o, value);
  }

  // The first word is the command itself; the others are its positionals, in order.
  if (words[0] !== word) return null;
  const given = words.slice(1);
  const argv: Record<string, unknown> = { _: [word] };
  let k = 0;
  for (const p of def.positionals) {
    let v: unknown;
    if (p.variadic) {
      v = given.slice(k);
      k = given.length;
      if ((v as unknown[]).length === 0) {
        if (!p.optional) return null;
        v = p.hasDefault ? p.default : undefined;
      }
    } else if (k < given.length) {
      v = given[k++];
    } else {
      if (!p.optional) return null;
      v = p.hasDefault ? p.default : undefined;
    }
    if (v !== undefined) {
      argv[p.name] = v;
      // A camelCase positional also gets its kebab-case key (psArgs, ps-args), as yargs does.
      const kebab = p.name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
      if (kebab !== p.name) argv[kebab] = v;
    }
  }
  if (k < given.length) return null; // strict: unknown arguments
  if (rest !== undefined && def.positionals.every((p) => !p.variadic)) return null;
  // yargs sets `--` only when something follows it.
  if (rest !== undefined && rest.length > 0) argv['--'] = rest;

  for (const o of def.options) {
    let v: unknown;
    if (values.has(o)) v = values.get(o);
    else if (o.hasDefault) v = o.default;
    else continue;
    for (const n of [o.name, ...o.aliases]) {
      argv[n] = v;
      const cc = camel(n);
      if (cc !== n) argv[cc] = v;
    }
  }
  argv.$0 = 'tsrun';
  return { argv, handler: def.handler };
}
