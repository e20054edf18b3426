// The whole plan is checked before stage 0 acts (see PROTOCOL.md, "The plan is checked first").
//
// TypeScript validates the bundle and builds the plan, but the init trusts nothing it did not
// check itself. A bad plan fails here with "plan: <pointer>: <problem>" and nothing has been
// created or joined yet. Two parts:
//   - the shape: every member of every object known and present unless optional, every value of
//     its type, every number in its range, every enum one of its values, every path absolute, no
//     string with a NUL byte. All of it comes from schemas/plan.schema.json, through the code that
//     scripts/build-plan.mjs generates into plan_schema.gen.inc, which calls the primitives below;
//   - the rules across fields that the schema cannot express (check_rules, at the end), run on a
//     plan whose shape is known to be right.
#include "plan_check.h"

#include <string.h>
#include <sys/mount.h>

#include <algorithm>
#include <initializer_list>

#include "common.h"

namespace {

const size_t kNoLimit = (size_t)-1;
const int64_t kU32Max = 4294967295LL;

[[noreturn]] void bad(const std::string &at, const std::string &what) { die("plan: " + (at.empty() ? "/" : at) + ": " + what); }

// JSON pointer of a member or an item (RFC 6901: "~" and "/" in a key escaped).
std::string sub(const std::string &at, const std::string &key) {
  std::string out = at + "/";
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}
std::string sub(const std::string &at, size_t i) { return at + "/" + std::to_string(i); }

// ---- primitives of the generated check (one per kind of schema node)

// Only the named members are allowed; each must be present unless listed as optional.
void members(const std::string &at, const JValue &o, std::initializer_list<const char *> required,
             std::initializer_list<const char *> optional) {
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

// The string patterns of the schema's definitions text, absolutePath, absolutePathOrEmpty.
enum StringRule { kText, kAbsolutePath, kAbsolutePathOrEmpty };

const std::string &string_value(const std::string &at, const JValue &v, StringRule rule, size_t min_len, size_t max_len) {
  if (v.type != JValue::String) bad(at, "must be a string");
  const std::string &s = v.text;
  if (memchr(s.data(), 0, s.size())) bad(at, "contains a NUL byte");
  if ((rule == kAbsolutePath || (rule == kAbsolutePathOrEmpty && !s.empty())) && (s.empty() || s[0] != '/'))
    bad(at, rule == kAbsolutePath ? "must be an absolute path" : "must be an absolute path or empty");
  if (s.size() < min_len) bad(at, min_len == 1 ? "must not be empty" : strf("shorter than %zu bytes", min_len));
  if (max_len != kNoLimit && s.size() > max_len) bad(at, strf("longer than %zu bytes", max_len));
  return s;
}

int64_t integer(const std::string &at, const JValue &v, int64_t lo, int64_t hi) {
  int64_t n;
  if (v.type != JValue::Number || !json_i64(v, n)) bad(at, "must be an integer");
  if (n < lo || n > hi) bad(at, strf("%lld is out of range %lld..%lld", (long long)n, (long long)lo, (long long)hi));
  return n;
}

// A u64 given as a JSON number or a decimal string (rlimits of 2^64-1).
uint64_t u64(const std::string &at, const JValue &v) {
  uint64_t n;
  if ((v.type != JValue::Number && v.type != JValue::String) || !json_u64(v, n)) bad(at, "must be an unsigned 64-bit integer");
  // The schema's decimal string: no sign, no leading zero.
  if (v.type == JValue::String && v.text.size() > 1 && v.text[0] == '0') bad(at, "must be an unsigned 64-bit integer");
  return n;
}

void boolean(const std::string &at, const JValue &v) {
  if (v.type != JValue::Bool) bad(at, "must be a boolean");
}

const std::vector<JValue> &array(const std::string &at, const JValue &v, size_t min_len, size_t max_len) {
  if (v.type != JValue::Array) bad(at, "must be an array");
  if (v.items.size() < min_len) bad(at, min_len == 1 ? "must not be empty" : strf("fewer than %zu entries", min_len));
  if (max_len != kNoLimit && v.items.size() > max_len) bad(at, strf("more than %zu entries", max_len));
  return v.items;
}

void enum_value(const std::string &at, const JValue &v, std::initializer_list<const char *> allowed, const char *noun) {
  const std::string &s = string_value(at, v, kText, 0, kNoLimit);
  for (const char *a : allowed)
    if (s == a) return;
  bad(at, strf("unknown %s \"%s\"", noun, s.c_str()));
}

void const_value(const std::string &at, const JValue &v, const char *value) {
  if (string_value(at, v, kText, 0, kNoLimit) != value) bad(at, strf("must be \"%s\"", value));
}

// The discriminator of a oneOf: the object's `tag` member, a string.
std::string union_tag(const std::string &at, const JValue &v, const char *tag) {
  if (v.type != JValue::Object) bad(at, "must be an object");
  const JValue *t = v.get(tag);
  if (!t) bad(sub(at, tag), "missing");
  return string_value(sub(at, tag), *t, kText, 0, kNoLimit);
}

#include "plan_schema.gen.inc"

// ---- rules across fields (the schema cannot say them); the shape is known to be right here

const JValue &at_key(const JValue &o, const char *key) { return *o.get(key); }

bool flag(const JValue &o, const char *key) { return at_key(o, key).boolean; }

void check_process_rules(const std::string &at, const JValue &p) {
  auto &rls = at_key(p, "rlimits").items;
  for (size_t i = 0; i < rls.size(); i++) {
    std::string a = sub(sub(at, "rlimits"), i);
    if (u64(sub(a, "soft"), at_key(rls[i], "soft")) > u64(sub(a, "hard"), at_key(rls[i], "hard"))) bad(a, "soft limit above hard limit");
  }
}

void check_mappings(const std::string &at, const JValue &o, const char *key) {
  auto &maps = at_key(o, key).items;
  for (size_t i = 0; i < maps.size(); i++) {
    int64_t c, h, s;
    json_i64(at_key(maps[i], "containerID"), c);
    json_i64(at_key(maps[i], "hostID"), h);
    json_i64(at_key(maps[i], "size"), s);
    if (c + s > kU32Max || h + s > kU32Max) bad(sub(sub(at, key), i), "range ends above 4294967294");
  }
}

// An id-mapped bind: a bind, with both lists of its own or none (the joined user namespace's).
void check_idmap(const std::string &at, const JValue &step, bool joined_userns) {
  const JValue &m = at_key(step, "idmap");
  std::string a = sub(at, "idmap");
  int64_t flags;
  json_i64(at_key(step, "flags"), flags);
  if (!(flags & MS_BIND)) bad(a, "only for bind mounts");
  check_mappings(a, m, "uidMappings");
  check_mappings(a, m, "gidMappings");
  bool uids = !at_key(m, "uidMappings").items.empty(), gids = !at_key(m, "gidMappings").items.empty();
  if (uids != gids) bad(a, "uidMappings and gidMappings go together");
  if (!uids && !joined_userns) bad(a, "no mappings and no joined user namespace");
}

void check_create_rules(const JValue &plan) {
  // Each namespace type once: two entries of a type would be two clone flags or joins of one kind.
  auto &nss = at_key(plan, "namespaces").items;
  std::vector<std::string> seen;
  for (size_t i = 0; i < nss.size(); i++) {
    const std::string &t = at_key(nss[i], "type").text;
    if (std::find(seen.begin(), seen.end(), t) != seen.end()) bad(sub(sub("/namespaces", i), "type"), "duplicate namespace \"" + t + "\"");
    seen.push_back(t);
  }
  check_mappings("", plan, "uidMappings");
  check_mappings("", plan, "gidMappings");
  bool joined_userns = false;
  for (auto &ns : nss) joined_userns |= ns.get("path") && at_key(ns, "type").text == "user";
  auto &steps = at_key(plan, "mountSteps").items;
  for (size_t i = 0; i < steps.size(); i++) {
    const JValue *copy = steps[i].get("copyUp");
    if (copy && copy->boolean && at_key(steps[i], "fstype").text != "tmpfs") bad(sub(sub("/mountSteps", i), "copyUp"), "only for tmpfs");
    if (steps[i].get("idmap")) check_idmap(sub("/mountSteps", i), steps[i], joined_userns);
  }
  auto &sysctls = at_key(plan, "sysctl").items;
  for (size_t i = 0; i < sysctls.size(); i++) {
    // A key becomes a path under /proc/sys: it must not climb out of it.
    const std::string &key = at_key(sysctls[i], "key").text;
    if (key.empty() || key.find("..") != std::string::npos || key[0] == '/' || key[0] == '.') bad(sub(sub("/sysctl", i), "key"), "not a sysctl name");
  }
  // Rootless: the user namespace is what makes the container the user's; an id-mapped bind needs
  // the host's root.
  const JValue *rootless = plan.get("rootless");
  if (rootless && rootless->boolean) {
    if (std::find(seen.begin(), seen.end(), std::string("user")) == seen.end()) bad("/rootless", "needs a user namespace in /namespaces");
    for (size_t i = 0; i < steps.size(); i++)
      if (steps[i].get("idmap")) bad(sub(sub("/mountSteps", i), "idmap"), "not for a rootless container");
  }
  // Without a mount namespace of its own the container shares the runtime's: nothing may be
  // mounted, masked, created or remounted there (it would be the host's), only entered.
  if (std::find(seen.begin(), seen.end(), std::string("mount")) == seen.end()) {
    for (const char *k : {"mountSteps", "devices", "devSymlinks", "maskedPaths", "readonlyPaths", "sysctl"})
      if (!at_key(plan, k).items.empty()) bad(sub("", k), "must be empty without a mount namespace");
    for (const char *k : {"rootfsReadonly", "setupDev", "noPivot"})
      if (flag(plan, k)) bad(sub("", k), "must be false without a mount namespace");
  }
}

}  // namespace

void check_plan(const JValue &plan) {
  check_shape(plan);
  check_process_rules("/process", at_key(plan, "process"));
  if (at_key(plan, "mode").text == "create") check_create_rules(plan);
}
