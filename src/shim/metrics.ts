/**
 * Task.Stats: the container's cgroup statistics as containerd's metrics messages
 * (`io.containerd.cgroups.v1.Metrics` on v1 and hybrid hosts, `.v2.Metrics` on cgroup v2), which
 * `ctr task metrics` decodes by type URL. The numbers come from the cgroup managers' runc-style
 * stats (src/cgroups); memory counters are copied from memory.stat's own keys.
 */
import type { Container } from '../container/container';
import type { BlkioEntry, CgroupStats } from '../cgroups/types';
import { T, encodeAny } from './messages';

const camel = (k: string) => k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** memory.stat keys as the message's field names (pgpgin → pgPgIn is the one irregular spelling). */
const V1_MEMORY_NAMES: Record<string, string> = { pgpgin: 'pgPgIn', pgpgout: 'pgPgOut', pgfault: 'pgFault', pgmajfault: 'pgMajFault', total_pgpgin: 'totalPgPgIn', total_pgpgout: 'totalPgPgOut', total_pgfault: 'totalPgFault', total_pgmajfault: 'totalPgMajFault', hierarchical_memory_limit: 'hierarchicalMemoryLimit', hierarchical_memsw_limit: 'hierarchicalSwapLimit' };

function entries(list: BlkioEntry[] | undefined) {
  return (list ?? []).map((e) => ({ op: e.op ?? '', major: e.major ?? 0, minor: e.minor ?? 0, value: e.value ?? 0 }));
}

function v1(s: CgroupStats) {
  const mem: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s.memory.raw ?? {})) mem[V1_MEMORY_NAMES[k] ?? camel(k)] = v;
  const me = (e: { limit?: number; usage?: number; max?: number; failcnt?: number } | undefined) => ({ limit: e?.limit ?? 0, usage: e?.usage ?? 0, max: e?.max ?? 0, failcnt: e?.failcnt ?? 0 });
  return {
    pids: { current: s.pids.current ?? 0, limit: s.pids.limit ?? 0 },
    cpu: {
      usage: { total: s.cpu.usage.total ?? 0, kernel: s.cpu.usage.kernel, user: s.cpu.usage.user, perCpu: s.cpu.usage.percpu ?? [] },
      throttling: { periods: s.cpu.throttling.periods ?? 0, throttledPeriods: s.cpu.throttling.throttledPeriods ?? 0, throttledTime: s.cpu.throttling.throttledTime ?? 0 },
    },
    memory: { ...mem, usage: me(s.memory.usage), swap: me(s.memory.swap), kernel: me(s.memory.kernel), kernelTcp: me(s.memory.kernelTCP) },
    blkio: {
      ioServiceBytesRecursive: entries(s.blkio.ioServiceBytesRecursive),
      ioServicedRecursive: entries(s.blkio.ioServicedRecursive),
      ioQueuedRecursive: entries(s.blkio.ioQueueRecursive),
      ioServiceTimeRecursive: entries(s.blkio.ioServiceTimeRecursive),
      ioWaitTimeRecursive: entries(s.blkio.ioWaitTimeRecursive),
      ioMergedRecursive: entries(s.blkio.ioMergedRecursive),
      ioTimeRecursive: entries(s.blkio.ioTimeRecursive),
      sectorsRecursive: entries(s.blkio.sectorsRecursive),
    },
    hugetlb: Object.entries(s.hugetlb ?? {}).map(([pagesize, h]) => ({ pagesize, usage: h.usage ?? 0, max: h.max ?? 0, failcnt: h.failcnt })),
  };
}

function v2(s: CgroupStats) {
  const raw = s.memory.raw ?? {};
  const mem: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) mem[camel(k)] = v;
  const ns = (n: number | undefined) => Math.floor((n ?? 0) / 1000);
  return {
    pids: { current: s.pids.current ?? 0, limit: s.pids.limit ?? 0 },
    cpu: {
      usageUsec: ns(s.cpu.usage.total),
      userUsec: ns(s.cpu.usage.user),
      systemUsec: ns(s.cpu.usage.kernel),
      nrPeriods: s.cpu.throttling.periods ?? 0,
      nrThrottled: s.cpu.throttling.throttledPeriods ?? 0,
      throttledUsec: ns(s.cpu.throttling.throttledTime),
    },
    memory: { ...mem, usage: s.memory.usage.usage ?? 0, usageLimit: s.memory.usage.limit, swapUsage: s.memory.swap.usage ?? 0, swapLimit: s.memory.swap.limit, maxUsage: s.memory.usage.max ?? 0 },
  };
}

export function cgroupMetrics(c: Container): { typeUrl: string; value: Uint8Array } {
  const stats = c.stats();
  return c.cgroupVersion() === 2 ? encodeAny('io.containerd.cgroups.v2.Metrics', T.MetricsV2, v2(stats)) : encodeAny('io.containerd.cgroups.v1.Metrics', T.MetricsV1, v1(stats));
}
