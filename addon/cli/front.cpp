// bin/tsrun's front door. Clients call `tsrun state <id>` more than anything else (containerd's
// runc shim, dockerd and podman poll it), and even a fast JavaScript engine takes longer to start
// here than runc takes for the whole call. Monitoring (containerd's metrics through go-runc, the
// kubelet's through it) calls `events --stats <id>` once per container and interval. So this static
// program answers the ordinary, successful `state`, `events --stats` and `--version` itself, and
// execs the CLI (bin/.tsrun-cli, same arguments) for
// everything else, including every case it is not sure of: an unusual command line, no state,
// a state it cannot read or print exactly as the CLI would, a container being created. Errors
// are therefore always the CLI's, with its wording.
//
// What it does is also done by src/container/state.ts (containerState, deriveStatus,
// ociState), src/container/state-store.ts (readState, checkRoot) and src/cli/log.ts (the --log
// file); they must agree. test/cli-front.test.ts compares the two paths byte for byte in every
// status, and every other test's `state` goes through this one. The statistics themselves have
// one reader, addon/common/cgroup_stats.cpp, which the CLI reaches through the N-API addon.
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "../common/cgroup_stats.h"
#include "../init/json.h"

namespace {

char g_self_dir[PATH_MAX];

// The CLI is a short-lived Bun executable: JavaScriptCore's JIT costs more to start (its
// compiler threads, code it compiles and then never reuses) than it saves in a call that runs
// for milliseconds; with the interpreter alone every command measured 10-20% faster here
// (README, "Benchmarks"). Only when the caller has not chosen: BUN_JSC_useJIT=1 turns it back on.
// The variable reaches no container process (the init starts with an empty environment, hooks
// with their own env) and is inert for anything but JavaScriptCore.
[[noreturn]] void to_cli(char **argv) {
  std::string script = std::string(g_self_dir) + "/.tsrun-cli";
  setenv("BUN_JSC_useJIT", "0", 0);
  execv(script.c_str(), argv);
  std::string msg = "tsrun: exec " + script + ": " + strerror(errno) + "\n";
  (void)!write(2, msg.data(), msg.size());
  _exit(127);
}

bool read_all(int fd, std::string &out) {
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    out.append(buf, (size_t)n);
  }
}

bool read_file_at(int dirfd, const std::string &rel, std::string &out) {
  int fd = openat(dirfd, rel.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = read_all(fd, out);
  close(fd);
  return ok;
}

bool write_all(int fd, const std::string &s) {
  const char *p = s.data();
  size_t left = s.size();
  while (left > 0) {
    ssize_t n = write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    left -= (size_t)n;
  }
  return true;
}

// runc's id rule (src/container/ids.ts validateId).
bool valid_id(const std::string &id) {
  if (id.empty() || id.size() > 1024 || id == "." || id == "..") return false;
  for (unsigned char c : id)
    if (!(isalnum(c) || c == '_' || c == '+' || c == '.' || c == '-')) return false;
  return true;
}

// Strict UTF-8 without surrogates: what JavaScript strings of the state hold and print as they are.
bool utf8_ok(const std::string &s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    unsigned char c = (unsigned char)s[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; k++) {
      unsigned char d = (unsigned char)s[i + k];
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    static const uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

// JSON.stringify's string form (only ", \ and the C0 controls escaped), of valid UTF-8 only.
bool quote(std::string &out, const std::string &s) {
  if (!utf8_ok(s)) return false;
  json_quote(out, s, false);
  return true;
}

// A key JavaScript would order first in an object (an array index): printing it in file order
// would differ from the CLI, so such states go to the CLI.
bool index_like(const std::string &k) {
  if (k.empty() || k.size() > 10) return false;
  for (char c : k)
    if (c < '0' || c > '9') return false;
  if (k.size() > 1 && k[0] == '0') return false;
  return strtoull(k.c_str(), nullptr, 10) <= 4294967294ULL;
}

bool integer(const JValue *v, int64_t &out) { return v && v->type == JValue::Number && json_i64(*v, out); }
const std::string *string(const JValue *v) { return v && v->type == JValue::String ? &v->text : nullptr; }

// /proc/<pid>/stat: alive, not a zombie, and started at `start` (src/container/proc.ts).
bool same_process_alive(int64_t pid, int64_t start) {
  std::string stat;
  int fd = open(("/proc/" + std::to_string(pid) + "/stat").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = read_all(fd, stat);
  close(fd);
  if (!ok) return false;
  size_t close_paren = stat.rfind(')');
  if (close_paren == std::string::npos || close_paren + 2 >= stat.size()) return false;
  std::vector<std::string> f;
  size_t p = close_paren + 2;
  while (p <= stat.size()) {
    size_t sp = stat.find(' ', p);
    if (sp == std::string::npos) sp = stat.size();
    f.push_back(stat.substr(p, sp - p));
    p = sp + 1;
  }
  if (f.size() < 20) return false;
  if (f[0] == "Z" || f[0] == "X") return false;
  return f[19] == std::to_string(start);
}

// deriveStatus's paused: the freezer says FROZEN (v1/hybrid) or cgroup.freeze is 1 (v2). Any
// failure to read means "not frozen", as there.
bool frozen(const JValue &cgroup) {
  const std::string *layout = string(cgroup.get("layout"));
  const JValue *paths = cgroup.get("paths");
  if (!layout || !paths || paths->type != JValue::Object) return false;
  std::string file, want;
  if (*layout == "v2") {
    const std::string *dir = string(paths->get(""));
    if (!dir) return false;
    file = *dir + "/cgroup.freeze", want = "1";
  } else if (*layout == "v1" || *layout == "hybrid") {
    const std::string *dir = string(paths->get("freezer"));
    if (!dir) return false;
    file = *dir + "/freezer.state", want = "FROZEN";
  } else {
    return false;
  }
  std::string text;
  if (!read_file_at(AT_FDCWD, file, text)) return false;
  size_t b = text.find_first_not_of(" \t\n\r"), e = text.find_last_not_of(" \t\n\r");
  return b != std::string::npos && text.substr(b, e - b + 1) == want;
}

// The --log file, opened as src/cli/log.ts opens it (created 0644, appended, no symlink); a log
// that needs more (a symlink to judge) is the CLI's.
bool touch_log(const std::string &file) {
  int fd = open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  close(fd);
  return true;
}

// The state dir as checkRoot accepts it: a real directory, ours, not writable by others.
int open_root(const std::string &root) {
  struct stat lst, st;
  if (lstat(root.c_str(), &lst) < 0 || !S_ISDIR(lst.st_mode)) return -1;
  int fd = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -1;
  if (fstat(fd, &st) < 0 || st.st_dev != lst.st_dev || st.st_ino != lst.st_ino || st.st_uid != geteuid() || (st.st_mode & 022)) {
    close(fd);
    return -1;
  }
  return fd;
}

// A container's saved state and its status as deriveStatus finds it, or false to leave the
// call to the CLI (no state, one it cannot read, one being created, a cgroup state it does not know).
bool load_container(const std::string &root, const std::string &id, JValue &saved, const char *&status) {
  int rootfd = open_root(root);
  if (rootfd < 0) return false;
  std::string text;
  bool read = read_file_at(rootfd, id + "/state.json", text);
  std::string err;
  if (!read || !json_parse(text, saved, err) || saved.type != JValue::Object) {
    close(rootfd);
    return false;
  }
  const std::string *sid = string(saved.get("id"));
  const JValue *config = saved.get("config");
  int64_t pid, start;
  // initPid 0 is a container being created (or a create killed half-way): the CLI's.
  if (!sid || *sid != id || !config || config->type != JValue::Object || !integer(saved.get("initPid"), pid) || pid <= 0 ||
      !integer(saved.get("initStartTime"), start)) {
    close(rootfd);
    return false;
  }
  // A cgroup state of another shape is for the CLI to judge. The systemd driver's unit ("systemd")
  // changes nothing here: its freezer is the unit directory's, in `paths` (src/cgroups/systemd.ts).
  const JValue *cgroup = saved.get("cgroup");
  bool known_cgroup = !cgroup || cgroup->type == JValue::Null || cgroup->type == JValue::Object;
  if (known_cgroup && cgroup && cgroup->type == JValue::Object)
    for (auto &m : cgroup->members) known_cgroup &= m.first == "layout" || m.first == "paths" || m.first == "systemd";
  if (!known_cgroup) {
    close(rootfd);
    return false;
  }
  status = "running";
  struct stat fifo;
  if (!same_process_alive(pid, start)) status = "stopped";
  else if (fstatat(rootfd, (id + "/exec.fifo").c_str(), &fifo, 0) == 0) status = "created";
  else if (cgroup && cgroup->type == JValue::Object && frozen(*cgroup)) status = "paused";
  close(rootfd);
  return true;
}

// The OCI state as the CLI prints it (JSON.stringify(state, null, 2)), or false to leave it to the CLI.
bool render_state(const std::string &root, const std::string &id, std::string &out) {
  JValue saved;
  const char *status;
  if (!load_container(root, id, saved, status)) return false;
  int64_t pid;
  integer(saved.get("initPid"), pid);
  const JValue *config = saved.get("config");

  out = "{\n  \"ociVersion\": \"1.2.0\",\n  \"id\": ";
  if (!quote(out, id)) return false;
  out += ",\n  \"pid\": " + std::to_string(strcmp(status, "stopped") == 0 ? 0 : pid);
  out += ",\n  \"status\": \"" + std::string(status) + "\"";
  for (const char *key : {"bundle", "rootfs", "created", "owner"}) {
    const std::string *v = string(saved.get(key));
    if (!v) return false;
    out += ",\n  \"" + std::string(key) + "\": ";
    if (!quote(out, *v)) return false;
  }
  const JValue *ann = config->get("annotations");
  if (ann && ann->type == JValue::Object && !ann->members.empty()) {
    out += ",\n  \"annotations\": {";
    for (size_t i = 0; i < ann->members.size(); i++) {
      const auto &m = ann->members[i];
      if (index_like(m.first) || m.second.type != JValue::String) return false;
      for (size_t j = 0; j < i; j++)
        if (ann->members[j].first == m.first) return false;  // JSON.parse keeps the last: the CLI's
      out += i ? ",\n    " : "\n    ";
      if (!quote(out, m.first)) return false;
      out += ": ";
      if (!quote(out, m.second.text)) return false;
    }
    out += "\n  }";
  } else if (ann && ann->type != JValue::Object && ann->type != JValue::Null) {
    return false;
  }
  out += "\n}\n";
  return true;
}

// `events --stats`'s one line, as src/container/events.ts prints it: the stats of a container
// that is not stopped (checkTransition's "events"), from its cgroup state. Everything else — a
// stopped container, no cgroup (the CLI warns and prints empty stats), a file that cannot be
// read — is the CLI's, which answers with its own wording.
bool render_stats(const std::string &root, const std::string &id, std::string &out) {
  JValue saved;
  const char *status;
  if (!load_container(root, id, saved, status) || strcmp(status, "stopped") == 0) return false;
  const JValue *cgroup = saved.get("cgroup");
  if (!cgroup || cgroup->type != JValue::Object) return false;
  const std::string *layout = string(cgroup->get("layout"));
  const JValue *paths = cgroup->get("paths");
  if (!layout || (*layout != "v1" && *layout != "hybrid" && *layout != "v2") || !paths || paths->type != JValue::Object) return false;
  std::vector<std::pair<std::string, std::string>> dirs;
  for (const auto &m : paths->members) {
    if (m.second.type != JValue::String || m.second.text.empty() || m.second.text[0] != '/') return false;
    for (const auto &d : dirs)
      if (d.first == m.first) return false;  // JSON.parse keeps the last: the CLI's
    dirs.emplace_back(m.first, m.second.text);
  }
  out = "{\"type\":\"stats\",\"id\":";
  if (!quote(out, id)) return false;
  out += ",\"data\":";
  cgroup_stats::Failure fail;
  if (!cgroup_stats::render(*layout, dirs, out, fail)) return false;
  out += "}\n";
  return true;
}

}  // namespace

int main(int argc, char **argv) {
  ssize_t n = readlink("/proc/self/exe", g_self_dir, sizeof g_self_dir - 1);
  if (n <= 0) {
    (void)!write(2, "tsrun: cannot find its own directory\n", 37);
    return 127;
  }
  g_self_dir[n] = 0;
  char *slash = strrchr(g_self_dir, '/');
  if (slash) *slash = 0;

  // The ordinary command lines: [--root R] [--log F] [--log-format text|json] [--systemd-cgroup]
  // state <id>, events --stats <id>, and --version alone. Anything else is the CLI's.
  if (argc == 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-v") == 0)) {
    std::string text;
    if (read_file_at(AT_FDCWD, std::string(g_self_dir) + "/../dist/cli/version.txt", text) && !text.empty() && write_all(1, text)) return 0;
    to_cli(argv);
  }
  std::string root, log;
  bool root_given = false;
  int i = 1;
  for (; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&](const char *name, std::string &v) -> bool {
      size_t len = strlen(name);
      if (a == name && i + 1 < argc) {
        v = argv[++i];
        return true;
      }
      if (a.compare(0, len + 1, std::string(name) + "=") == 0) {
        v = a.substr(len + 1);
        return true;
      }
      return false;
    };
    std::string format;
    if (value("--root", root)) {
      root_given = true;
    } else if (value("--log", log)) {
    } else if (value("--log-format", format)) {
      if (format != "text" && format != "json") to_cli(argv);
    } else if (a == "--systemd-cgroup") {
    } else {
      break;
    }
  }
  // state <id>, or events --stats <id> (either order: go-runc's Stats puts --stats first).
  bool state = i + 2 == argc && strcmp(argv[i], "state") == 0;
  bool stats = i + 3 == argc && strcmp(argv[i], "events") == 0 &&
               (strcmp(argv[i + 1], "--stats") == 0 || strcmp(argv[i + 2], "--stats") == 0);
  if (!state && !stats) to_cli(argv);
  std::string id = state ? argv[i + 1] : strcmp(argv[i + 1], "--stats") == 0 ? argv[i + 2] : argv[i + 1];
  // The default root is root's; a user's (rootless) default is the CLI's to find.
  if (!root_given) {
    if (geteuid() != 0) to_cli(argv);
    root = "/run/tsrun";
  }
  if (root.empty() || !valid_id(id) || id[0] == '-' || (!log.empty() && !touch_log(log))) to_cli(argv);
  std::string out;
  if (!(state ? render_state(root, id, out) : render_stats(root, id, out))) to_cli(argv);
  return write_all(1, out) ? 0 : 1;
}
