// loadDeviceFilter(cgroupDir, rules): the cgroup v2 device controller is an eBPF program
// (BPF_PROG_TYPE_CGROUP_DEVICE) attached to the cgroup. Same semantics as runc's devicefilter:
// the rule list is first run through a cgroup v1 "devices" emulator (the last 'a' rule picks
// allow-list or deny-list mode, later rules add or remove exceptions, punching a hole into a
// wildcard exception is refused), then each remaining exception becomes one block of the program;
// a device matching no exception gets the mode's default.
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "common.h"

namespace tsrun {
namespace {

enum : uint32_t { kAccM = BPF_DEVCG_ACC_MKNOD, kAccR = BPF_DEVCG_ACC_READ, kAccW = BPF_DEVCG_ACC_WRITE, kAccAll = kAccM | kAccR | kAccW };

struct Meta {
  char type;  // 'b' | 'c'
  int64_t major, minor;  // -1 = any
  bool operator<(const Meta &o) const {
    // runc orders exceptions by (major, minor, type); the program is the same either way since
    // every exception has the same verdict, but a stable order makes programs comparable.
    return std::tie(major, minor, type) < std::tie(o.major, o.minor, o.type);
  }
  bool operator==(const Meta &o) const { return type == o.type && major == o.major && minor == o.minor; }
};

struct Emulator {
  bool defaultAllow = false;  // a fresh cgroup as runc builds it: deny everything not excepted
  std::map<Meta, uint32_t> rules;

  static std::string Describe(const Meta &m, uint32_t acc) {
    auto n = [](int64_t v) { return v < 0 ? std::string("*") : std::to_string(v); };
    std::string a;
    if (acc & kAccR) a += 'r';
    if (acc & kAccW) a += 'w';
    if (acc & kAccM) a += 'm';
    return std::string(1, m.type) + " " + n(m.major) + ":" + n(m.minor) + " " + a;
  }

  void Add(const Meta &m, uint32_t acc) { rules[m] |= acc; }

  // Returns an error message, or "" on success.
  std::string Remove(const Meta &m, uint32_t acc) {
    // cgroup v1 silently ignores removing part of a wildcard exception; runc refuses it so nobody
    // believes a device is blocked when it is not. So do we.
    const Meta partial[] = {{m.type, -1, m.minor}, {m.type, m.major, -1}, {m.type, -1, -1}};
    for (const Meta &p : partial) {
      if (p == m) continue;
      auto it = rules.find(p);
      if (it != rules.end() && (it->second & acc))
        return "device rule " + Describe(m, acc) + " cannot punch a hole in the wildcard rule " + Describe(p, it->second);
    }
    auto it = rules.find(m);
    if (it != rules.end()) {
      it->second &= ~acc;
      if (!it->second) rules.erase(it);
    }
    return "";
  }

  std::string Apply(bool allow, char type, int64_t major, int64_t minor, uint32_t acc) {
    if (type == 'a') {
      // "a" resets everything: allow-all (deny-list mode) or deny-all (allow-list mode).
      defaultAllow = allow;
      rules.clear();
      return "";
    }
    Meta m{type, major, minor};
    if (allow == defaultAllow) return Remove(m, acc);
    Add(m, acc);
    return "";
  }
};

// A tiny eBPF assembler: blocks whose failed checks jump to the start of the next block.
struct Prog {
  std::vector<bpf_insn> code;
  void Emit(uint8_t op, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    bpf_insn i;
    memset(&i, 0, sizeof i);
    i.code = op;
    i.dst_reg = dst;
    i.src_reg = src;
    i.off = off;
    i.imm = imm;
    code.push_back(i);
  }
};

std::vector<bpf_insn> Build(const Emulator &emu) {
  Prog p;
  // struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }:
  // access_type = (access << 16) | device type.
  p.Emit(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1, 0, 0);
  p.Emit(BPF_ALU | BPF_AND | BPF_K, BPF_REG_2, 0, 0, 0xffff);  // r2 = type
  p.Emit(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_3, BPF_REG_1, 0, 0);
  p.Emit(BPF_ALU | BPF_RSH | BPF_K, BPF_REG_3, 0, 0, 16);  // r3 = requested access
  p.Emit(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_4, BPF_REG_1, 4, 0);  // r4 = major
  p.Emit(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_5, BPF_REG_1, 8, 0);  // r5 = minor
  for (const auto &[m, acc] : emu.rules) {
    size_t start = p.code.size();
    std::vector<size_t> toNext;
    toNext.push_back(p.code.size());
    // JMP32: major/minor are u32 and an imm above 2^31 must not be sign-extended to 64 bits.
    p.Emit(BPF_JMP32 | BPF_JNE | BPF_K, BPF_REG_2, 0, 0, m.type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR);
    if (acc != kAccAll) {
      p.Emit(BPF_ALU | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_3, 0, 0);
      p.Emit(BPF_ALU | BPF_AND | BPF_K, BPF_REG_1, 0, 0, (int32_t)acc);
      toNext.push_back(p.code.size());
      if (emu.defaultAllow) {
        // A deny exception denies any request that asks for one of its bits (cgroup v1's
        // match_exception_partial): "deny c 1:11 w" must refuse an O_RDWR open, which asks for
        // rw. runc's program (requested ⊆ exception, as for allow exceptions) lets it through.
        p.Emit(BPF_JMP32 | BPF_JEQ | BPF_K, BPF_REG_1, 0, 0, 0);
      } else {
        // An allow exception must cover every requested bit: (r3 & acc) == r3.
        p.Emit(BPF_JMP32 | BPF_JNE | BPF_X, BPF_REG_1, BPF_REG_3, 0, 0);
      }
    }
    if (m.major >= 0) {
      toNext.push_back(p.code.size());
      p.Emit(BPF_JMP32 | BPF_JNE | BPF_K, BPF_REG_4, 0, 0, (int32_t)(uint32_t)m.major);
    }
    if (m.minor >= 0) {
      toNext.push_back(p.code.size());
      p.Emit(BPF_JMP32 | BPF_JNE | BPF_K, BPF_REG_5, 0, 0, (int32_t)(uint32_t)m.minor);
    }
    // Exceptions always have the opposite verdict of the default.
    p.Emit(BPF_ALU | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, emu.defaultAllow ? 0 : 1);
    p.Emit(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    size_t next = p.code.size();
    for (size_t j : toNext) p.code[j].off = (int16_t)(next - j - 1);
    (void)start;
  }
  p.Emit(BPF_ALU | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, emu.defaultAllow ? 1 : 0);
  p.Emit(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  return p.code;
}

long Bpf(int cmd, union bpf_attr *attr) { return syscall(SYS_bpf, cmd, attr, sizeof *attr); }

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

Napi::Value LoadDeviceFilter(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string dir = ArgString(info, 0, "cgroupDirPath");
  if (info.Length() < 2 || !info[1].IsArray()) throw Napi::TypeError::New(env, "rules must be an array");
  Napi::Array rules = info[1].As<Napi::Array>();

  Emulator emu;
  for (uint32_t i = 0; i < rules.Length(); i++) {
    std::string f = "rules[" + std::to_string(i) + "]";
    if (!rules.Get(i).IsObject()) throw Napi::TypeError::New(env, f + " must be an object");
    Napi::Object r = rules.Get(i).As<Napi::Object>();
    if (!r.Get("allow").IsBoolean()) throw Napi::TypeError::New(env, f + ".allow must be a boolean");
    bool allow = r.Get("allow").As<Napi::Boolean>().Value();
    std::string type = r.Get("type").IsString() ? r.Get("type").As<Napi::String>().Utf8Value() : "";
    if (type != "a" && type != "b" && type != "c") throw Napi::TypeError::New(env, f + ".type must be 'a', 'b' or 'c'");
    auto num = [&](const char *k) -> int64_t {
      Napi::Value v = r.Get(k);
      if (!v.IsNumber()) throw Napi::TypeError::New(env, f + "." + k + " must be a number");
      double d = v.As<Napi::Number>().DoubleValue();
      if (d != (double)(int64_t)d || d < -1 || d > 4294967295.0) throw Napi::TypeError::New(env, f + "." + k + " must be -1 (any) or a 32-bit device number");
      return (int64_t)d;
    };
    int64_t major = num("major"), minor = num("minor");
    std::string access = r.Get("access").IsString() ? r.Get("access").As<Napi::String>().Utf8Value() : "";
    uint32_t acc = 0;
    for (char c : access) {
      if (c == 'r') acc |= kAccR;
      else if (c == 'w') acc |= kAccW;
      else if (c == 'm') acc |= kAccM;
      else throw Napi::TypeError::New(env, f + ".access must be a combination of r, w and m");
    }
    if (!acc) throw Napi::TypeError::New(env, f + ".access must not be empty");
    std::string err = emu.Apply(allow, type[0], major, minor, acc);
    if (!err.empty()) ThrowCode(env, err, "EINVAL");
  }
  std::vector<bpf_insn> prog = Build(emu);

  Fd cg;
  cg.fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cg.fd < 0) ThrowErrno(env, "open " + dir, errno);

  // The programs attached before (ours from an earlier update, or systemd's): runc replaces them.
  uint32_t ids[64];
  union bpf_attr q;
  memset(&q, 0, sizeof q);
  q.query.target_fd = cg.fd;
  q.query.attach_type = BPF_CGROUP_DEVICE;
  q.query.prog_ids = (uint64_t)(uintptr_t)ids;
  q.query.prog_cnt = 64;
  if (Bpf(BPF_PROG_QUERY, &q) < 0) ThrowErrno(env, "bpf(BPF_PROG_QUERY) " + dir, errno);
  uint32_t oldCount = q.query.prog_cnt;

  static char license[] = "Apache";
  auto load = [&](char *logBuf, uint32_t logSize) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    a.insns = (uint64_t)(uintptr_t)prog.data();
    a.insn_cnt = (uint32_t)prog.size();
    a.license = (uint64_t)(uintptr_t)license;
    a.log_buf = (uint64_t)(uintptr_t)logBuf;
    a.log_size = logSize;
    a.log_level = logBuf ? 1 : 0;
    long fd;
    // The verifier gives up with EAGAIN when a signal is pending (Node gets SIGCHLD often); the
    // load is pure computation, so simply try again, as libbpf does.
    for (int i = 0; (fd = Bpf(BPF_PROG_LOAD, &a)) < 0 && errno == EAGAIN && i < 20; i++) {
    }
    return (int)fd;
  };
  Fd pfd;
  pfd.fd = load(nullptr, 0);
  if (pfd.fd < 0) {
    // Again with the verifier log, only now: it costs time and can itself fail when too long.
    int e = errno;
    std::vector<char> log(1 << 16);
    if (load(log.data(), (uint32_t)log.size()) >= 0) ThrowErrno(env, "bpf(BPF_PROG_LOAD) device filter", e);
    std::string verifier(log.data(), strnlen(log.data(), log.size()));
    ThrowErrno(env, "bpf(BPF_PROG_LOAD) device filter" + (verifier.empty() ? std::string() : " (" + verifier + ")"), e);
  }

  // Attach the new program first, then detach the old ones: never a moment without a filter.
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.target_fd = cg.fd;
  a.attach_bpf_fd = pfd.fd;
  a.attach_type = BPF_CGROUP_DEVICE;
  a.attach_flags = BPF_F_ALLOW_MULTI;
  if (Bpf(BPF_PROG_ATTACH, &a) < 0) ThrowErrno(env, "bpf(BPF_PROG_ATTACH) " + dir, errno);
  for (uint32_t i = 0; i < oldCount && i < 64; i++) {
    union bpf_attr g;
    memset(&g, 0, sizeof g);
    g.prog_id = ids[i];
    Fd old;
    old.fd = (int)Bpf(BPF_PROG_GET_FD_BY_ID, &g);
    if (old.fd < 0) {
      if (errno == ENOENT) continue;  // detached meanwhile
      ThrowErrno(env, "bpf(BPF_PROG_GET_FD_BY_ID)", errno);
    }
    memset(&g, 0, sizeof g);
    g.target_fd = cg.fd;
    g.attach_bpf_fd = old.fd;
    g.attach_type = BPF_CGROUP_DEVICE;
    if (Bpf(BPF_PROG_DETACH, &g) < 0 && errno != ENOENT) ThrowErrno(env, "bpf(BPF_PROG_DETACH) " + dir, errno);
  }
  return env.Undefined();
}

// For tests: the number of device programs attached to a cgroup directory.
Napi::Value DeviceFilterCount(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string dir = ArgString(info, 0, "cgroupDirPath");
  Fd cg;
  cg.fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cg.fd < 0) ThrowErrno(env, "open " + dir, errno);
  union bpf_attr q;
  memset(&q, 0, sizeof q);
  q.query.target_fd = cg.fd;
  q.query.attach_type = BPF_CGROUP_DEVICE;
  if (Bpf(BPF_PROG_QUERY, &q) < 0) ThrowErrno(env, "bpf(BPF_PROG_QUERY) " + dir, errno);
  return Napi::Number::New(env, q.query.prog_cnt);
}

}  // namespace

void InitDeviceFilter(Napi::Env env, Napi::Object exports) {
  Export(env, exports, "loadDeviceFilter", LoadDeviceFilter);
  Export(env, exports, "deviceFilterCount", DeviceFilterCount);
}

}  // namespace tsrun
