// The whole plan is checked before stage 0 acts (see PROTOCOL.md, "The plan is checked first").
//
// TypeScript validates the bundle and builds the plan, but the init trusts nothing it did not
// check itself: every field of every object must be known and of its type, every number in its
// range, every enum one of its values, every path absolute, no string may hold a NUL byte. A bad
// plan fails here with "plan: <pointer>: <problem>" and nothing has been created or joined yet.
// The ranges are the kernel's and runc's: ids 0..2^31-1 (uid_t -1 means "unchanged" to
// setresuid, so 4294967295 must never reach it), capabilities 0..63, rlimit resources 0..15.
#include "plan_check.h"

#include <string.h>

#include <algorithm>
#include <initializer_list>

#include "common.h"

namespace {

const int64_t kIdMax = 2147483647;  // runc: ids are int32 in the kernel's eyes
const int64_t kU32Max = 4294967295LL;

struct Ctx {
  std::string at;
};

[[noreturn]] void bad(const std::string &at, const std::string &what) { die("plan: " + (at.empty() ? "/" : at) + ": " + what); }

std::string sub(const std::string &at, const std::string &key) { return at + "/" + key; }
std::string sub(const std::string &at, size_t i) { return at + "/" + std::to_string(i); }

void no_nul(const std::string &at, const std::string &s) {
  if (memchr(s.data(), 0, s.size())) bad(at, "contains a NUL byte");
}

// Only the named members are allowed; each must be present unless listed as optional.
void members(const std::string &at, const JValue &o, std::initializer_list<const char *> required,
             std::initializer_list<const char *> optional = {}) {
  if (o.type != JValue::Object) bad(at, "must be an object");
  for (auto &m : o.members) {
    bool known = false;
    for (const char *k : required) known |= m.first == k;
    for (const char *k : optional) known |= m.first == k;
    if (!known) bad(sub(at, m.first), "unknown field");
  }
  for (const char *k : required)
    if (!o.get(k)) bad(sub(at, k), "missing");
}

const JValue &field(const std::string &at, const JValue &o, const char *key) {
  const JValue *v = o.get(key);
  if (!v) bad(sub(at, key), "missing");
  return *v;
}

std::string str(const std::string &at, const JValue &v) {
  if (v.type != JValue::String) bad(at, "must be a string");
  no_nul(at, v.text);
  return v.text;
}

std::string str(const std::string &at, const JValue &o, const char *key) { return str(sub(at, key), field(at, o, key)); }

void abs_path(const std::string &at, const JValue &o, const char *key, bool allow_empty = false) {
  std::string s = str(at, o, key);
  if (s.empty() && allow_empty) return;
  if (s.empty() || s[0] != '/') bad(sub(at, key), "must be an absolute path");
  if (s.size() >= 4096) bad(sub(at, key), "path too long");
}

bool bool_value(const JValue &o, const char *key) {
  const JValue *v = o.get(key);
  return v && v->type == JValue::Bool && v->boolean;
}

void boolean(const std::string &at, const JValue &o, const char *key) {
  if (field(at, o, key).type != JValue::Bool) bad(sub(at, key), "must be a boolean");
}

int64_t integer(const std::string &at, const JValue &v, int64_t lo, int64_t hi) {
  int64_t n;
  if (v.type != JValue::Number || !json_i64(v, n)) bad(at, "must be an integer");
  if (n < lo || n > hi) bad(at, strf("%lld is out of range %lld..%lld", (long long)n, (long long)lo, (long long)hi));
  return n;
}

int64_t integer(const std::string &at, const JValue &o, const char *key, int64_t lo, int64_t hi) {
  return integer(sub(at, key), field(at, o, key), lo, hi);
}

const std::vector<JValue> &array(const std::string &at, const JValue &o, const char *key, size_t max_len = 1 << 20) {
  const JValue &v = field(at, o, key);
  if (v.type != JValue::Array) bad(sub(at, key), "must be an array");
  if (v.items.size() > max_len) bad(sub(at, key), strf("more than %zu entries", max_len));
  return v.items;
}

void strings(const std::string &at, const JValue &o, const char *key) {
  auto &items = array(at, o, key);
  for (size_t i = 0; i < items.size(); i++) str(sub(sub(at, key), i), items[i]);
}

void one_of(const std::string &at, const std::string &v, std::initializer_list<const char *> allowed) {
  for (const char *a : allowed)
    if (v == a) return;
  bad(at, "unknown value \"" + v + "\"");
}

void ids(const std::string &at, const JValue &o, const char *key, size_t max_len) {
  auto &items = array(at, o, key, max_len);
  for (size_t i = 0; i < items.size(); i++) integer(sub(sub(at, key), i), items[i], 0, kIdMax);
}

// A u64 given as a JSON number or a decimal string (rlimits of 2^64-1).
uint64_t u64(const std::string &at, const JValue &o, const char *key) {
  const JValue &v = field(at, o, key);
  uint64_t n;
  if ((v.type != JValue::Number && v.type != JValue::String) || !json_u64(v, n)) bad(sub(at, key), "must be an unsigned 64-bit integer");
  return n;
}

void check_capabilities(const std::string &at, const JValue &caps) {
  static const char *const kSets[] = {"bounding", "effective", "permitted", "inheritable", "ambient"};
  members(at, caps, {"bounding", "effective", "permitted", "inheritable", "ambient"});
  for (const char *set : kSets) {
    auto &items = array(at, caps, set, 64);
    for (size_t i = 0; i < items.size(); i++) integer(sub(sub(at, set), i), items[i], 0, 63);
  }
}

void check_seccomp(const std::string &at, const JValue &sc) {
  if (sc.type == JValue::Null) return;
  members(at, sc, {"bpfBase64", "flags", "listenerPath", "listenerStatePrefix", "listenerStateSuffix"});
  std::string bpf = str(at, sc, "bpfBase64");
  // BPF_MAXINSNS (4096) instructions of 8 bytes, base64.
  if (bpf.empty() || bpf.size() > 4096 * 8 * 4 / 3 + 4) bad(sub(at, "bpfBase64"), "empty or longer than 4096 instructions");
  integer(at, sc, "flags", 0, 0xff);
  abs_path(at, sc, "listenerPath", true);
  str(at, sc, "listenerStatePrefix");
  str(at, sc, "listenerStateSuffix");
}

void check_process(const std::string &at, const JValue &p) {
  members(at, p,
          {"args", "env", "cwd", "uid", "gid", "additionalGids", "umask", "terminal", "consoleWidth", "consoleHeight", "rlimits",
           "oomScoreAdj", "noNewPrivileges", "capabilities", "seccomp", "apparmorProfile", "selinuxLabel", "preserveFds"});
  strings(at, p, "args");
  if (array(at, p, "args").empty()) bad(sub(at, "args"), "must not be empty");
  strings(at, p, "env");
  abs_path(at, p, "cwd");
  integer(at, p, "uid", 0, kIdMax);
  integer(at, p, "gid", 0, kIdMax);
  ids(at, p, "additionalGids", 65536);  // NGROUPS_MAX
  integer(at, p, "umask", -1, 0777);
  boolean(at, p, "terminal");
  integer(at, p, "consoleWidth", 0, 65535);
  integer(at, p, "consoleHeight", 0, 65535);
  auto &rls = array(at, p, "rlimits", 16);
  for (size_t i = 0; i < rls.size(); i++) {
    std::string a = sub(sub(at, "rlimits"), i);
    members(a, rls[i], {"resource", "soft", "hard"});
    integer(a, rls[i], "resource", 0, 15);
    if (u64(a, rls[i], "soft") > u64(a, rls[i], "hard")) bad(a, "soft limit above hard limit");
  }
  const JValue &oom = field(at, p, "oomScoreAdj");
  if (oom.type != JValue::Null) integer(sub(at, "oomScoreAdj"), oom, -1000, 1000);
  boolean(at, p, "noNewPrivileges");
  // Required: there is no "absent, leave the caller's" for capabilities (absent means none).
  check_capabilities(sub(at, "capabilities"), field(at, p, "capabilities"));
  check_seccomp(sub(at, "seccomp"), field(at, p, "seccomp"));
  str(at, p, "apparmorProfile");
  str(at, p, "selinuxLabel");
  integer(at, p, "preserveFds", 0, 65536);
}

const char *const kNamespaceTypes[] = {"pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"};

void ns_type(const std::string &at, const std::string &t) {
  for (const char *n : kNamespaceTypes)
    if (t == n) return;
  bad(at, "unknown namespace type \"" + t + "\"");
}

void check_mappings(const std::string &at, const JValue &plan, const char *key) {
  auto &maps = array(at, plan, key, 340);  // the kernel's limit of map lines
  for (size_t i = 0; i < maps.size(); i++) {
    std::string a = sub(sub(at, key), i);
    members(a, maps[i], {"containerID", "hostID", "size"});
    // The kernel's u32 ids without (u32)-1: host ranges above 2^31 are real (Kubernetes).
    int64_t c = integer(a, maps[i], "containerID", 0, kU32Max - 1);
    int64_t h = integer(a, maps[i], "hostID", 0, kU32Max - 1);
    int64_t s = integer(a, maps[i], "size", 1, kU32Max);
    if (c + s > kU32Max || h + s > kU32Max) bad(a, "range ends above 4294967294");
  }
}

void check_hooks(const std::string &at, const JValue &plan, const char *key) {
  auto &hooks = array(at, plan, key, 1024);
  for (size_t i = 0; i < hooks.size(); i++) {
    std::string a = sub(sub(at, key), i);
    members(a, hooks[i], {"path", "args", "env", "timeout"});
    abs_path(a, hooks[i], "path");
    strings(a, hooks[i], "args");
    strings(a, hooks[i], "env");
    integer(a, hooks[i], "timeout", 0, 24 * 3600 * 365);
  }
}

void check_mount_step(const std::string &at, const JValue &s) {
  std::string kind = str(at, s, "kind");
  if (kind == "mount") {
    members(at, s, {"kind", "source", "destination", "fstype", "flags", "data", "remountFlags", "propagation", "recursiveAttrSet",
                    "recursiveAttrClear", "sourceIsDir"},
            {"copyUp"});
    if (s.get("copyUp")) {
      boolean(at, s, "copyUp");
      if (str(at, s, "fstype") != "tmpfs") bad(sub(at, "copyUp"), "only for tmpfs");
    }
    str(at, s, "source");
    abs_path(at, s, "destination");
    str(at, s, "fstype");
    integer(at, s, "flags", 0, kU32Max);
    str(at, s, "data");
    integer(at, s, "remountFlags", 0, kU32Max);
    auto &props = array(at, s, "propagation", 16);
    for (size_t i = 0; i < props.size(); i++) integer(sub(sub(at, "propagation"), i), props[i], 0, kU32Max);
    integer(at, s, "recursiveAttrSet", 0, kU32Max);
    integer(at, s, "recursiveAttrClear", 0, kU32Max);
    boolean(at, s, "sourceIsDir");
  } else if (kind == "symlink") {
    members(at, s, {"kind", "target", "linkPath"});
    str(at, s, "target");
    abs_path(at, s, "linkPath");
  } else if (kind == "mkdir") {
    members(at, s, {"kind", "path", "mode"});
    abs_path(at, s, "path");
    integer(at, s, "mode", 0, 07777);
  } else {
    bad(sub(at, "kind"), "unknown mount step kind \"" + kind + "\"");
  }
}

void check_create(const JValue &plan) {
  members("", plan,
          {"mode", "id", "process", "consoleSocket", "waitForExit", "namespaces", "uidMappings", "gidMappings", "timeOffsets",
           "hostname", "domainname", "rootfs", "rootfsReadonly", "rootPropagation", "rootPropagationExplicit", "mountSteps",
           "devices", "devSymlinks", "setupDev", "devRemountFlags", "noPivot", "sysctl", "maskedPaths", "readonlyPaths", "syncRuntimeHooks",
           "createContainerHooks", "startContainerHooks", "statePrefix", "stateSuffix", "execFifo", "personality"},
          {"sessionKeyring", "startReplyFifo", "rootless"});
  auto &nss = array("", plan, "namespaces", 8);
  std::vector<std::string> seen;
  for (size_t i = 0; i < nss.size(); i++) {
    std::string a = sub("/namespaces", i);
    members(a, nss[i], {"type"}, {"path"});
    std::string t = str(a, nss[i], "type");
    ns_type(sub(a, "type"), t);
    for (auto &s : seen)
      if (s == t) bad(sub(a, "type"), "duplicate namespace \"" + t + "\"");
    seen.push_back(t);
    if (nss[i].get("path")) abs_path(a, nss[i], "path");
  }
  check_mappings("", plan, "uidMappings");
  check_mappings("", plan, "gidMappings");
  const JValue &to = field("", plan, "timeOffsets");
  members("/timeOffsets", to, {}, {"monotonic", "boottime"});
  for (const char *clock : {"monotonic", "boottime"}) {
    const JValue *c = to.get(clock);
    if (!c) continue;
    std::string a = sub("/timeOffsets", clock);
    members(a, *c, {"secs", "nanosecs"});
    integer(a, *c, "secs", INT64_MIN / 2, INT64_MAX / 2);
    integer(a, *c, "nanosecs", 0, 999999999);
  }
  for (const char *k : {"hostname", "domainname"}) {
    const JValue &v = field("", plan, k);
    if (v.type == JValue::Null) continue;
    if (str(sub("", k), v).size() > 64) bad(sub("", k), "longer than 64 bytes");
  }
  abs_path("", plan, "rootfs");
  boolean("", plan, "rootfsReadonly");
  integer("", plan, "rootPropagation", 0, kU32Max);
  boolean("", plan, "rootPropagationExplicit");
  auto &steps = array("", plan, "mountSteps");
  for (size_t i = 0; i < steps.size(); i++) check_mount_step(sub("/mountSteps", i), steps[i]);
  auto &devs = array("", plan, "devices");
  for (size_t i = 0; i < devs.size(); i++) {
    std::string a = sub("/devices", i);
    members(a, devs[i], {"path", "type", "major", "minor", "fileMode", "uid", "gid", "bind"});
    abs_path(a, devs[i], "path");
    one_of(sub(a, "type"), str(a, devs[i], "type"), {"c", "b", "u", "p"});
    integer(a, devs[i], "major", 0, 4095);     // the kernel's 12-bit major
    integer(a, devs[i], "minor", 0, 1048575);  // and 20-bit minor
    integer(a, devs[i], "fileMode", 0, 07777);
    integer(a, devs[i], "uid", 0, kIdMax);
    integer(a, devs[i], "gid", 0, kIdMax);
    boolean(a, devs[i], "bind");
  }
  auto &links = array("", plan, "devSymlinks", 64);
  for (size_t i = 0; i < links.size(); i++) {
    std::string a = sub("/devSymlinks", i);
    members(a, links[i], {"target", "linkPath"});
    str(a, links[i], "target");
    abs_path(a, links[i], "linkPath");
  }
  boolean("", plan, "setupDev");
  integer("", plan, "devRemountFlags", 0, kU32Max);
  boolean("", plan, "noPivot");
  auto &sysctls = array("", plan, "sysctl");
  for (size_t i = 0; i < sysctls.size(); i++) {
    std::string a = sub("/sysctl", i);
    members(a, sysctls[i], {"key", "value"});
    std::string key = str(a, sysctls[i], "key");
    // A key becomes a path under /proc/sys: it must not climb out of it.
    if (key.empty() || key.find("..") != std::string::npos || key[0] == '/' || key[0] == '.') bad(sub(a, "key"), "not a sysctl name");
    str(a, sysctls[i], "value");
  }
  for (const char *k : {"maskedPaths", "readonlyPaths"}) {
    auto &items = array("", plan, k);
    for (size_t i = 0; i < items.size(); i++) {
      std::string a = sub(sub("", k), i);
      std::string p = str(a, items[i]);
      if (p.empty() || p[0] != '/') bad(a, "must be an absolute path");
    }
  }
  // Without a mount namespace of its own the container shares the runtime's: nothing may be
  // mounted, masked, created or remounted there (it would be the host's), only entered.
  if (std::find(seen.begin(), seen.end(), std::string("mount")) == seen.end()) {
    for (const char *k : {"mountSteps", "devices", "devSymlinks", "maskedPaths", "readonlyPaths", "sysctl"})
      if (!array("", plan, k).empty()) bad(sub("", k), "must be empty without a mount namespace");
    if (bool_value(plan, "rootfsReadonly")) bad("/rootfsReadonly", "must be false without a mount namespace");
    if (bool_value(plan, "setupDev")) bad("/setupDev", "must be false without a mount namespace");
    if (bool_value(plan, "noPivot")) bad("/noPivot", "must be false without a mount namespace");
  }
  boolean("", plan, "syncRuntimeHooks");
  check_hooks("", plan, "createContainerHooks");
  check_hooks("", plan, "startContainerHooks");
  str("", plan, "statePrefix");
  str("", plan, "stateSuffix");
  abs_path("", plan, "execFifo", true);
  if (plan.get("sessionKeyring")) str("", plan, "sessionKeyring");
  if (plan.get("startReplyFifo")) abs_path("", plan, "startReplyFifo", true);
  integer("", plan, "personality", -1, 0xffffffffLL);
  // Rootless: only with a user namespace (new: the parent maps it; joined: already mapped).
  if (plan.get("rootless")) {
    boolean("", plan, "rootless");
    if (bool_value(plan, "rootless") && std::find(seen.begin(), seen.end(), std::string("user")) == seen.end())
      bad("/rootless", "needs a user namespace in /namespaces");
  }
}

void check_exec(const JValue &plan) {
  members("", plan, {"mode", "id", "process", "consoleSocket", "waitForExit", "initPid", "initStartTime", "joinNamespaces"});
  integer("", plan, "initPid", 1, 4194304);  // PID_MAX_LIMIT
  if (u64("", plan, "initStartTime") == 0) bad("/initStartTime", "must be the init's start time (clock ticks), not 0");
  auto &types = array("", plan, "joinNamespaces", 8);
  for (size_t i = 0; i < types.size(); i++) ns_type(sub("/joinNamespaces", i), str(sub("/joinNamespaces", i), types[i]));
}

}  // namespace

void check_plan(const JValue &plan) {
  if (plan.type != JValue::Object) bad("", "must be an object");
  std::string mode = str("", plan, "mode");
  one_of("/mode", mode, {"create", "exec"});
  str("", plan, "id");
  check_process("/process", field("", plan, "process"));
  abs_path("", plan, "consoleSocket", true);
  boolean("", plan, "waitForExit");
  if (mode == "create") check_create(plan);
  else check_exec(plan);
}
