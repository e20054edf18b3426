// The whole plan is checked before stage 0 acts (see PROTOCOL.md, "The plan is checked first").
//
// TypeScript validates the bundle and builds the plan, but the init trusts nothing it did not
// check itself. A bad plan fails here with "plan: <pointer>: <problem>" and nothing has been
// created or joined yet. Two parts:
//   - the shape: every member of every object known and present unless optional, every value of
//     its type, every number in its range, every enum one of its values, every path absolute, no
//     string with a NUL byte. All of it comes from schemas/plan.schema.json, through the code that
//     scripts/build-plan.mjs generates into plan_schema.gen.inc, which calls the primitives below
//     and, in the same walk, stores every value it checked into the types of plan.gen.h;
//   - the rules across fields that the schema cannot express (at the end), run on that typed
//     plan, whose shape is known to be right.
// The init then reads only the typed plan (the JSON tree is dropped), so no consumer looks a
// field up by name or could meet a value the check did not see.
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

bool boolean(const std::string &at, const JValue &v) {
  if (v.type != JValue::Bool) bad(at, "must be a boolean");
  return v.boolean;
}

const std::vector<JValue> &array(const std::string &at, const JValue &v, size_t min_len, size_t max_len) {
  if (v.type != JValue::Array) bad(at, "must be an array");
  if (v.items.size() < min_len) bad(at, min_len == 1 ? "must not be empty" : strf("fewer than %zu entries", min_len));
  if (max_len != kNoLimit && v.items.size() > max_len) bad(at, strf("more than %zu entries", max_len));
  return v.items;
}

// The value's index in `allowed`: the generated enum class has the schema's values in that order.
size_t enum_value(const std::string &at, const JValue &v, std::initializer_list<const char *> allowed, const char *noun) {
  const std::string &s = string_value(at, v, kText, 0, kNoLimit);
  size_t i = 0;
  for (const char *a : allowed) {
    if (s == a) return i;
    i++;
  }
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

// ---- rules across fields (the schema cannot say them), on the typed plan: its shape is right

std::string item(const char *array, size_t i) { return strf("/%s/%zu", array, i); }

void check_process_rules(const PlanProcess &p) {
  for (size_t i = 0; i < p.rlimits.size(); i++)
    if (p.rlimits[i].soft > p.rlimits[i].hard) bad(strf("/process/rlimits/%zu", i), "soft limit above hard limit");
}

// u32 ids and sizes: their sums are taken in 64 bits.
void check_mappings(const std::string &at, const std::vector<PlanIdMapping> &maps) {
  for (size_t i = 0; i < maps.size(); i++) {
    uint64_t c = maps[i].containerID, h = maps[i].hostID, s = maps[i].size;
    if (c + s > (uint64_t)kU32Max || h + s > (uint64_t)kU32Max) bad(sub(at, i), "range ends above 4294967294");
  }
}

// An id-mapped bind: a bind, with both lists of its own or none (the joined user namespace's).
void check_idmap(const std::string &at, const PlanMountStepMount &step, bool joined_userns) {
  const PlanIdmap &m = *step.idmap;
  std::string a = sub(at, "idmap");
  if (!(step.flags & MS_BIND)) bad(a, "only for bind mounts");
  check_mappings(sub(a, "uidMappings"), m.uidMappings);
  check_mappings(sub(a, "gidMappings"), m.gidMappings);
  bool uids = !m.uidMappings.empty(), gids = !m.gidMappings.empty();
  if (uids != gids) bad(a, "uidMappings and gidMappings go together");
  if (!uids && !joined_userns) bad(a, "no mappings and no joined user namespace");
}

void check_create_rules(const CreatePlan &plan) {
  // Each namespace type once: two entries of a type would be two clone flags or joins of one kind.
  std::vector<PlanNamespaceType> seen;
  bool joined_userns = false;
  for (size_t i = 0; i < plan.namespaces.size(); i++) {
    PlanNamespaceType t = plan.namespaces[i].type;
    if (std::find(seen.begin(), seen.end(), t) != seen.end())
      bad(item("namespaces", i) + "/type", strf("duplicate namespace \"%s\"", enum_name(t)));
    seen.push_back(t);
    joined_userns |= t == PlanNamespaceType::kUser && plan.namespaces[i].path;
  }
  auto has = [&](PlanNamespaceType t) { return std::find(seen.begin(), seen.end(), t) != seen.end(); };
  check_mappings("/uidMappings", plan.uidMappings);
  check_mappings("/gidMappings", plan.gidMappings);
  for (size_t i = 0; i < plan.mountSteps.size(); i++) {
    const auto *m = std::get_if<PlanMountStepMount>(&plan.mountSteps[i]);
    if (!m) continue;
    if (m->copyUp.value_or(false) && m->fstype != "tmpfs") bad(item("mountSteps", i) + "/copyUp", "only for tmpfs");
    if (m->idmap) check_idmap(item("mountSteps", i), *m, joined_userns);
  }
  for (size_t i = 0; i < plan.sysctl.size(); i++) {
    // A key becomes a path under /proc/sys: it must not climb out of it.
    const std::string &key = plan.sysctl[i].key;
    if (key.empty() || key.find("..") != std::string::npos || key[0] == '/' || key[0] == '.') bad(item("sysctl", i) + "/key", "not a sysctl name");
  }
  // Rootless: the user namespace is what makes the container the user's; an id-mapped bind needs
  // the host's root.
  if (plan.rootless.value_or(false)) {
    if (!has(PlanNamespaceType::kUser)) bad("/rootless", "needs a user namespace in /namespaces");
    for (size_t i = 0; i < plan.mountSteps.size(); i++) {
      const auto *m = std::get_if<PlanMountStepMount>(&plan.mountSteps[i]);
      if (m && m->idmap) bad(item("mountSteps", i) + "/idmap", "not for a rootless container");
    }
  }
  // Without a mount namespace of its own the container shares the runtime's: nothing may be
  // mounted, masked, created or remounted there (it would be the host's), only entered.
  if (!has(PlanNamespaceType::kMount)) {
    const std::pair<const char *, bool> lists[] = {
        {"mountSteps", !plan.mountSteps.empty()},       {"devices", !plan.devices.empty()},
        {"devSymlinks", !plan.devSymlinks.empty()},     {"maskedPaths", !plan.maskedPaths.empty()},
        {"readonlyPaths", !plan.readonlyPaths.empty()}, {"sysctl", !plan.sysctl.empty()},
    };
    for (auto &l : lists)
      if (l.second) bad(sub("", l.first), "must be empty without a mount namespace");
    const std::pair<const char *, bool> flags[] = {{"rootfsReadonly", plan.rootfsReadonly}, {"setupDev", plan.setupDev}, {"noPivot", plan.noPivot}};
    for (auto &f : flags)
      if (f.second) bad(sub("", f.first), "must be false without a mount namespace");
  }
}

}  // namespace

InitPlan check_plan(const JValue &json) {
  InitPlan plan;
  parse_shape(json, plan);
  if (const auto *create = std::get_if<CreatePlan>(&plan)) {
    check_process_rules(create->process);
    check_create_rules(*create);
  } else {
    check_process_rules(std::get_if<ExecPlan>(&plan)->process);
  }
  return plan;
}
