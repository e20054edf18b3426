// A container's cgroup statistics as runc's `events --stats` prints them (runc's types.Stats:
// the same keys, the same order, the same omitempty members, uint64 values exact, map keys
// sorted). The one reader of the stats: bin/tsrun's front door prints it for `events --stats`
// (addon/cli/front.cpp) and the N-API addon hands it to the runtime (addon/native/stats.cc →
// src/cgroups/stats.ts: the CLI's events stream, Container.stats(), the shim's metrics).
//
// Plain C++17 without exceptions and without N-API: the front door is static and has neither.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace cgroup_stats {

// A file that exists but could not be read (absent files, ENODEV and EOPNOTSUPP are no failure:
// the controller is not there). err is the errno; file is empty for an unknown layout (EINVAL).
struct Failure {
  std::string file;
  int err = 0;
};

// layout: "v1" or "hybrid" (paths: v1 controller name → its directory, e.g. "memory"), "v2" (the
// container's directory is paths[""]), or "none" (no cgroup: every member empty, as runc prints
// a rootless container without one). Appends the stats object to `out`; false on a failure, `out`
// then holds a partial object.
bool render(const std::string &layout, const std::vector<std::pair<std::string, std::string>> &paths, std::string &out,
            Failure &fail);

}  // namespace cgroup_stats
