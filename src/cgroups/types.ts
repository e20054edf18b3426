/**
 * The runtime-spec `linux.resources` shape, as the cgroup code consumes it. Kept local (and
 * structurally compatible with the config.json JSON) so that src/cgroups does not depend on the
 * spec module's evolution; every member is optional because `update` passes partial objects.
 */

export interface LinuxDeviceCgroup {
  allow: boolean;
  /** 'a' (all), 'c', 'b'; absent = all. */
  type?: string;
  /** absent or -1 = any. */
  major?: number | null;
  minor?: number | null;
  /** any combination of r, w, m; absent = "rwm". */
  access?: string;
}

export interface LinuxMemory {
  limit?: number;
  reservation?: number;
  swap?: number;
  kernel?: number;
  kernelTCP?: number;
  swappiness?: number;
  disableOOMKiller?: boolean;
  useHierarchy?: boolean;
  checkBeforeUpdate?: boolean;
}

export interface LinuxCPU {
  shares?: number;
  quota?: number;
  burst?: number;
  period?: number;
  realtimeRuntime?: number;
  realtimePeriod?: number;
  cpus?: string;
  mems?: string;
  idle?: number;
}

export interface LinuxPids {
  limit?: number;
}

export interface LinuxWeightDevice {
  major: number;
  minor: number;
  weight?: number;
  leafWeight?: number;
}

export interface LinuxThrottleDevice {
  major: number;
  minor: number;
  rate: number;
}

export interface LinuxBlockIO {
  weight?: number;
  leafWeight?: number;
  weightDevice?: LinuxWeightDevice[];
  throttleReadBpsDevice?: LinuxThrottleDevice[];
  throttleWriteBpsDevice?: LinuxThrottleDevice[];
  throttleReadIOPSDevice?: LinuxThrottleDevice[];
  throttleWriteIOPSDevice?: LinuxThrottleDevice[];
}

export interface LinuxHugepageLimit {
  /** "2MB", "1GB", "64KB" ... */
  pageSize: string;
  limit: number;
}

export interface LinuxInterfacePriority {
  name: string;
  priority: number;
}

export interface LinuxNetwork {
  classID?: number;
  priorities?: LinuxInterfacePriority[];
}

export interface LinuxRdma {
  hcaHandles?: number;
  hcaObjects?: number;
}

export interface LinuxResources {
  devices?: LinuxDeviceCgroup[];
  memory?: LinuxMemory;
  cpu?: LinuxCPU;
  pids?: LinuxPids;
  blockIO?: LinuxBlockIO;
  hugepageLimits?: LinuxHugepageLimit[];
  network?: LinuxNetwork;
  rdma?: Record<string, LinuxRdma>;
  unified?: Record<string, string>;
}

// ---- `runc events --stats` "data" (runc's types/events.go JSON names and omitempty rules) ----

export interface CpuUsage {
  total?: number;
  percpu?: number[];
  percpu_kernel?: number[];
  percpu_user?: number[];
  kernel: number;
  user: number;
}

export interface Throttling {
  periods?: number;
  throttledPeriods?: number;
  throttledTime?: number;
}

export interface CpuStats {
  usage: CpuUsage;
  throttling: Throttling;
}

export interface CpusetStats {
  cpus?: number[];
  cpu_exclusive: number;
  mems?: number[];
  mem_hardwall: number;
  mem_exclusive: number;
  memory_migrate: number;
  memory_spread_page: number;
  memory_spread_slab: number;
  memory_pressure: number;
  sched_load_balance: number;
  sched_relax_domain_level: number;
}

export interface MemoryEntry {
  limit: number;
  usage?: number;
  max?: number;
  failcnt: number;
}

export interface MemoryStats {
  cache?: number;
  usage: MemoryEntry;
  swap: MemoryEntry;
  kernel: MemoryEntry;
  kernelTCP: MemoryEntry;
  raw?: Record<string, number>;
}

export interface PidsStats {
  current?: number;
  limit?: number;
}

export interface BlkioEntry {
  major?: number;
  minor?: number;
  op?: string;
  value?: number;
}

export interface BlkioStats {
  ioServiceBytesRecursive?: BlkioEntry[];
  ioServicedRecursive?: BlkioEntry[];
  ioQueueRecursive?: BlkioEntry[];
  ioServiceTimeRecursive?: BlkioEntry[];
  ioWaitTimeRecursive?: BlkioEntry[];
  ioMergedRecursive?: BlkioEntry[];
  ioTimeRecursive?: BlkioEntry[];
  sectorsRecursive?: BlkioEntry[];
}

export interface HugetlbStats {
  usage?: number;
  max?: number;
  failcnt: number;
}

export interface CgroupStats {
  cpu: CpuStats;
  cpuset: CpusetStats | Record<string, never>;
  memory: MemoryStats;
  pids: PidsStats;
  blkio: BlkioStats;
  hugetlb: Record<string, HugetlbStats>;
  intel_rdt: Record<string, never>;
  network_interfaces: null;
}
