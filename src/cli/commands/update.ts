import * as fs from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { action, type GlobalArgs } from '../context';

interface UpdateArgs extends GlobalArgs {
  id: string;
  resources?: string;
  'blkio-weight'?: number;
  'cpu-period'?: number;
  'cpu-quota'?: number;
  'cpu-share'?: number;
  'cpu-rt-period'?: number;
  'cpu-rt-runtime'?: number;
  'cpuset-cpus'?: string;
  'cpuset-mems'?: string;
  'kernel-memory'?: string;
  'kernel-memory-tcp'?: string;
  memory?: string;
  'memory-reservation'?: string;
  'memory-swap'?: string;
  'pids-limit'?: number;
  'l3-cache-schema'?: string;
  'mem-bw-schema'?: string;
}

/** Docker's units.RAMInBytes, which runc uses: 512, 32m, 1.5g, -1 (unlimited). */
export function parseBytes(flag: string, v: string): number {
  const m = /^(-?\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?$/i.exec(v.trim());
  if (!m) throw new Error(`invalid value for --${flag}: ${v}`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 }[m[2].toLowerCase() as '' | 'k'];
  return Math.round(Number(m[1]) * mult!);
}

const command: CommandModule<any, any> = {
  command: 'update <id>',
  describe: 'update the resource limits of a container (runc\'s flags, or --resources FILE|- with LinuxResources JSON)',
  builder: (y) =>
    y
      .positional('id', { type: 'string', demandOption: true })
      .option('resources', { alias: 'r', type: 'string', describe: 'LinuxResources JSON file, "-" for stdin; other flags are then ignored' })
      .option('blkio-weight', { type: 'number', describe: 'block IO weight (10-1000)' })
      .option('cpu-period', { type: 'number', describe: 'CPU CFS period (µs)' })
      .option('cpu-quota', { type: 'number', describe: 'CPU CFS quota (µs)' })
      .option('cpu-share', { alias: 'cpu-shares', type: 'number', describe: 'CPU shares (relative weight)' })
      .option('cpu-rt-period', { type: 'number', describe: 'CPU realtime period (µs)' })
      .option('cpu-rt-runtime', { type: 'number', describe: 'CPU realtime runtime (µs)' })
      .option('cpuset-cpus', { type: 'string', describe: 'CPUs allowed (0-3, 0,1)' })
      .option('cpuset-mems', { type: 'string', describe: 'memory nodes allowed' })
      .option('kernel-memory', { type: 'string', describe: 'kernel memory limit (ignored where the kernel has none)' })
      .option('kernel-memory-tcp', { type: 'string', describe: 'kernel TCP memory limit (ignored where the kernel has none)' })
      .option('memory', { type: 'string', describe: 'memory limit (bytes, or 32m, 1g)' })
      .option('memory-reservation', { type: 'string', describe: 'memory soft limit' })
      .option('memory-swap', { type: 'string', describe: 'memory + swap limit (-1 unlimited)' })
      .option('pids-limit', { type: 'number', describe: 'maximum number of pids (-1 unlimited)' })
      .option('l3-cache-schema', { type: 'string', describe: 'Intel RDT L3 cache schema (not supported)' })
      .option('mem-bw-schema', { type: 'string', describe: 'Intel RDT memory bandwidth schema (not supported)' }) as unknown as Argv<UpdateArgs>,
  handler: action<UpdateArgs>(async (argv, ctx) => {
    const { updateContainer } = await import('../../container/update');
    const { RuntimeError } = await import('../../container/errors');
    let resources: Record<string, any>;
    if (argv.resources !== undefined) {
      const { readSpecFile } = await import('../../bundle/load');
      const text = argv.resources === '-' ? fs.readFileSync(0, 'utf8') : readSpecFile(argv.resources);
      try {
        resources = JSON.parse(text);
      } catch (e) {
        throw new RuntimeError(`--resources: invalid JSON: ${(e as Error).message}`);
      }
    } else {
      if (argv['l3-cache-schema'] || argv['mem-bw-schema']) throw new RuntimeError('Intel RDT is not supported');
      const bytes = (flag: keyof UpdateArgs) => (argv[flag] !== undefined ? parseBytes(flag, String(argv[flag])) : undefined);
      resources = {
        memory: { limit: bytes('memory'), reservation: bytes('memory-reservation'), swap: bytes('memory-swap'), kernel: bytes('kernel-memory'), kernelTCP: bytes('kernel-memory-tcp') },
        cpu: {
          shares: argv['cpu-share'], quota: argv['cpu-quota'], period: argv['cpu-period'],
          realtimePeriod: argv['cpu-rt-period'], realtimeRuntime: argv['cpu-rt-runtime'],
          cpus: argv['cpuset-cpus'], mems: argv['cpuset-mems'],
        },
        blockIO: { weight: argv['blkio-weight'] },
        pids: argv['pids-limit'] !== undefined ? { limit: argv['pids-limit'] } : undefined,
      };
    }
    await updateContainer(ctx, argv.id, resources);
  }),
};
export default command;
