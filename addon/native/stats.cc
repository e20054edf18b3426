// cgroupStats(layout, paths): the container's cgroup statistics as runc's `events --stats` data,
// a JSON text (addon/common/cgroup_stats.cpp, the one reader, shared with bin/tsrun's front door).
// JSON rather than an object: the uint64 counters stay exact for whoever prints them.
#include <errno.h>

#include "../common/cgroup_stats.h"
#include "common.h"

namespace tsrun {

namespace {

Napi::Value CgroupStats(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string layout = ArgString(info, 0, "layout");
  if (layout != "v1" && layout != "hybrid" && layout != "v2" && layout != "none")
    throw Napi::TypeError::New(env, "layout must be v1, hybrid, v2 or none, not " + layout);
  if (info.Length() < 2 || !info[1].IsObject() || info[1].IsArray()) throw Napi::TypeError::New(env, "paths must be an object");
  Napi::Object obj = info[1].As<Napi::Object>();
  Napi::Array keys = obj.GetPropertyNames();
  std::vector<std::pair<std::string, std::string>> paths;
  for (uint32_t i = 0; i < keys.Length(); i++) {
    Napi::Value k = keys.Get(i), v = obj.Get(k);
    std::string name = k.ToString().Utf8Value();
    if (!v.IsString()) throw Napi::TypeError::New(env, "paths[" + name + "] must be a string");
    std::string dir = v.As<Napi::String>().Utf8Value();
    if (dir.empty() || dir[0] != '/' || dir.find('\0') != std::string::npos)
      throw Napi::TypeError::New(env, "paths[" + name + "] must be an absolute path");
    paths.emplace_back(name, dir);
  }
  std::string out;
  cgroup_stats::Failure fail;
  if (!cgroup_stats::render(layout, paths, out, fail)) ThrowErrno(env, fail.file + ": read", fail.err ? fail.err : EINVAL);
  return Napi::String::New(env, out);
}

}  // namespace

void InitStats(Napi::Env env, Napi::Object exports) { Export(env, exports, "cgroupStats", CgroupStats); }

}  // namespace tsrun
