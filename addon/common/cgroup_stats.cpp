// See cgroup_stats.h. The v1 part follows runc's libcontainer/cgroups/fs (one reader per
// controller below), the v2 part its fs2; where a file is absent the member keeps its zero value.
#include "cgroup_stats.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <map>

namespace cgroup_stats {
namespace {

typedef uint64_t u64;
const u64 kUnlimited = UINT64_MAX;  // "max": what runc reports (math.MaxUint64)
// cpuacct.stat counts in USER_HZ, 100 a second on Linux: nanoseconds per tick.
const u64 kNsPerUserHzTick = 10000000;
// A cpu list is at most a few thousand entries; a longer one is not a cgroup file's.
const size_t kMaxListLength = 65536;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

std::string trim(const std::string &s) {
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) b++;
  while (e > b && is_space(s[e - 1])) e--;
  return s.substr(b, e - b);
}

std::vector<std::string> fields(const std::string &s) {
  std::vector<std::string> out;
  size_t i = 0, n = s.size();
  while (i < n) {
    while (i < n && is_space(s[i])) i++;
    size_t b = i;
    while (i < n && !is_space(s[i])) i++;
    if (i > b) out.push_back(s.substr(b, i - b));
  }
  return out;
}

std::vector<std::string> split(const std::string &s, char sep) {
  std::vector<std::string> out;
  size_t b = 0;
  for (;;) {
    size_t e = s.find(sep, b);
    out.push_back(s.substr(b, e == std::string::npos ? std::string::npos : e - b));
    if (e == std::string::npos) return out;
    b = e + 1;
  }
}

// A decimal integer, nothing else around it but spaces; false for anything else.
bool decimal(const std::string &in, bool allow_negative, u64 &magnitude, bool &negative) {
  std::string t = trim(in);
  negative = false;
  size_t i = 0;
  if (allow_negative && !t.empty() && t[0] == '-') negative = true, i = 1;
  if (i == t.size()) return false;
  u64 v = 0;
  for (; i < t.size(); i++) {
    if (t[i] < '0' || t[i] > '9') return false;
    u64 d = (u64)(t[i] - '0');
    if (v > (kUnlimited - d) / 10) return false;
    v = v * 10 + d;
  }
  magnitude = v;
  return true;
}

// A counter or limit: "max" is unlimited; anything that is not a number counts as 0.
u64 parse_uint(const std::string &s) {
  if (trim(s) == "max") return kUnlimited;
  u64 v;
  bool neg;
  return decimal(s, false, v, neg) ? v : 0;
}

int64_t parse_int(const std::string &s) {
  u64 v;
  bool neg;
  if (!decimal(s, true, v, neg) || v > (u64)INT64_MAX) return 0;
  return neg ? -(int64_t)v : (int64_t)v;
}

u64 add_saturating(u64 a, u64 b) { return a > kUnlimited - b ? kUnlimited : a + b; }
u64 mul_saturating(u64 a, u64 b) { return b && a > kUnlimited / b ? kUnlimited : a * b; }

class Reader {
 public:
  explicit Reader(Failure &fail) : fail_(fail) {}
  bool failed() const { return fail_.err != 0; }

  // The file's text; false when it is absent (or after a failure, which is recorded once).
  bool read(const std::string &file, std::string &out) {
    out.clear();
    if (failed()) return false;
    int fd;
    do fd = open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return absent_or_fail(file, errno);
    char buf[16384];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        int err = errno;
        close(fd);
        return absent_or_fail(file, err);
      }
      if (n == 0) break;
      out.append(buf, (size_t)n);
    }
    close(fd);
    return true;
  }

  bool exists(const std::string &file) { return access(file.c_str(), F_OK) == 0; }

  // A one-number file: `fallback` when absent.
  u64 uint_or(const std::string &file, u64 fallback) {
    std::string t;
    return read(file, t) ? parse_uint(t) : fallback;
  }

  // "key value" lines (memory.stat, cpu.stat, memory.events…): the last of a repeated key counts.
  std::map<std::string, u64> flat_keyed(const std::string &file) {
    std::map<std::string, u64> out;
    std::string t;
    if (!read(file, t)) return out;
    for (const std::string &line : split(t, '\n')) {
      std::vector<std::string> f = fields(line);
      if (f.size() >= 2) out[f[0]] = parse_uint(f[1]);
    }
    return out;
  }

 private:
  bool absent_or_fail(const std::string &file, int err) {
    if (err == ENOENT || err == ENODEV || err == EOPNOTSUPP) return false;
    fail_.file = file;
    fail_.err = err;
    return false;
  }
  Failure &fail_;
};

u64 get(const std::map<std::string, u64> &m, const char *key) {
  auto it = m.find(key);
  return it == m.end() ? 0 : it->second;
}

// "0-3,5,7-8" → 0 1 2 3 5 7 8.
std::vector<u64> cpu_list(const std::string &text) {
  std::vector<u64> out;
  for (const std::string &part : split(trim(text), ',')) {
    if (part.empty()) continue;
    std::vector<std::string> ab = split(part, '-');
    u64 a, b;
    bool neg;
    if (ab[0].empty()) a = 0;
    else if (!decimal(ab[0], false, a, neg)) continue;
    if (ab.size() < 2 || !decimal(ab[1], false, b, neg)) b = a;
    for (u64 i = a; i <= b && out.size() < kMaxListLength; i++) out.push_back(i);
  }
  return out;
}

// /sys/kernel/mm/hugepages/hugepages-2048kB → "2MB" (runc's HugePageSizes naming), sorted as
// Go's JSON encoder sorts the map's keys.
std::vector<std::string> huge_page_sizes() {
  std::vector<std::string> out;
  DIR *d = opendir("/sys/kernel/mm/hugepages");
  if (!d) return out;
  static const char *const kUnits[] = {"KB", "MB", "GB", "TB", "PB"};
  while (struct dirent *e = readdir(d)) {
    std::string n = e->d_name;
    if (n.compare(0, 10, "hugepages-") != 0 || n.size() < 13 || n.compare(n.size() - 2, 2, "kB") != 0) continue;
    u64 size;
    bool neg;
    std::string digits = n.substr(10, n.size() - 12);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos || !decimal(digits, false, size, neg)) continue;
    int unit = 0;
    while (size >= 1024 && size % 1024 == 0 && unit < 4) size /= 1024, unit++;
    out.push_back(std::to_string(size) + kUnits[unit]);
  }
  closedir(d);
  std::map<std::string, bool> sorted;
  for (auto &s : out) sorted[s] = true;
  out.clear();
  for (auto &kv : sorted) out.push_back(kv.first);
  return out;
}

// A JSON object being written: members in the order they are added, commas in between.
class Obj {
 public:
  explicit Obj(std::string &out) : out_(out) { out_ += '{'; }
  std::string &key(const std::string &k) {
    if (!first_) out_ += ',';
    first_ = false;
    quote(k);
    out_ += ':';
    return out_;
  }
  void num(const char *k, u64 v) { key(k) += std::to_string(v); }
  void num_i(const char *k, int64_t v) { key(k) += std::to_string(v); }
  // omitempty: a zero is left out.
  void num_nz(const char *k, u64 v) {
    if (v) num(k, v);
  }
  void list_nz(const char *k, const std::vector<u64> &v) {
    if (v.empty()) return;
    std::string &o = key(k);
    o += '[';
    for (size_t i = 0; i < v.size(); i++) {
      if (i) o += ',';
      o += std::to_string(v[i]);
    }
    o += ']';
  }
  void str_nz(const char *k, const std::string &v) {
    if (v.empty()) return;
    key(k);
    quote(v);
  }
  void end() { out_ += '}'; }

 private:
  void quote(const std::string &s) {
    static const char kHex[] = "0123456789abcdef";
    out_ += '"';
    for (unsigned char c : s) {
      if (c == '"' || c == '\\') out_ += '\\', out_ += (char)c;
      else if (c < 0x20) out_ += "\\u00", out_ += kHex[c >> 4], out_ += kHex[c & 15];
      else out_ += (char)c;
    }
    out_ += '"';
  }
  std::string &out_;
  bool first_ = true;
};

struct MemoryEntry {
  u64 limit = 0, usage = 0, max = 0, failcnt = 0;
};

struct BlkioEntry {
  u64 major = 0, minor = 0, value = 0;
  std::string op;
};

struct HugetlbEntry {
  u64 usage = 0, max = 0, failcnt = 0;
};

// runc's types.Stats, zero where nothing was read.
struct Stats {
  u64 cpu_total = 0, cpu_kernel = 0, cpu_user = 0;
  std::vector<u64> percpu, percpu_kernel, percpu_user;
  u64 periods = 0, throttled_periods = 0, throttled_time = 0;

  std::vector<u64> cpus, mems;
  u64 cpu_exclusive = 0, mem_hardwall = 0, mem_exclusive = 0, memory_migrate = 0, memory_spread_page = 0, memory_spread_slab = 0,
      memory_pressure = 0, sched_load_balance = 0;
  int64_t sched_relax_domain_level = 0;

  u64 cache = 0;
  MemoryEntry usage, swap, kernel, kernel_tcp;
  std::map<std::string, u64> raw;

  u64 pids_current = 0, pids_limit = 0;

  // Each present list of blkio's: runc's name and its entries, in runc's order.
  std::vector<std::pair<const char *, std::vector<BlkioEntry>>> blkio;

  std::map<std::string, HugetlbEntry> hugetlb;
};

void write_entry(Obj &parent, const char *name, const MemoryEntry &e, std::string &out) {
  parent.key(name);
  Obj o(out);
  o.num("limit", e.limit);
  o.num_nz("usage", e.usage);
  o.num_nz("max", e.max);
  o.num("failcnt", e.failcnt);
  o.end();
}

void write(const Stats &s, std::string &out) {
  Obj top(out);
  top.key("cpu");
  {
    Obj cpu(out);
    cpu.key("usage");
    {
      Obj u(out);
      u.num_nz("total", s.cpu_total);
      u.list_nz("percpu", s.percpu);
      u.list_nz("percpu_kernel", s.percpu_kernel);
      u.list_nz("percpu_user", s.percpu_user);
      u.num("kernel", s.cpu_kernel);
      u.num("user", s.cpu_user);
      u.end();
    }
    cpu.key("throttling");
    {
      Obj t(out);
      t.num_nz("periods", s.periods);
      t.num_nz("throttledPeriods", s.throttled_periods);
      t.num_nz("throttledTime", s.throttled_time);
      t.end();
    }
    cpu.end();
  }
  top.key("cpuset");
  {
    Obj c(out);
    c.list_nz("cpus", s.cpus);
    c.num("cpu_exclusive", s.cpu_exclusive);
    c.list_nz("mems", s.mems);
    c.num("mem_hardwall", s.mem_hardwall);
    c.num("mem_exclusive", s.mem_exclusive);
    c.num("memory_migrate", s.memory_migrate);
    c.num("memory_spread_page", s.memory_spread_page);
    c.num("memory_spread_slab", s.memory_spread_slab);
    c.num("memory_pressure", s.memory_pressure);
    c.num("sched_load_balance", s.sched_load_balance);
    c.num_i("sched_relax_domain_level", s.sched_relax_domain_level);
    c.end();
  }
  top.key("memory");
  {
    Obj m(out);
    m.num_nz("cache", s.cache);
    write_entry(m, "usage", s.usage, out);
    write_entry(m, "swap", s.swap, out);
    write_entry(m, "kernel", s.kernel, out);
    write_entry(m, "kernelTCP", s.kernel_tcp, out);
    if (!s.raw.empty()) {
      m.key("raw");
      Obj r(out);
      for (const auto &kv : s.raw) r.key(kv.first) += std::to_string(kv.second);
      r.end();
    }
    m.end();
  }
  top.key("pids");
  {
    Obj p(out);
    p.num_nz("current", s.pids_current);
    p.num_nz("limit", s.pids_limit);
    p.end();
  }
  top.key("blkio");
  {
    Obj b(out);
    for (const auto &list : s.blkio) {
      if (list.second.empty()) continue;
      std::string &o = b.key(list.first);
      o += '[';
      for (size_t i = 0; i < list.second.size(); i++) {
        if (i) o += ',';
        const BlkioEntry &e = list.second[i];
        Obj x(out);
        x.num_nz("major", e.major);
        x.num_nz("minor", e.minor);
        x.str_nz("op", e.op);
        x.num_nz("value", e.value);
        x.end();
      }
      o += ']';
    }
    b.end();
  }
  top.key("hugetlb");
  {
    Obj h(out);
    for (const auto &kv : s.hugetlb) {
      h.key(kv.first);
      Obj e(out);
      e.num_nz("usage", kv.second.usage);
      e.num_nz("max", kv.second.max);
      e.num("failcnt", kv.second.failcnt);
      e.end();
    }
    h.end();
  }
  top.key("intel_rdt") += "{}";
  top.key("network_interfaces") += "null";
  top.end();
}

// "8:0 Read 4096" or "8:0 4096" (the totals line skipped): a v1 blkio file; false when absent.
bool v1_blkio_list(Reader &r, const std::string &file, std::vector<BlkioEntry> &out) {
  out.clear();
  std::string t;
  if (!r.read(file, t)) return false;
  for (const std::string &line : split(t, '\n')) {
    std::vector<std::string> f = fields(line);
    if (f.size() < 2 || f[0] == "Total") continue;
    std::vector<std::string> mm = split(f[0], ':');
    BlkioEntry e;
    e.major = parse_uint(mm[0]);
    e.minor = mm.size() > 1 ? parse_uint(mm[1]) : 0;
    if (f.size() == 3) e.op = f[1], e.value = parse_uint(f[2]);
    else e.value = parse_uint(f[1]);
    out.push_back(e);
  }
  return true;
}

// runc's order: CFQ's recursive files, else BFQ's, else the throttle files.
void v1_blkio(Reader &r, const std::string &dir, Stats &s) {
  std::vector<BlkioEntry> serviced;
  auto list = [&](const char *name, const std::string &file) {
    std::vector<BlkioEntry> e;
    v1_blkio_list(r, dir + "/" + file, e);
    s.blkio.push_back({name, e});
  };
  if (v1_blkio_list(r, dir + "/blkio.io_serviced_recursive", serviced) && !serviced.empty()) {
    list("ioServiceBytesRecursive", "blkio.io_service_bytes_recursive");
    s.blkio.push_back({"ioServicedRecursive", serviced});
    list("ioQueueRecursive", "blkio.io_queued_recursive");
    list("ioServiceTimeRecursive", "blkio.io_service_time_recursive");
    list("ioWaitTimeRecursive", "blkio.io_wait_time_recursive");
    list("ioMergedRecursive", "blkio.io_merged_recursive");
    list("ioTimeRecursive", "blkio.time_recursive");
    list("sectorsRecursive", "blkio.sectors_recursive");
    return;
  }
  if (v1_blkio_list(r, dir + "/blkio.bfq.io_serviced_recursive", serviced) && !serviced.empty()) {
    list("ioServiceBytesRecursive", "blkio.bfq.io_service_bytes_recursive");
    s.blkio.push_back({"ioServicedRecursive", serviced});
    return;
  }
  list("ioServiceBytesRecursive", "blkio.throttle.io_service_bytes_recursive");
  list("ioServicedRecursive", "blkio.throttle.io_serviced_recursive");
}

MemoryEntry v1_memory_entry(Reader &r, const std::string &dir, const char *prefix) {
  std::string p = dir + "/" + prefix;
  MemoryEntry e;
  e.usage = r.uint_or(p + ".usage_in_bytes", 0);
  e.limit = r.uint_or(p + ".limit_in_bytes", 0);
  e.failcnt = r.uint_or(p + ".failcnt", 0);
  e.max = r.uint_or(p + ".max_usage_in_bytes", 0);
  return e;
}

void v1(Reader &r, const std::vector<std::pair<std::string, std::string>> &paths, Stats &s) {
  auto dir_of = [&](const char *name) -> const std::string * {
    for (const auto &p : paths)
      if (p.first == name) return &p.second;
    return nullptr;
  };
  std::string t;
  if (const std::string *d = dir_of("cpuset")) {
    if (r.read(*d + "/cpuset.cpus", t)) s.cpus = cpu_list(t);
    if (r.read(*d + "/cpuset.mems", t)) s.mems = cpu_list(t);
    auto n = [&](const char *f) -> int64_t { return r.read(*d + "/" + f, t) ? parse_int(t) : 0; };
    s.cpu_exclusive = (u64)n("cpuset.cpu_exclusive");
    s.mem_hardwall = (u64)n("cpuset.mem_hardwall");
    s.mem_exclusive = (u64)n("cpuset.mem_exclusive");
    s.memory_migrate = (u64)n("cpuset.memory_migrate");
    s.memory_spread_page = (u64)n("cpuset.memory_spread_page");
    s.memory_spread_slab = (u64)n("cpuset.memory_spread_slab");
    s.memory_pressure = (u64)n("cpuset.memory_pressure");
    s.sched_load_balance = (u64)n("cpuset.sched_load_balance");
    s.sched_relax_domain_level = n("cpuset.sched_relax_domain_level");
  }
  if (const std::string *d = dir_of("memory")) {
    if (r.exists(*d + "/memory.stat")) {
      s.raw = r.flat_keyed(*d + "/memory.stat");
      s.cache = get(s.raw, "cache");
      s.usage = v1_memory_entry(r, *d, "memory");
      s.swap = v1_memory_entry(r, *d, "memory.memsw");
      s.kernel = v1_memory_entry(r, *d, "memory.kmem");
      s.kernel_tcp = v1_memory_entry(r, *d, "memory.kmem.tcp");
    }
  }
  if (const std::string *d = dir_of("cpu")) {
    auto st = r.flat_keyed(*d + "/cpu.stat");
    s.periods = get(st, "nr_periods");
    s.throttled_periods = get(st, "nr_throttled");
    s.throttled_time = get(st, "throttled_time");
  }
  if (const std::string *d = dir_of("cpuacct")) {
    s.cpu_total = r.uint_or(*d + "/cpuacct.usage", 0);
    if (r.read(*d + "/cpuacct.usage_percpu", t))
      for (const std::string &f : fields(t)) s.percpu.push_back(parse_uint(f));
    // "cpu user system" rows after a header, nanoseconds.
    if (r.read(*d + "/cpuacct.usage_all", t)) {
      std::vector<std::string> lines = split(t, '\n');
      for (size_t i = 1; i < lines.size(); i++) {
        std::vector<std::string> f = fields(lines[i]);
        if (f.size() != 3) continue;
        s.percpu_user.push_back(parse_uint(f[1]));
        s.percpu_kernel.push_back(parse_uint(f[2]));
      }
    }
    auto st = r.flat_keyed(*d + "/cpuacct.stat");
    s.cpu_kernel = mul_saturating(get(st, "system"), kNsPerUserHzTick);
    s.cpu_user = mul_saturating(get(st, "user"), kNsPerUserHzTick);
  }
  if (const std::string *d = dir_of("pids")) {
    s.pids_current = r.uint_or(*d + "/pids.current", 0);
    // "max" (or no file) is 0, runc's "no limit".
    if (r.read(*d + "/pids.max", t) && trim(t) != "max") s.pids_limit = parse_uint(t);
  }
  if (const std::string *d = dir_of("blkio")) v1_blkio(r, *d, s);
  if (const std::string *d = dir_of("hugetlb")) {
    for (const std::string &size : huge_page_sizes()) {
      std::string p = *d + "/hugetlb." + size + ".";
      HugetlbEntry &e = s.hugetlb[size];
      e.usage = r.uint_or(p + "usage_in_bytes", 0);
      e.max = r.uint_or(p + "max_usage_in_bytes", 0);
      e.failcnt = r.uint_or(p + "failcnt", 0);
    }
  }
}

void v2(Reader &r, const std::string &dir, Stats &s) {
  auto file = [&](const std::string &f) { return dir + "/" + f; };
  std::string t;
  {
    auto st = r.flat_keyed(file("cpu.stat"));
    s.cpu_total = mul_saturating(get(st, "usage_usec"), 1000);
    s.cpu_kernel = mul_saturating(get(st, "system_usec"), 1000);
    s.cpu_user = mul_saturating(get(st, "user_usec"), 1000);
    s.periods = get(st, "nr_periods");
    s.throttled_periods = get(st, "nr_throttled");
    s.throttled_time = mul_saturating(get(st, "throttled_usec"), 1000);
  }
  if (r.read(file("cpuset.cpus.effective"), t)) {
    s.cpus = cpu_list(t);
    if (r.read(file("cpuset.mems.effective"), t)) s.mems = cpu_list(t);
  }
  {
    std::map<std::string, u64> raw = r.flat_keyed(file("memory.stat"));
    if (r.exists(file("memory.current"))) {
      s.raw = raw;
      s.cache = get(raw, "file");
      u64 usage = r.uint_or(file("memory.current"), 0);
      u64 limit = r.uint_or(file("memory.max"), 0);
      u64 peak = r.uint_or(file("memory.peak"), 0);
      auto events = r.flat_keyed(file("memory.events"));
      std::string cur, max;
      bool has_cur = r.read(file("memory.swap.current"), cur);
      bool has_max = r.read(file("memory.swap.max"), max);
      s.usage.limit = limit, s.usage.usage = usage, s.usage.max = peak, s.usage.failcnt = get(events, "max");
      // v1 reports memory+swap: that meaning is kept for runc's users.
      u64 swap_max = has_max ? parse_uint(max) : 0;
      s.swap.limit = !has_max ? 0 : (swap_max == kUnlimited || limit == kUnlimited) ? kUnlimited : add_saturating(swap_max, limit);
      s.swap.usage = add_saturating(has_cur ? parse_uint(cur) : 0, usage);
    }
  }
  if (r.read(file("pids.current"), t)) {
    s.pids_current = parse_uint(t);
    if (r.read(file("pids.max"), t) && trim(t) != "max") s.pids_limit = parse_uint(t);
  }
  if (r.read(file("io.stat"), t)) {
    std::vector<BlkioEntry> bytes, ios;
    for (const std::string &line : split(t, '\n')) {
      std::vector<std::string> f = fields(line);
      if (f.size() < 2) continue;
      std::vector<std::string> mm = split(f[0], ':');
      std::map<std::string, u64> kv;
      for (size_t i = 1; i < f.size(); i++) {
        size_t eq = f[i].find('=');
        kv[f[i].substr(0, eq)] = eq == std::string::npos ? 0 : parse_uint(f[i].substr(eq + 1));
      }
      BlkioEntry e;
      e.major = parse_uint(mm[0]);
      e.minor = mm.size() > 1 ? parse_uint(mm[1]) : 0;
      auto add = [&](std::vector<BlkioEntry> &to, const char *op, const char *key) {
        e.op = op, e.value = get(kv, key);
        to.push_back(e);
      };
      add(bytes, "Read", "rbytes");
      add(bytes, "Write", "wbytes");
      add(ios, "Read", "rios");
      add(ios, "Write", "wios");
    }
    s.blkio.push_back({"ioServiceBytesRecursive", bytes});
    s.blkio.push_back({"ioServicedRecursive", ios});
  }
  for (const std::string &size : huge_page_sizes()) {
    std::string p = file("hugetlb." + size + ".");
    if (!r.read(p + "current", t)) continue;
    HugetlbEntry &e = s.hugetlb[size];
    e.usage = parse_uint(t);
    e.max = r.uint_or(p + "max", 0);
    e.failcnt = get(r.flat_keyed(p + "events"), "max");
  }
}

}  // namespace

bool render(const std::string &layout, const std::vector<std::pair<std::string, std::string>> &paths, std::string &out,
            Failure &fail) {
  fail = Failure();
  Reader r(fail);
  Stats s;
  if (layout == "v1" || layout == "hybrid") {
    v1(r, paths, s);
  } else if (layout == "v2") {
    for (const auto &p : paths)
      if (p.first.empty()) v2(r, p.second, s);
  } else if (layout != "none") {
    fail.err = EINVAL;
    return false;
  }
  if (r.failed()) return false;
  write(s, out);
  return true;
}

}  // namespace cgroup_stats
