// Module entry of tsrun_systemd.node: the systemd D-Bus calls (systemd.cc) in an addon of their
// own, so that only the systemd cgroup driver pays for loading libsystemd (and what it links:
// lz4, zstd, lzma, gcrypt, cap), not every command that loads tsrun_native.node.
#include "common.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  tsrun::InitSystemd(env, exports);
  return exports;
}

NODE_API_MODULE(tsrun_systemd, Init)
