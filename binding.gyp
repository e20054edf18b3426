{
  # The N-API addon (build/Release/tsrun_native.node). Only the runtime process loads it, lazily
  # (src/native/addon.ts); nothing in here runs inside a container.
  "targets": [
    {
      "target_name": "tsrun_native",
      "sources": [
        "addon/native/addon.cc",
        "addon/native/seccomp.cc",
        "addon/native/devicefilter.cc",
        "addon/native/shimio.cc",
        "addon/native/wait.cc",
        "addon/native/spawn.cc",
        "addon/native/files.cc",
        "addon/native/stats.cc",
        "addon/common/cgroup_stats.cpp",
        "addon/native/common.cc"
      ],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "cflags_cc!": ["-std=gnu++17", "-std=gnu++20"],
      "libraries": ["-lseccomp"]
    },
    {
      # systemd's manager over sd-bus (build/Release/tsrun_systemd.node), for the systemd cgroup
      # driver only: loaded on first use by src/cgroups/systemd.ts.
      "target_name": "tsrun_systemd",
      "sources": [
        "addon/native/systemd_module.cc",
        "addon/native/systemd.cc",
        "addon/native/common.cc"
      ],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "cflags_cc!": ["-std=gnu++17", "-std=gnu++20"],
      "libraries": ["-lsystemd"]
    }
  ]
}
