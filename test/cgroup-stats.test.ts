/**
 * The one reader of the cgroup statistics (addon/common/cgroup_stats.cpp, through the addon's
 * cgroupStats and src/cgroups/stats.ts) on fake trees: runc's types.Stats shape, its omitempty
 * members, uint64 counters exact, map keys sorted, the blkio sources in runc's order, what an
 * unreadable file and bad arguments give. The real kernel's files: cgroups-v1/-v2 and cli-front.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cgroupStatsJson, parseStats } from '../src/cgroups/stats';
import { native } from '../src/native/addon';

const roots: string[] = [];
function tree(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-stats-'));
  roots.push(dir);
  for (const [f, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), text);
  }
  return dir;
}

test('no cgroup: every member empty, in runc\'s order', () => {
  assert.is(
    cgroupStatsJson('none', {}),
    '{"cpu":{"usage":{"kernel":0,"user":0},"throttling":{}},"cpuset":{"cpu_exclusive":0,"mem_hardwall":0,"mem_exclusive":0,"memory_migrate":0,"memory_spread_page":0,"memory_spread_slab":0,"memory_pressure":0,"sched_load_balance":0,"sched_relax_domain_level":0},' +
      '"memory":{"usage":{"limit":0,"failcnt":0},"swap":{"limit":0,"failcnt":0},"kernel":{"limit":0,"failcnt":0},"kernelTCP":{"limit":0,"failcnt":0}},"pids":{},"blkio":{},"hugetlb":{},"intel_rdt":{},"network_interfaces":null}',
  );
});

test('v1: each controller from its own directory; exact uint64s; raw sorted; CFQ before the throttle files', () => {
  const d = tree({
    'cpuacct/cpuacct.usage': '3000\n',
    'cpuacct/cpuacct.usage_percpu': '1000 2000 \n',
    'cpuacct/cpuacct.usage_all': 'cpu user system\n0 600 400\n1 1200 800\n',
    'cpuacct/cpuacct.stat': 'user 2\nsystem 1\n',
    'cpu/cpu.stat': 'nr_periods 0\nnr_throttled 0\nthrottled_time 0\n',
    'cpuset/cpuset.cpus': '0-2,5\n',
    'cpuset/cpuset.mems': '0\n',
    'cpuset/cpuset.sched_relax_domain_level': '-1\n',
    'memory/memory.stat': 'rss 4096\ncache 8192\nactive_anon 1\n',
    'memory/memory.usage_in_bytes': '12288\n',
    'memory/memory.limit_in_bytes': '9223372036854771712\n',
    'memory/memory.failcnt': '0\n',
    'memory/memory.max_usage_in_bytes': '16384\n',
    'pids/pids.current': '7\n',
    'pids/pids.max': 'max\n',
    'blkio/blkio.io_serviced_recursive': '8:0 Read 3\n8:0 Write 0\nTotal 3\n',
    'blkio/blkio.io_service_bytes_recursive': '8:16 Read 4096\n',
    'blkio/blkio.throttle.io_serviced_recursive': '9:9 Read 99\n',
  });
  const paths = Object.fromEntries(['cpuacct', 'cpu', 'cpuset', 'memory', 'pids', 'blkio'].map((c) => [c, path.join(d, c)]));
  const json = cgroupStatsJson('hybrid', paths);
  assert.ok(json.includes('"cpu":{"usage":{"total":3000,"percpu":[1000,2000],"percpu_kernel":[400,800],"percpu_user":[600,1200],"kernel":10000000,"user":20000000},"throttling":{}}'), json);
  assert.ok(json.includes('"cpuset":{"cpus":[0,1,2,5],"cpu_exclusive":0,"mems":[0],'), json);
  assert.ok(json.includes('"sched_relax_domain_level":-1}'), json);
  // Exact: a JavaScript number would print 9223372036854772000 (the control: it does).
  assert.ok(json.includes('"memory":{"cache":8192,"usage":{"limit":9223372036854771712,"usage":12288,"max":16384,"failcnt":0}'), json);
  assert.is(JSON.stringify(parseStats(json).memory.usage.limit), '9223372036854772000');
  assert.ok(json.includes('"raw":{"active_anon":1,"cache":8192,"rss":4096}'), json);
  assert.ok(json.includes('"pids":{"current":7}'), json);
  assert.ok(
    json.includes('"blkio":{"ioServiceBytesRecursive":[{"major":8,"minor":16,"op":"Read","value":4096}],"ioServicedRecursive":[{"major":8,"op":"Read","value":3},{"major":8,"op":"Write"}]}'),
    json,
  );
  // Control: without CFQ's files, the throttle files are the source.
  fs.rmSync(path.join(d, 'blkio/blkio.io_serviced_recursive'));
  assert.ok(cgroupStatsJson('v1', paths).includes('"blkio":{"ioServicedRecursive":[{"major":9,"minor":9,"op":"Read","value":99}]}'));
});

test('v2: one directory; "max" is 2^64-1, swap in v1\'s memory+swap terms', () => {
  const d = tree({
    'cpu.stat': 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 3\nnr_throttled 1\nthrottled_usec 20\n',
    'memory.current': '4096\n',
    'memory.max': 'max\n',
    'memory.stat': 'file 200\nanon 100\n',
    'memory.events': 'max 2\n',
    'memory.swap.current': '10\n',
    'memory.swap.max': '100\n',
    'pids.current': '3\n',
    'pids.max': '10\n',
    'io.stat': '8:0 rbytes=100 wbytes=200 rios=1 wios=2\n',
  });
  const json = cgroupStatsJson('v2', { '': d });
  assert.ok(json.includes('"cpu":{"usage":{"total":1500000,"kernel":500000,"user":1000000},"throttling":{"periods":3,"throttledPeriods":1,"throttledTime":20000}}'), json);
  assert.ok(json.includes('"memory":{"cache":200,"usage":{"limit":18446744073709551615,"usage":4096,"failcnt":2},"swap":{"limit":18446744073709551615,"usage":4106,"failcnt":0}'), json);
  assert.ok(json.includes('"raw":{"anon":100,"file":200}'), json);
  assert.ok(json.includes('"pids":{"current":3,"limit":10}'), json);
  assert.ok(json.includes('"ioServiceBytesRecursive":[{"major":8,"op":"Read","value":100},{"major":8,"op":"Write","value":200}]'), json);
});

test('a file that is there but cannot be read is an error naming it; absent files are no error', () => {
  const d = tree({ 'pids/pids.current': '1\n' });
  fs.mkdirSync(path.join(d, 'pids/pids.max'));
  assert.throws(() => cgroupStatsJson('v1', { pids: path.join(d, 'pids') }), (e: Error & { code?: string }) => {
    assert.is(e.message, `${path.join(d, 'pids/pids.max')}: read: is a directory`);
    assert.is(e.code, 'EISDIR');
    return true;
  });
  // Control: the same tree without the bad file reads.
  fs.rmdirSync(path.join(d, 'pids/pids.max'));
  assert.ok(cgroupStatsJson('v1', { pids: path.join(d, 'pids'), memory: path.join(d, 'nonexistent') }).includes('"pids":{"current":1}'));
});

test('the addon checks its arguments: layout, paths', () => {
  const n = native();
  assert.throws(() => n.cgroupStats('v3' as 'v2', {}), /layout must be v1, hybrid, v2 or none, not v3/);
  assert.throws(() => n.cgroupStats('v2', { '': 'relative/dir' }), /paths\[\] must be an absolute path/);
  assert.throws(() => n.cgroupStats('v1', { memory: 5 as unknown as string }), /paths\[memory\] must be a string/);
  assert.throws(() => n.cgroupStats('v1', [] as unknown as Record<string, string>), /paths must be an object/);
  assert.ok(n.cgroupStats('v1', {}).startsWith('{"cpu":'), 'control: good arguments are taken');
});

test.after(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

test.run();
