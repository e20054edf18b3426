// Shared helpers of the tsrun N-API addon. C++ exceptions are on (node_addon_api_except), so a
// thrown Napi::Error becomes a JavaScript exception at the binding boundary.
#pragma once
#include <napi.h>

#include <string>

namespace tsrun {

// Throws Error("<op>: <strerror(err)>") with code = errno name (e.g. "EAGAIN"), errno = err and
// syscall = op, the shape Node's own fs errors have, so callers can test `e.code`.
[[noreturn]] void ThrowErrno(Napi::Env env, const std::string &op, int err);
// Throws Error(msg) with an explicit code (for failures that are not a plain errno).
[[noreturn]] void ThrowCode(Napi::Env env, const std::string &msg, const char *code);

// exports[name] = a function that calls `fn`, named `name` in JavaScript too (fn.name, stack
// traces): the name is written once, so key and name cannot drift apart.
void Export(Napi::Env env, Napi::Object exports, const char *name, Napi::Value (*fn)(const Napi::CallbackInfo &));

// Argument helpers: a TypeError naming the argument when the type is wrong.
int32_t ArgInt(const Napi::CallbackInfo &info, size_t i, const char *name);
bool ArgBool(const Napi::CallbackInfo &info, size_t i, const char *name);
std::string ArgString(const Napi::CallbackInfo &info, size_t i, const char *name);

void InitSys(Napi::Env env, Napi::Object exports);
void InitSeccomp(Napi::Env env, Napi::Object exports);
void InitDeviceFilter(Napi::Env env, Napi::Object exports);
void InitShimIo(Napi::Env env, Napi::Object exports);
void InitWait(Napi::Env env, Napi::Object exports);
void InitSpawn(Napi::Env env, Napi::Object exports);
void InitFiles(Napi::Env env, Napi::Object exports);
void InitStats(Napi::Env env, Napi::Object exports);
void InitSystemd(Napi::Env env, Napi::Object exports);

}  // namespace tsrun
