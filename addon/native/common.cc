// The helpers of common.h, linked into both addons (tsrun_native and tsrun_systemd).
#include <string.h>

#include "common.h"

namespace tsrun {

void ThrowErrno(Napi::Env env, const std::string &op, int err) {
  Napi::Error e = Napi::Error::New(env, op + ": " + strerror(err));
  const char *name = strerrorname_np(err);
  e.Set("code", Napi::String::New(env, name ? name : "EUNKNOWN"));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, op));
  throw e;
}

void ThrowCode(Napi::Env env, const std::string &msg, const char *code) {
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  throw e;
}

void Export(Napi::Env env, Napi::Object exports, const char *name, Napi::Value (*fn)(const Napi::CallbackInfo &)) {
  exports.Set(name, Napi::Function::New(env, fn, name));
}

int32_t ArgInt(const Napi::CallbackInfo &info, size_t i, const char *name) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (d != (double)(int32_t)d) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a 32-bit integer");
  return (int32_t)d;
}

bool ArgBool(const Napi::CallbackInfo &info, size_t i, const char *name) {
  if (info.Length() <= i || !info[i].IsBoolean()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

std::string ArgString(const Napi::CallbackInfo &info, size_t i, const char *name) {
  if (info.Length() <= i || !info[i].IsString()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a string");
  std::string s = info[i].As<Napi::String>().Utf8Value();
  // A C API would silently stop at an embedded NUL and act on a different path.
  if (s.find('\0') != std::string::npos) throw Napi::TypeError::New(info.Env(), std::string(name) + " must not contain NUL bytes");
  return s;
}

}  // namespace tsrun
