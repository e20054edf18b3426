// systemd's manager API over D-Bus, through libsystemd's sd-bus (the wire protocol is sd-bus's,
// not ours). Used by the systemd cgroup driver (src/cgroups/systemd.ts) in the runtime process
// only. Every call is synchronous: it connects to the system bus (or the user bus), does its
// work, waits for the job when there is one, and disconnects.
//
// Unit properties arrive from JavaScript as [name, signature, value] triples; the value is
// marshalled by its D-Bus signature (basic types, arrays, structs), e.g. ["PIDs", "au", [123]],
// ["MemoryMax", "t", 1048576n], ["DeviceAllow", "a(ss)", [["/dev/null", "rwm"]]].
#include <errno.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <time.h>

#include <map>
#include <string>
#include <type_traits>

#include "common.h"

namespace tsrun {
namespace {

const char *kDest = "org.freedesktop.systemd1";
const char *kPath = "/org/freedesktop/systemd1";
const char *kManager = "org.freedesktop.systemd1.Manager";

struct Bus {
  sd_bus *bus = nullptr;
  ~Bus() {
    if (bus) sd_bus_flush_close_unref(bus);
  }
};

struct Msg {
  sd_bus_message *m = nullptr;
  ~Msg() {
    if (m) sd_bus_message_unref(m);
  }
};

struct Err {
  sd_bus_error e = SD_BUS_ERROR_NULL;
  ~Err() { sd_bus_error_free(&e); }
};

// Error(msg) with code = the D-Bus error name when there is one (org.freedesktop.systemd1.NoSuchUnit...),
// else the errno name.
[[noreturn]] void ThrowBus(Napi::Env env, const std::string &op, int r, const sd_bus_error *e) {
  if (e && sd_bus_error_is_set(e)) {
    Napi::Error err = Napi::Error::New(env, op + ": " + (e->message ? e->message : e->name));
    err.Set("code", Napi::String::New(env, e->name));
    throw err;
  }
  ThrowErrno(env, op, r < 0 ? -r : EIO);
}

// The bus argument: false = the system bus; a string = the user's bus at that address. The
// caller finds the address with runc's rule ($DBUS_SESSION_BUS_ADDRESS, else $XDG_RUNTIME_DIR/bus
// when it exists), so that the bus used is the one its error messages name; sd_bus_open_user's
// own lookup differs in corner cases (an empty variable, a missing socket).
void Open(Napi::Env env, Bus &b, const Napi::CallbackInfo &info, size_t i) {
  if (info.Length() > i && info[i].IsBoolean() && !info[i].As<Napi::Boolean>().Value()) {
    int r = sd_bus_open_system(&b.bus);
    if (r < 0) ThrowErrno(env, "connect to the system D-Bus", -r);
    return;
  }
  std::string addr = ArgString(info, i, "bus (false or the user bus address)");
  // What sd_bus_open_user does after its own address lookup (the user bus is a bus, we are its client).
  int r = sd_bus_new(&b.bus);
  if (r >= 0) r = sd_bus_set_address(b.bus, addr.c_str());
  if (r >= 0) r = sd_bus_set_bus_client(b.bus, 1);
  if (r >= 0) r = sd_bus_start(b.bus);
  if (r < 0) ThrowErrno(env, "connect to the user D-Bus at " + addr, -r);
}

uint64_t NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// Length of the single complete type starting at sig[pos].
size_t TypeLen(const std::string &sig, size_t pos) {
  if (pos >= sig.size()) return 0;
  char c = sig[pos];
  if (c == 'a') {
    size_t n = TypeLen(sig, pos + 1);
    return n ? n + 1 : 0;
  }
  if (c == '(' || c == '{') {
    char close = c == '(' ? ')' : '}';
    size_t i = pos + 1;
    while (i < sig.size() && sig[i] != close) {
      size_t n = TypeLen(sig, i);
      if (!n) return 0;
      i += n;
    }
    return i < sig.size() ? i - pos + 1 : 0;
  }
  return strchr("ybnqiuxtdsogvh", c) ? 1 : 0;
}

// A JavaScript number or bigint as the D-Bus integer T (uint64_t for y q u t, int64_t for n i x),
// exactly or not at all: one reading for both, so that both refuse the same way.
template <class T>
T ToInt(Napi::Env env, const Napi::Value &v, const std::string &what) {
  constexpr bool kSigned = std::is_signed<T>::value;
  if (v.IsBigInt()) {
    bool lossless = false;
    T x;
    if constexpr (kSigned) x = v.As<Napi::BigInt>().Int64Value(&lossless);
    else x = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw Napi::TypeError::New(env, what + ": value out of range");
    return x;
  }
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    // Unsigned: d < 0 first, as a negative double converted to uint64_t is undefined.
    if ((!kSigned && d < 0) || d != (double)(T)d) throw Napi::TypeError::New(env, what + (kSigned ? ": not an integer" : ": not an unsigned integer"));
    return (T)d;
  }
  throw Napi::TypeError::New(env, what + ": expected a number or bigint");
}

void Check(Napi::Env env, int r, const std::string &what) {
  if (r < 0) ThrowErrno(env, "marshal " + what, -r);
}

// Appends one value of the complete type `sig` to m.
void AppendValue(Napi::Env env, sd_bus_message *m, const std::string &sig, const Napi::Value &v, const std::string &what) {
  char c = sig[0];
  switch (c) {
    case 'b': {
      if (!v.IsBoolean()) throw Napi::TypeError::New(env, what + ": expected a boolean");
      int b = v.As<Napi::Boolean>().Value() ? 1 : 0;
      Check(env, sd_bus_message_append_basic(m, 'b', &b), what);
      return;
    }
    case 'y': case 'q': case 'u': case 't': {
      uint64_t u = ToInt<uint64_t>(env, v, what);
      uint64_t max = c == 'y' ? 0xff : c == 'q' ? 0xffff : c == 'u' ? 0xffffffffull : ~0ull;
      if (u > max) throw Napi::TypeError::New(env, what + ": value out of range");
      uint8_t y = u; uint16_t q = u; uint32_t w = u;
      const void *p = c == 'y' ? (const void *)&y : c == 'q' ? (const void *)&q : c == 'u' ? (const void *)&w : (const void *)&u;
      Check(env, sd_bus_message_append_basic(m, c, p), what);
      return;
    }
    case 'n': case 'i': case 'x': {
      int64_t i = ToInt<int64_t>(env, v, what);
      int64_t lo = c == 'n' ? -32768 : c == 'i' ? INT32_MIN : INT64_MIN;
      int64_t hi = c == 'n' ? 32767 : c == 'i' ? INT32_MAX : INT64_MAX;
      if (i < lo || i > hi) throw Napi::TypeError::New(env, what + ": value out of range");
      int16_t n = i; int32_t w = i;
      const void *p = c == 'n' ? (const void *)&n : c == 'i' ? (const void *)&w : (const void *)&i;
      Check(env, sd_bus_message_append_basic(m, c, p), what);
      return;
    }
    case 'd': {
      if (!v.IsNumber()) throw Napi::TypeError::New(env, what + ": expected a number");
      double d = v.As<Napi::Number>().DoubleValue();
      Check(env, sd_bus_message_append_basic(m, 'd', &d), what);
      return;
    }
    case 's': case 'o': case 'g': {
      if (!v.IsString()) throw Napi::TypeError::New(env, what + ": expected a string");
      std::string s = v.As<Napi::String>().Utf8Value();
      if (s.find('\0') != std::string::npos) throw Napi::TypeError::New(env, what + ": must not contain NUL bytes");
      Check(env, sd_bus_message_append_basic(m, c, s.c_str()), what);
      return;
    }
    case 'a': {
      std::string elem = sig.substr(1, TypeLen(sig, 1));
      if (elem == "y" && v.IsBuffer()) {
        auto buf = v.As<Napi::Buffer<uint8_t>>();
        Check(env, sd_bus_message_append_array(m, 'y', buf.Data(), buf.Length()), what);
        return;
      }
      if (!v.IsArray()) throw Napi::TypeError::New(env, what + ": expected an array");
      Napi::Array a = v.As<Napi::Array>();
      Check(env, sd_bus_message_open_container(m, 'a', elem.c_str()), what);
      for (uint32_t i = 0; i < a.Length(); i++) AppendValue(env, m, elem, a.Get(i), what + "[" + std::to_string(i) + "]");
      Check(env, sd_bus_message_close_container(m), what);
      return;
    }
    case '(': case '{': {
      if (!v.IsArray()) throw Napi::TypeError::New(env, what + ": expected an array of the struct's fields");
      Napi::Array a = v.As<Napi::Array>();
      std::string inner = sig.substr(1, sig.size() - 2);
      Check(env, sd_bus_message_open_container(m, c == '(' ? 'r' : 'e', inner.c_str()), what);
      size_t pos = 0;
      uint32_t i = 0;
      while (pos < inner.size()) {
        size_t n = TypeLen(inner, pos);
        if (i >= a.Length()) throw Napi::TypeError::New(env, what + ": too few struct fields");
        AppendValue(env, m, inner.substr(pos, n), a.Get(i), what + "." + std::to_string(i));
        pos += n;
        i++;
      }
      if (i != a.Length()) throw Napi::TypeError::New(env, what + ": too many struct fields");
      Check(env, sd_bus_message_close_container(m), what);
      return;
    }
    default:
      throw Napi::TypeError::New(env, what + ": unsupported D-Bus signature " + sig);
  }
}

// Appends a(sv) from [[name, signature, value], ...].
void AppendProperties(Napi::Env env, sd_bus_message *m, const Napi::Value &props) {
  if (!props.IsArray()) throw Napi::TypeError::New(env, "properties must be an array");
  Napi::Array a = props.As<Napi::Array>();
  Check(env, sd_bus_message_open_container(m, 'a', "(sv)"), "properties");
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a.Get(i);
    if (!e.IsArray() || e.As<Napi::Array>().Length() != 3) throw Napi::TypeError::New(env, "property must be [name, signature, value]");
    Napi::Array t = e.As<Napi::Array>();
    if (!t.Get(0u).IsString() || !t.Get(1u).IsString()) throw Napi::TypeError::New(env, "property name and signature must be strings");
    std::string name = t.Get(0u).As<Napi::String>().Utf8Value();
    std::string sig = t.Get(1u).As<Napi::String>().Utf8Value();
    if (sig.empty() || TypeLen(sig, 0) != sig.size()) throw Napi::TypeError::New(env, "property " + name + ": invalid D-Bus signature " + sig);
    Check(env, sd_bus_message_open_container(m, 'r', "sv"), name);
    Check(env, sd_bus_message_append_basic(m, 's', name.c_str()), name);
    Check(env, sd_bus_message_open_container(m, 'v', sig.c_str()), name);
    AppendValue(env, m, sig, t.Get(2u), "property " + name);
    Check(env, sd_bus_message_close_container(m), name);
    Check(env, sd_bus_message_close_container(m), name);
  }
  Check(env, sd_bus_message_close_container(m), "properties");
}

// JobRemoved(u id, o job, s unit, s result): every finished job's result, by job path.
int OnJobRemoved(sd_bus_message *m, void *userdata, sd_bus_error *) {
  auto *done = static_cast<std::map<std::string, std::string> *>(userdata);
  uint32_t id;
  const char *job, *unit, *result;
  if (sd_bus_message_read(m, "uoss", &id, &job, &unit, &result) >= 0) (*done)[job] = result;
  return 0;
}

struct JobWatch {
  std::map<std::string, std::string> done;
  sd_bus_slot *slot = nullptr;
  ~JobWatch() {
    if (slot) sd_bus_slot_unref(slot);
  }
};

void WatchJobs(Napi::Env env, sd_bus *bus, JobWatch &w) {
  int r = sd_bus_match_signal(bus, &w.slot, kDest, kPath, kManager, "JobRemoved", OnJobRemoved, &w.done);
  if (r < 0) ThrowErrno(env, "subscribe to systemd's JobRemoved", -r);
  // Older systemd only emits job signals to subscribed clients; the subscription ends with the connection.
  Err e;
  Msg reply;
  sd_bus_call_method(bus, kDest, kPath, kManager, "Subscribe", &e.e, &reply.m, "");
}

// Waits for JobRemoved of `job`; returns its result ("done", "failed", "timeout", ...) or "" on timeout.
std::string WaitJob(Napi::Env env, sd_bus *bus, JobWatch &w, const std::string &job, int timeoutMs) {
  uint64_t deadline = NowMs() + (uint64_t)timeoutMs;
  for (;;) {
    auto it = w.done.find(job);
    if (it != w.done.end()) return it->second;
    int r = sd_bus_process(bus, nullptr);
    if (r < 0) ThrowErrno(env, "D-Bus: waiting for job " + job, -r);
    if (r > 0) continue;
    uint64_t now = NowMs();
    if (now >= deadline) return "";
    r = sd_bus_wait(bus, (deadline - now) * 1000);
    if (r < 0 && r != -EINTR) ThrowErrno(env, "D-Bus: waiting for job " + job, -r);
  }
}

std::string ReadObjectPath(Napi::Env env, sd_bus_message *reply, const std::string &op) {
  const char *p = nullptr;
  int r = sd_bus_message_read(reply, "o", &p);
  if (r < 0) ThrowErrno(env, op + ": reading the reply", -r);
  return p;
}

// A manager method that queues a job (StartTransientUnit, StopUnit), from connect to the job's
// end: JobRemoved is watched before the call, because a quick job can end before the call's reply
// has been read. `call` makes the call on the bus (its failure: "<method> <name>: ..."); the reply
// is the job's object path. Returns the job's result ("done", "failed", ... or "" on timeout).
template <class Call>
Napi::Value RunJob(const Napi::CallbackInfo &info, const char *method, const std::string &name, int timeoutMs, Call call) {
  Napi::Env env = info.Env();
  Bus b;
  Open(env, b, info, 0);
  JobWatch w;
  WatchJobs(env, b.bus, w);
  Err e;
  Msg reply;
  int r = call(b.bus, &e.e, &reply.m);
  if (r < 0) ThrowBus(env, std::string(method) + " " + name, r, &e.e);
  std::string job = ReadObjectPath(env, reply.m, method);
  return Napi::String::New(env, WaitJob(env, b.bus, w, job, timeoutMs));
}

// systemdStartTransientUnit(bus, name, mode, properties, timeoutMs) -> job result ("done", "failed", ... or "" on timeout)
Napi::Value StartTransientUnit(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 1, "name");
  std::string mode = ArgString(info, 2, "mode");
  int timeoutMs = ArgInt(info, 4, "timeoutMs");
  return RunJob(info, "StartTransientUnit", name, timeoutMs, [&](sd_bus *bus, sd_bus_error *e, sd_bus_message **reply) {
    Msg m;
    int r = sd_bus_message_new_method_call(bus, &m.m, kDest, kPath, kManager, "StartTransientUnit");
    if (r < 0) ThrowErrno(env, "StartTransientUnit", -r);
    Check(env, sd_bus_message_append(m.m, "ss", name.c_str(), mode.c_str()), "name");
    AppendProperties(env, m.m, info[3]);
    Check(env, sd_bus_message_append(m.m, "a(sa(sv))", 0), "aux");
    return sd_bus_call(bus, m.m, 0, e, reply);
  });
}

// systemdStopUnit(bus, name, mode, timeoutMs) -> job result; throws code org.freedesktop.systemd1.NoSuchUnit when unknown
Napi::Value StopUnit(const Napi::CallbackInfo &info) {
  std::string name = ArgString(info, 1, "name");
  std::string mode = ArgString(info, 2, "mode");
  int timeoutMs = ArgInt(info, 3, "timeoutMs");
  return RunJob(info, "StopUnit", name, timeoutMs, [&](sd_bus *bus, sd_bus_error *e, sd_bus_message **reply) {
    return sd_bus_call_method(bus, kDest, kPath, kManager, "StopUnit", e, reply, "ss", name.c_str(), mode.c_str());
  });
}

// systemdResetFailedUnit(bus, name)
Napi::Value ResetFailedUnit(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 1, "name");
  Bus b;
  Open(env, b, info, 0);
  Err e;
  Msg reply;
  int r = sd_bus_call_method(b.bus, kDest, kPath, kManager, "ResetFailedUnit", &e.e, &reply.m, "s", name.c_str());
  if (r < 0) ThrowBus(env, "ResetFailedUnit " + name, r, &e.e);
  return env.Undefined();
}

// systemdSetUnitProperties(bus, name, runtime, properties)
Napi::Value SetUnitProperties(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 1, "name");
  bool runtime = ArgBool(info, 2, "runtime");
  Bus b;
  Open(env, b, info, 0);
  Msg m;
  int r = sd_bus_message_new_method_call(b.bus, &m.m, kDest, kPath, kManager, "SetUnitProperties");
  if (r < 0) ThrowErrno(env, "SetUnitProperties", -r);
  int rt = runtime ? 1 : 0;
  Check(env, sd_bus_message_append(m.m, "sb", name.c_str(), rt), "name");
  AppendProperties(env, m.m, info[3]);
  Err e;
  Msg reply;
  r = sd_bus_call(b.bus, m.m, 0, &e.e, &reply.m);
  if (r < 0) ThrowBus(env, "SetUnitProperties " + name, r, &e.e);
  return env.Undefined();
}

// systemdUnitState(bus, name) -> {activeState, subState, loadState, controlGroup} or null when
// systemd has no such unit loaded (GetUnit's NoSuchUnit).
Napi::Value UnitState(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 1, "name");
  Bus b;
  Open(env, b, info, 0);
  Err e;
  Msg reply;
  int r = sd_bus_call_method(b.bus, kDest, kPath, kManager, "GetUnit", &e.e, &reply.m, "s", name.c_str());
  if (r < 0) {
    if (sd_bus_error_has_name(&e.e, "org.freedesktop.systemd1.NoSuchUnit")) return env.Null();
    ThrowBus(env, "GetUnit " + name, r, &e.e);
  }
  std::string unitPath = ReadObjectPath(env, reply.m, "GetUnit");
  Napi::Object o = Napi::Object::New(env);
  const char *props[][2] = {{"ActiveState", "activeState"}, {"SubState", "subState"}, {"LoadState", "loadState"}};
  for (auto &p : props) {
    Err pe;
    char *s = nullptr;
    r = sd_bus_get_property_string(b.bus, kDest, unitPath.c_str(), "org.freedesktop.systemd1.Unit", p[0], &pe.e, &s);
    if (r < 0) {
      // The unit went away between GetUnit and now.
      if (sd_bus_error_has_name(&pe.e, "org.freedesktop.DBus.Error.UnknownObject")) return env.Null();
      ThrowBus(env, std::string("Get ") + p[0] + " of " + name, r, &pe.e);
    }
    o.Set(p[1], Napi::String::New(env, s));
    free(s);
  }
  return o;
}

// systemdManagerProperty(bus, name) -> string (Version, ControlGroup: the manager's string properties)
Napi::Value ManagerProperty(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 1, "name");
  Bus b;
  Open(env, b, info, 0);
  Err e;
  char *s = nullptr;
  int r = sd_bus_get_property_string(b.bus, kDest, kPath, kManager, name.c_str(), &e.e, &s);
  if (r < 0) ThrowBus(env, "Get " + name, r, &e.e);
  Napi::String out = Napi::String::New(env, s);
  free(s);
  return out;
}

}  // namespace

void InitSystemd(Napi::Env env, Napi::Object exports) {
  Export(env, exports, "systemdStartTransientUnit", StartTransientUnit);
  Export(env, exports, "systemdStopUnit", StopUnit);
  Export(env, exports, "systemdResetFailedUnit", ResetFailedUnit);
  Export(env, exports, "systemdSetUnitProperties", SetUnitProperties);
  Export(env, exports, "systemdUnitState", UnitState);
  Export(env, exports, "systemdManagerProperty", ManagerProperty);
}

}  // namespace tsrun
