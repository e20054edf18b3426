// containerd-shim-tsrun-v2's front door. containerd runs the shim binary twice for every
// container: `start` (print the group's ttrpc address) and, once the task is gone, `delete`.
// When the shim daemon already runs, both are a request on its control socket
// (src/shim/control.ts): answered here without starting a JavaScript engine. Everything else —
// no daemon yet, the daemon itself, `-v` — runs the engine entry by exec, with the same arguments.
//
// Everything this program does is also done by src/shim/main.ts (the fallback path); the two
// must agree on: the group rule, the socket address, the control socket path and protocol.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "../init/json.h"

namespace {

// ---- SHA-256 (FIPS 180-4), for containerd's socket address ----
struct Sha256 {
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  uint8_t buf[64];
  size_t used = 0;
  uint64_t bits = 0;

  static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

  void block(const uint8_t *p) {
    static const uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be,
        0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa,
        0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85,
        0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
        0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f,
        0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    uint32_t w[64];
    for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
      uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
      uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
  }

  void update(const std::string &s) {
    for (unsigned char ch : s) {
      buf[used++] = ch;
      bits += 8;
      if (used == 64) block(buf), used = 0;
    }
  }

  std::string hex() {
    uint64_t total = bits;
    uint8_t pad = 0x80;
    update(std::string(1, (char)pad));
    while (used != 56) update(std::string(1, '\0'));
    for (int i = 7; i >= 0; i--) update(std::string(1, (char)(total >> (8 * i))));
    std::string out;
    char b[9];
    for (uint32_t v : h) snprintf(b, sizeof b, "%08x", v), out += b;
    return out;
  }
};

std::string sha256_hex(const std::string &s) {
  Sha256 h;
  h.update(s);
  return h.hex();
}

const char *kSocketDir = "/run/containerd/s";

// path.join(a, b, c) for containerd's address/namespace/group (Go's filepath.Join: cleaned).
std::string join_clean(const std::vector<std::string> &parts) {
  std::string joined;
  for (auto &p : parts) {
    if (p.empty()) continue;
    if (!joined.empty()) joined += "/";
    joined += p;
  }
  bool abs = !joined.empty() && joined[0] == '/';
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= joined.size()) {
    size_t j = joined.find('/', i);
    if (j == std::string::npos) j = joined.size();
    std::string seg = joined.substr(i, j - i);
    if (seg == "..") {
      if (!out.empty() && out.back() != "..") out.pop_back();
      else if (!abs) out.push_back(seg);
    } else if (!seg.empty() && seg != ".") {
      out.push_back(seg);
    }
    i = j + 1;
  }
  std::string r = abs ? "/" : "";
  for (size_t k = 0; k < out.size(); k++) r += (k ? "/" : "") + out[k];
  return r.empty() ? "." : r;
}

bool read_file(const std::string &path, std::string &out) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char b[65536];
  ssize_t n;
  while ((n = read(fd, b, sizeof b)) > 0) out.append(b, (size_t)n);
  close(fd);
  return n == 0;
}

// runc-v2's grouping (src/shim/main.ts groupOf): the group annotation, the pod, else the id.
std::string group_of(const std::string &bundle, const std::string &id) {
  std::string text, err;
  JValue config;
  if (!read_file(bundle + "/config.json", text) || !json_parse(text, config, err) || config.type != JValue::Object) return id;
  const JValue *a = config.get("annotations");
  if (!a || a->type != JValue::Object) return id;
  for (const char *key : {"io.containerd.runc.v2.group", "io.kubernetes.cri.sandbox-id"}) {
    const JValue *v = a->get(key);
    if (v && v->type == JValue::String && !v->text.empty()) return v->text;
  }
  return id;
}

int connect_unix(const std::string &path) {
  struct sockaddr_un sa;
  if (path.size() >= sizeof sa.sun_path) return -1;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path.data(), path.size());
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// One control request (a JSON line) and its answer; false when no daemon answers.
bool control(const std::string &address, const std::string &request, JValue &answer) {
  std::string path = std::string(kSocketDir) + "/tsrun-" + sha256_hex(address).substr(0, 32);
  int fd = connect_unix(path);
  if (fd < 0) return false;
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string line = request + "\n";
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = write(fd, line.data() + off, line.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      return false;
    }
    off += (size_t)n;
  }
  std::string got;
  char b[65536];
  for (;;) {
    ssize_t n = read(fd, b, sizeof b);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got.append(b, (size_t)n);
    if (got.find('\n') != std::string::npos) break;
  }
  close(fd);
  size_t nl = got.find('\n');
  if (nl == std::string::npos) return false;
  std::string err;
  return json_parse(got.substr(0, nl), answer, err) && answer.type == JValue::Object;
}

bool write_all_fd(int fd, const std::string &s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += (size_t)n;
  }
  return true;
}

bool write_atomically(const std::string &file, const std::string &text) {
  std::string tmp = file + "." + std::to_string(getpid()) + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  bool ok = write_all_fd(fd, text);
  close(fd);
  if (!ok || rename(tmp.c_str(), file.c_str()) < 0) {
    unlink(tmp.c_str());
    return false;
  }
  return true;
}

bool base64_decode(const std::string &in, std::string &out) {
  int val = 0, bits = -8;
  for (unsigned char c : in) {
    int d;
    if (c >= 'A' && c <= 'Z') d = c - 'A';
    else if (c >= 'a' && c <= 'z') d = c - 'a' + 26;
    else if (c >= '0' && c <= '9') d = c - '0' + 52;
    else if (c == '+') d = 62;
    else if (c == '/') d = 63;
    else if (c == '=') break;
    else return false;
    val = (val << 6) | d;
    bits += 6;
    if (bits >= 0) {
      out += (char)((val >> bits) & 0xff);
      bits -= 8;
    }
  }
  return true;
}

struct Flags {
  std::string ns, address, id, bundle, action;
  bool debug = false;
  bool ok = true;
};

// Go's flag syntax, as src/shim/main.ts parseFlags; anything unknown goes to the Node entry.
Flags parse(int argc, char **argv) {
  Flags f;
  const char *env_ns = getenv("NAMESPACE");
  if (env_ns) f.ns = env_ns;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a.empty() || a[0] != '-') {
      f.action = a;
      continue;
    }
    std::string name = a.substr(a[1] == '-' ? 2 : 1), value;
    bool inline_value = false;
    size_t eq = name.find('=');
    if (eq != std::string::npos) value = name.substr(eq + 1), name = name.substr(0, eq), inline_value = true;
    if (name == "debug") {
      f.debug = !inline_value || value == "true";
      continue;
    }
    std::string *dst = name == "namespace" ? &f.ns : name == "address" ? &f.address : name == "id" ? &f.id : name == "bundle" ? &f.bundle : nullptr;
    if (name == "publish-binary") {
      if (!inline_value) i++;
      continue;
    }
    if (!dst) {
      f.ok = false;
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= argc) {
        f.ok = false;
        continue;
      }
      value = argv[++i];
    }
    *dst = value;
  }
  return f;
}

std::string quoted(const std::string &s) {
  std::string o;
  json_quote(o, s);
  return o;
}

std::string cwd() {
  char b[PATH_MAX];
  return getcwd(b, sizeof b) ? b : ".";
}

// start with a daemon running: the group is served already, or the daemon takes it on.
bool fast_start(const Flags &f) {
  std::string bundle = f.bundle.empty() ? cwd() : f.bundle;
  std::string sock = std::string(kSocketDir) + "/" + sha256_hex(join_clean({f.address, f.ns, group_of(bundle, f.id)}));
  std::string address = "unix://" + sock;
  int fd = connect_unix(sock);
  if (fd >= 0) {
    close(fd);
  } else {
    const char *ttrpc = getenv("TTRPC_ADDRESS");
    std::string req = "{\"op\":\"serve\",\"namespace\":" + quoted(f.ns) + ",\"socket\":" + quoted(sock) + ",\"bundle\":" + quoted(bundle) +
                      ",\"id\":" + quoted(f.id) + ",\"debug\":" + (f.debug ? "true" : "false") + ",\"ttrpcAddress\":" + quoted(ttrpc ? ttrpc : "") + "}";
    JValue answer;
    if (!control(f.address, req, answer) || answer.get("error")) return false;
  }
  if (!write_atomically(bundle + "/address", address)) return false;
  return write_all_fd(1, address);
}

// delete with a daemon running: it cleans up and hands back containerd's DeleteResponse.
bool fast_delete(const Flags &f) {
  std::string bundle = f.bundle.empty() ? cwd() : f.bundle;
  std::string req = "{\"op\":\"cleanup\",\"namespace\":" + quoted(f.ns) + ",\"id\":" + quoted(f.id) + ",\"bundle\":" + quoted(bundle) + "}";
  JValue answer;
  if (!control(f.address, req, answer)) return false;
  const JValue *resp = answer.get("deleteResponse");
  if (!resp || resp->type != JValue::String) return false;
  std::string bytes;
  if (!base64_decode(resp->text, bytes)) return false;
  return write_all_fd(1, bytes);
}

[[noreturn]] void exec_node(char **argv) {
  // <repo>/bin/containerd-shim-tsrun-v2 → <repo>/bin/.containerd-shim-tsrun-v2, an executable:
  // the shim compiled by Bun (or, built with TSRUN_SHIM_ENGINE=node, a script whose shebang is Node).
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    fprintf(stderr, "containerd-shim-tsrun-v2: readlink /proc/self/exe: %s\n", strerror(errno));
    _exit(1);
  }
  self[n] = 0;
  std::string bin_dir = std::string(self).substr(0, std::string(self).rfind('/'));
  std::string entry = bin_dir + "/.containerd-shim-tsrun-v2";
  std::vector<char *> args;
  args.push_back((char *)entry.c_str());
  for (int i = 1; argv[i]; i++) args.push_back(argv[i]);
  args.push_back(nullptr);
  execv(entry.c_str(), args.data());
  fprintf(stderr, "containerd-shim-tsrun-v2: exec %s: %s\n", entry.c_str(), strerror(errno));
  _exit(1);
}

}  // namespace

int main(int argc, char **argv) {
  Flags f = parse(argc, argv);
  if (f.ok && !f.address.empty()) {
    if (f.action == "start" && fast_start(f)) return 0;
    if (f.action == "delete" && fast_delete(f)) return 0;
  }
  exec_node(argv);
}
