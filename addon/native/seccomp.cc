// seccompCompile(profile, arch, onUnknown?) and seccompCompileAsync(profile, arch) (on libuv's
// thread pool): runtime-spec seccomp → classic BPF, with libseccomp,
// plus runc's -ENOSYS stub in front. This runs in the runtime (the parent); the container init
// only hands the bytes to seccomp(2). The TypeScript side (src/seccomp/compile.ts) validates the
// profile first and names the offending field; the checks here are a second line that keeps the
// native code safe on its own.
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "common.h"

namespace tsrun {
namespace {

struct ArchName {
  const char *name;
  uint32_t token;
};

// The runtime-spec names (SCMP_ARCH_*). seccomp_arch_resolve_name wants libseccomp's own short
// names ("x86_64"), so the table maps the spec's spelling to the tokens directly.
const ArchName kArches[] = {
    {"SCMP_ARCH_X86", SCMP_ARCH_X86},
    {"SCMP_ARCH_X86_64", SCMP_ARCH_X86_64},
    {"SCMP_ARCH_X32", SCMP_ARCH_X32},
    {"SCMP_ARCH_ARM", SCMP_ARCH_ARM},
    {"SCMP_ARCH_AARCH64", SCMP_ARCH_AARCH64},
    {"SCMP_ARCH_MIPS", SCMP_ARCH_MIPS},
    {"SCMP_ARCH_MIPS64", SCMP_ARCH_MIPS64},
    {"SCMP_ARCH_MIPS64N32", SCMP_ARCH_MIPS64N32},
    {"SCMP_ARCH_MIPSEL", SCMP_ARCH_MIPSEL},
    {"SCMP_ARCH_MIPSEL64", SCMP_ARCH_MIPSEL64},
    {"SCMP_ARCH_MIPSEL64N32", SCMP_ARCH_MIPSEL64N32},
    {"SCMP_ARCH_PPC", SCMP_ARCH_PPC},
    {"SCMP_ARCH_PPC64", SCMP_ARCH_PPC64},
    {"SCMP_ARCH_PPC64LE", SCMP_ARCH_PPC64LE},
    {"SCMP_ARCH_S390", SCMP_ARCH_S390},
    {"SCMP_ARCH_S390X", SCMP_ARCH_S390X},
    {"SCMP_ARCH_PARISC", SCMP_ARCH_PARISC},
    {"SCMP_ARCH_PARISC64", SCMP_ARCH_PARISC64},
    {"SCMP_ARCH_RISCV64", SCMP_ARCH_RISCV64},
};

// x32 shares AUDIT_ARCH_X86_64 with x86_64; its syscall numbers carry this bit.
constexpr uint32_t kX32SyscallBit = 0x40000000;

[[noreturn]] void Fail(Napi::Env env, const std::string &msg) { ThrowCode(env, msg, "EINVAL"); }

uint32_t ArchToken(Napi::Env env, const std::string &name, const std::string &field) {
  for (const auto &a : kArches)
    if (name == a.name) return a.token;
  Fail(env, field + ": unknown architecture " + name);
}

enum class Kind { Kill, KillThread, KillProcess, Trap, Errno, Trace, Allow, Log, Notify };

struct Action {
  Kind kind;
  uint32_t value;  // the libseccomp action (with the errno / trace data folded in)
};

Action ParseAction(Napi::Env env, const std::string &name, Napi::Value errnoRet, const std::string &field) {
  bool hasErrno = !errnoRet.IsUndefined() && !errnoRet.IsNull();
  uint32_t eno = EPERM;  // runc: ERRNO and TRACE without errnoRet mean EPERM
  if (hasErrno) {
    if (!errnoRet.IsNumber()) Fail(env, field + "errnoRet: must be a number");
    double d = errnoRet.As<Napi::Number>().DoubleValue();
    if (d < 0 || d > 0xffff || d != (double)(uint32_t)d) Fail(env, field + "errnoRet: must be an integer from 0 to 65535");
    eno = (uint32_t)d;
  }
  if (name == "SCMP_ACT_KILL") return {Kind::Kill, SCMP_ACT_KILL};
  if (name == "SCMP_ACT_KILL_THREAD") return {Kind::KillThread, SCMP_ACT_KILL_THREAD};
  if (name == "SCMP_ACT_KILL_PROCESS") return {Kind::KillProcess, SCMP_ACT_KILL_PROCESS};
  if (name == "SCMP_ACT_TRAP") return {Kind::Trap, SCMP_ACT_TRAP};
  if (name == "SCMP_ACT_ERRNO") return {Kind::Errno, SCMP_ACT_ERRNO(eno)};
  if (name == "SCMP_ACT_TRACE") return {Kind::Trace, SCMP_ACT_TRACE(eno)};
  if (name == "SCMP_ACT_ALLOW") return {Kind::Allow, SCMP_ACT_ALLOW};
  if (name == "SCMP_ACT_LOG") return {Kind::Log, SCMP_ACT_LOG};
  if (name == "SCMP_ACT_NOTIFY") return {Kind::Notify, SCMP_ACT_NOTIFY};
  Fail(env, field + "action: unknown action " + name);
}

scmp_compare ParseOp(Napi::Env env, const std::string &op, const std::string &field) {
  if (op == "SCMP_CMP_NE") return SCMP_CMP_NE;
  if (op == "SCMP_CMP_LT") return SCMP_CMP_LT;
  if (op == "SCMP_CMP_LE") return SCMP_CMP_LE;
  if (op == "SCMP_CMP_EQ") return SCMP_CMP_EQ;
  if (op == "SCMP_CMP_GE") return SCMP_CMP_GE;
  if (op == "SCMP_CMP_GT") return SCMP_CMP_GT;
  if (op == "SCMP_CMP_MASKED_EQ") return SCMP_CMP_MASKED_EQ;
  Fail(env, field + ": unknown operator " + op);
}

std::string Str(Napi::Env env, Napi::Value v, const std::string &field) {
  if (!v.IsString()) Fail(env, field + ": must be a string");
  return v.As<Napi::String>().Utf8Value();
}

// Argument values are 64-bit: a JSON number loses precision above 2^53, so TypeScript passes
// BigInts; plain non-negative integers are accepted too.
uint64_t U64(Napi::Env env, Napi::Value v, const std::string &field) {
  if (v.IsUndefined() || v.IsNull()) return 0;
  if (v.IsBigInt()) {
    bool lossless = false;
    uint64_t r = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) Fail(env, field + ": must fit in 64 bits unsigned");
    return r;
  }
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (d < 0 || d > 9007199254740991.0 || d != (double)(uint64_t)d) Fail(env, field + ": must be a non-negative integer");
    return (uint64_t)d;
  }
  Fail(env, field + ": must be a number");
}

// Owns the libseccomp context so every exit path releases it.
struct Ctx {
  scmp_filter_ctx ctx = nullptr;
  ~Ctx() {
    if (ctx) seccomp_release(ctx);
  }
};

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

// ---- the -ENOSYS stub ---------------------------------------------------------------------------
// runc prepends a small program that returns -ENOSYS for syscall numbers above the largest one the
// profile names (per architecture), instead of the default action (typically EPERM). Newer libcs
// probe new syscalls (clone3, faccessat2, ...) and fall back only on ENOSYS; a profile written
// before the syscall existed cannot name it. Our own generator, same semantics as runc's patchbpf.

struct Asm {
  std::vector<sock_filter> code;
  struct Fix {
    size_t at;
    int jt, jf;  // label ids, -1 = the next instruction
  };
  std::vector<Fix> fixes;
  std::vector<long> labels;

  int Label() {
    labels.push_back(-1);
    return (int)labels.size() - 1;
  }
  void Bind(int l) { labels[l] = (long)code.size(); }
  void Ld(uint32_t off) { code.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, off)); }
  void Ret(uint32_t k) { code.push_back(BPF_STMT(BPF_RET | BPF_K, k)); }
  void Jmp(uint16_t op, uint32_t k, int jt, int jf) {
    fixes.push_back({code.size(), jt, jf});
    code.push_back(BPF_JUMP(BPF_JMP | op | BPF_K, k, 0, 0));
  }
  void Ja(int l) {
    fixes.push_back({code.size(), l, -2});
    code.push_back(BPF_STMT(BPF_JMP | BPF_JA, 0));
  }
  // Only forward jumps exist in classic BPF; conditional ones reach at most 255 instructions.
  bool Resolve(std::string &err) {
    for (const auto &f : fixes) {
      auto dist = [&](int l) -> long { return l == -1 ? 0 : labels[l] - (long)(f.at + 1); };
      if (f.jf == -2) {
        code[f.at].k = (uint32_t)dist(f.jt);
        continue;
      }
      long t = dist(f.jt), e = dist(f.jf);
      if (t < 0 || t > 255 || e < 0 || e > 255) {
        err = "seccomp: -ENOSYS stub too large for a short jump";
        return false;
      }
      code[f.at].jt = (uint8_t)t;
      code[f.at].jf = (uint8_t)e;
    }
    return true;
  }
};

struct ArchMax {
  uint32_t audit;
  bool s390 = false;
  long amd64 = -1;  // x86_64 syscalls (bit 30 clear), or the only ABI for other arches
  long x32 = -1;    // x32 syscalls (bit 30 set), only for AUDIT_ARCH_X86_64
};

std::vector<sock_filter> EnosysStub(const std::vector<ArchMax> &arches, std::string &err) {
  Asm a;
  int filter = a.Label(), enosys = a.Label();
  std::vector<int> sect;
  a.Ld(offsetof(struct seccomp_data, arch));
  for (const auto &m : arches) {
    sect.push_back(a.Label());
    a.Jmp(BPF_JEQ, m.audit, sect.back(), -1);
  }
  // Architectures we do not know go straight to libseccomp's own arch check (bad-arch action).
  a.Ja(filter);
  for (size_t i = 0; i < arches.size(); i++) {
    const ArchMax &m = arches[i];
    a.Bind(sect[i]);
    a.Ld(offsetof(struct seccomp_data, nr));
    // s390(x): an unknown large syscall number is left as 0 (the old setup(2) multiplexer), so 0
    // means "not known to this kernel".
    if (m.s390) a.Jmp(BPF_JEQ, 0, enosys, -1);
    if (m.audit == AUDIT_ARCH_X86_64 && m.x32 >= 0 && m.amd64 >= 0) {
      int x32 = a.Label();
      a.Jmp(BPF_JSET, kX32SyscallBit, x32, -1);
      a.Jmp(BPF_JGT, (uint32_t)m.amd64, enosys, filter);
      a.Bind(x32);
      a.Jmp(BPF_JGT, (uint32_t)m.x32, enosys, filter);
    } else if (m.audit == AUDIT_ARCH_X86_64 && m.x32 >= 0) {
      a.Jmp(BPF_JSET, kX32SyscallBit, -1, filter);  // only x32 calls are checked
      a.Jmp(BPF_JGT, (uint32_t)m.x32, enosys, filter);
    } else if (m.audit == AUDIT_ARCH_X86_64) {
      a.Jmp(BPF_JSET, kX32SyscallBit, filter, -1);  // x32 calls are left to the filter
      a.Jmp(BPF_JGT, (uint32_t)m.amd64, enosys, filter);
    } else {
      a.Jmp(BPF_JGT, (uint32_t)m.amd64, enosys, filter);
    }
  }
  a.Bind(enosys);
  a.Ret(SECCOMP_RET_ERRNO | ENOSYS);
  a.Bind(filter);
  if (!a.Resolve(err)) return {};
  return a.code;
}

struct Rule {
  std::string name;
  Action action;
  std::vector<scmp_arg_cmp> args;
  bool splitArgs;  // two conditions on one argument: one rule each (OR), as runc does
};

// What the profile asks for, read from the JavaScript object on the main thread. Building the
// filter from it (Build) touches no JavaScript value, so it can run on a worker thread.
struct Job {
  Action def;
  uint32_t base;
  std::vector<uint32_t> arches;
  std::vector<Rule> rules;
  bool stub;  // runc's -ENOSYS stub goes in front
};

Job Parse(Napi::Env env, Napi::Object p, const std::string &archArg) {
  Job job;
  job.def = ParseAction(env, Str(env, p.Get("defaultAction"), "defaultAction"), p.Get("defaultErrnoRet"), "default");
  // The runtime writes the listener fd to its parent after loading the filter; a notifying
  // default would catch that write (runc's wording).
  if (job.def.kind == Kind::Notify) Fail(env, "SCMP_ACT_NOTIFY cannot be used as default action");

  // The filter's base architecture: the machine's own, or `arch` to build for another one.
  job.base = seccomp_arch_native();
  if (!archArg.empty() && archArg != "native") job.base = ArchToken(env, archArg, "arch");

  job.arches = {job.base};
  Napi::Value av = p.Get("architectures");
  if (!av.IsUndefined() && !av.IsNull()) {
    if (!av.IsArray()) Fail(env, "architectures: must be an array");
    Napi::Array arr = av.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); i++) {
      std::string f = "architectures[" + std::to_string(i) + "]";
      uint32_t t = ArchToken(env, Str(env, arr.Get(i), f), f);
      if (std::find(job.arches.begin(), job.arches.end(), t) == job.arches.end()) job.arches.push_back(t);
    }
  }

  Napi::Value sv = p.Get("syscalls");
  if (!sv.IsUndefined() && !sv.IsNull()) {
    if (!sv.IsArray()) Fail(env, "syscalls: must be an array");
    Napi::Array arr = sv.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); i++) {
      std::string f = "syscalls[" + std::to_string(i) + "].";
      if (!arr.Get(i).IsObject()) Fail(env, "syscalls[" + std::to_string(i) + "]: must be an object");
      Napi::Object s = arr.Get(i).As<Napi::Object>();
      Action act = ParseAction(env, Str(env, s.Get("action"), f + "action"), s.Get("errnoRet"), f);
      std::vector<scmp_arg_cmp> args;
      bool split = false;
      Napi::Value argv = s.Get("args");
      if (!argv.IsUndefined() && !argv.IsNull()) {
        if (!argv.IsArray()) Fail(env, f + "args: must be an array");
        Napi::Array aa = argv.As<Napi::Array>();
        int seen[6] = {0};
        for (uint32_t j = 0; j < aa.Length(); j++) {
          std::string af = f + "args[" + std::to_string(j) + "]";
          if (!aa.Get(j).IsObject()) Fail(env, af + ": must be an object");
          Napi::Object a = aa.Get(j).As<Napi::Object>();
          Napi::Value iv = a.Get("index");
          if (!iv.IsNumber()) Fail(env, af + ".index: must be a number");
          double idx = iv.As<Napi::Number>().DoubleValue();
          if (idx < 0 || idx > 5 || idx != (double)(int)idx) Fail(env, af + ".index: must be an integer from 0 to 5");
          if (++seen[(int)idx] > 1) split = true;
          scmp_arg_cmp c;
          c.arg = (unsigned)idx;
          c.op = ParseOp(env, Str(env, a.Get("op"), af + ".op"), af + ".op");
          // MASKED_EQ: datum_a is the mask (spec `value`), datum_b the expected (`valueTwo`).
          c.datum_a = U64(env, a.Get("value"), af + ".value");
          c.datum_b = U64(env, a.Get("valueTwo"), af + ".valueTwo");
          args.push_back(c);
        }
      }
      Napi::Value nv = s.Get("names");
      if (!nv.IsArray()) Fail(env, f + "names: must be an array");
      Napi::Array names = nv.As<Napi::Array>();
      for (uint32_t j = 0; j < names.Length(); j++) {
        std::string nf = f + "names[" + std::to_string(j) + "]";
        std::string name = Str(env, names.Get(j), nf);
        if (name.empty()) Fail(env, nf + ": empty syscall name");
        // runc's wording; the write that hands over the listener fd must not wait for itself.
        if (act.kind == Kind::Notify && name == "write") Fail(env, "SCMP_ACT_NOTIFY cannot be used for the write syscall");
        job.rules.push_back({name, act, args, split});
      }
    }
  }
  // runc's conditions for the stub: not for permissive defaults (a tracer/logger handles new
  // syscalls itself), and pointless when the default already answers ENOSYS.
  Napi::Value der = p.Get("defaultErrnoRet");
  bool defaultErrnoIsEnosys = der.IsNumber() && der.As<Napi::Number>().Int32Value() == ENOSYS;
  bool permissive = job.def.kind == Kind::Allow || job.def.kind == Kind::Log || job.def.kind == Kind::Trace;
  job.stub = !permissive && !defaultErrnoIsEnosys;
  return job;
}

// A failure of Build: errnum 0 is a plain message (code EINVAL), else "<msg>: <strerror>".
struct BuildError {
  std::string msg;
  int errnum;
};

[[noreturn]] void ThrowBuildError(Napi::Env env, const BuildError &e) {
  if (e.errnum) ThrowErrno(env, e.msg, e.errnum);
  Fail(env, e.msg);
}

// libseccomp's part, on no JavaScript value: the rules, the export, the stub. Syscalls this
// libseccomp does not know are skipped and listed in `unknown` (runc ignores them).
bool Build(const Job &job, std::vector<sock_filter> &prog, std::vector<std::string> &unknown, BuildError &err) {
  Ctx c;
  c.ctx = seccomp_init(job.def.value);
  if (!c.ctx) return err = {"seccomp_init: invalid default action", 0}, false;
  // Report the kernel/library's own error codes instead of a generic -ECANCELED.
  seccomp_attr_set(c.ctx, SCMP_FLTATR_API_SYSRAWRC, 1);
  // tsrun-init sets no_new_privs itself (or not); the BPF must not imply it.
  int rc = seccomp_attr_set(c.ctx, SCMP_FLTATR_CTL_NNP, 0);
  if (rc < 0) return err = {"seccomp_attr_set(CTL_NNP)", -rc}, false;
  // Binary tree of syscall numbers: O(log n) per syscall instead of a linear chain. Best effort:
  // an older library without it still produces a correct (linear) filter.
  seccomp_attr_set(c.ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
  if (job.base != seccomp_arch_native()) {
    rc = seccomp_arch_add(c.ctx, job.base);
    if (rc < 0 && rc != -EEXIST) return err = {"seccomp_arch_add(arch)", -rc}, false;
    rc = seccomp_arch_remove(c.ctx, SCMP_ARCH_NATIVE);
    if (rc < 0) return err = {"seccomp_arch_remove(native)", -rc}, false;
  }
  for (size_t i = 1; i < job.arches.size(); i++) {
    rc = seccomp_arch_add(c.ctx, job.arches[i]);
    if (rc < 0 && rc != -EEXIST) return err = {"seccomp_arch_add", -rc}, false;
  }

  for (const Rule &r : job.rules) {
    // libseccomp refuses a rule that repeats the default; runc drops it silently, so do we.
    if (r.action.value == job.def.value) continue;
    int nr = seccomp_syscall_resolve_name_arch(job.base, r.name.c_str());
    if (nr == __NR_SCMP_ERROR) {
      // Profiles list syscalls of newer kernels/libraries; runc ignores them (debug log).
      unknown.push_back(r.name);
      continue;
    }
    if (r.splitArgs) {
      for (const auto &a : r.args) {
        rc = seccomp_rule_add_array(c.ctx, r.action.value, nr, 1, &a);
        if (rc < 0) return err = {"seccomp: adding rule for syscall " + r.name, -rc}, false;
      }
    } else {
      rc = seccomp_rule_add_array(c.ctx, r.action.value, nr, (unsigned)r.args.size(), r.args.empty() ? nullptr : r.args.data());
      if (rc < 0) return err = {"seccomp: adding rule for syscall " + r.name, -rc}, false;
    }
  }

  Fd mem;
  mem.fd = memfd_create("tsrun-seccomp-bpf", MFD_CLOEXEC);
  if (mem.fd < 0) return err = {"memfd_create", errno}, false;
  rc = seccomp_export_bpf(c.ctx, mem.fd);
  if (rc < 0) return err = {"seccomp_export_bpf", -rc}, false;
  off_t size = lseek(mem.fd, 0, SEEK_END);
  if (size < 0 || size % sizeof(sock_filter) != 0) return err = {"seccomp_export_bpf: unexpected program size", 0}, false;
  prog.assign(size / sizeof(sock_filter), sock_filter{});
  if (pread(mem.fd, prog.data(), size, 0) != size) return err = {"read exported BPF", errno ? errno : EIO}, false;

  if (job.stub) {
    std::vector<ArchMax> maxes;
    for (uint32_t tok : job.arches) {
      long mx = -1;
      for (const Rule &r : job.rules) {
        int nr = seccomp_syscall_resolve_name_arch(tok, r.name.c_str());
        // Negative numbers are libseccomp's pseudo-syscalls (not present on this arch).
        if (nr >= 0 && nr > mx) mx = nr;
      }
      if (mx < 0) continue;  // nothing named for this arch: no stub section (runc warns)
      uint32_t audit = tok == SCMP_ARCH_X32 ? AUDIT_ARCH_X86_64 : tok;
      auto it = std::find_if(maxes.begin(), maxes.end(), [&](const ArchMax &m) { return m.audit == audit; });
      if (it == maxes.end()) {
        maxes.push_back({audit});
        it = maxes.end() - 1;
      }
      it->s390 = tok == SCMP_ARCH_S390 || tok == SCMP_ARCH_S390X;
      if (tok == SCMP_ARCH_X32)
        it->x32 = mx;
      else
        it->amd64 = mx;
    }
    if (!maxes.empty()) {
      std::string msg;
      std::vector<sock_filter> stub = EnosysStub(maxes, msg);
      if (stub.empty()) return err = {msg, 0}, false;
      prog.insert(prog.begin(), stub.begin(), stub.end());
    }
  }
  if (prog.size() > BPF_MAXINSNS)
    return err = {"seccomp: the filter has " + std::to_string(prog.size()) + " instructions, more than the kernel's limit of " + std::to_string(BPF_MAXINSNS), 0}, false;
  return true;
}

Napi::Buffer<char> ProgramBuffer(Napi::Env env, const std::vector<sock_filter> &prog) {
  return Napi::Buffer<char>::Copy(env, (const char *)prog.data(), prog.size() * sizeof(sock_filter));
}

// seccompCompile(profile, arch, onUnknown?) → Buffer, on the calling thread (tests, tools).
Napi::Value SeccompCompile(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "profile must be an object");
  std::string archArg = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  Napi::Function onUnknown = info.Length() > 2 && info[2].IsFunction() ? info[2].As<Napi::Function>() : Napi::Function();
  Job job = Parse(env, info[0].As<Napi::Object>(), archArg);
  std::vector<sock_filter> prog;
  std::vector<std::string> unknown;
  BuildError err;
  if (!Build(job, prog, unknown, err)) ThrowBuildError(env, err);
  if (!onUnknown.IsEmpty())
    for (auto &name : unknown) onUnknown.Call({Napi::String::New(env, name)});
  return ProgramBuffer(env, prog);
}

// The same on libuv's thread pool: a profile of hundreds of rules (docker's default) compiles in
// milliseconds that the event loop of a daemon with many containers should not wait through.
class CompileWorker : public Napi::AsyncWorker {
 public:
  CompileWorker(Napi::Env env, Job job) : Napi::AsyncWorker(env, "tsrun.seccompCompile"), job_(std::move(job)), deferred_(env) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override { ok_ = Build(job_, prog_, unknown_, err_); }
  void OnOK() override {
    Napi::Env env = Env();
    if (!ok_) {
      try {
        ThrowBuildError(env, err_);
      } catch (const Napi::Error &e) {
        deferred_.Reject(e.Value());
      }
      return;
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("bpf", ProgramBuffer(env, prog_));
    Napi::Array names = Napi::Array::New(env, unknown_.size());
    for (size_t i = 0; i < unknown_.size(); i++) names.Set((uint32_t)i, Napi::String::New(env, unknown_[i]));
    out.Set("unknown", names);
    deferred_.Resolve(out);
  }
  void OnError(const Napi::Error &e) override { deferred_.Reject(e.Value()); }

 private:
  Job job_;
  Napi::Promise::Deferred deferred_;
  bool ok_ = false;
  std::vector<sock_filter> prog_;
  std::vector<std::string> unknown_;
  BuildError err_;
};

// seccompCompileAsync(profile, arch) → Promise<{bpf, unknown}>; a bad profile throws at once.
Napi::Value SeccompCompileAsync(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "profile must be an object");
  std::string archArg = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  auto *w = new CompileWorker(env, Parse(env, info[0].As<Napi::Object>(), archArg));
  Napi::Promise promise = w->Promise();
  w->Queue();
  return promise;
}

// Exposed for tests and for the TypeScript validation: the syscall number of `name` on `arch`
// ("" = native), or -1 when libseccomp does not know it.
Napi::Value SeccompSyscallNumber(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 0, "name");
  std::string arch = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  uint32_t tok = arch.empty() || arch == "native" ? seccomp_arch_native() : ArchToken(env, arch, "arch");
  int nr = seccomp_syscall_resolve_name_arch(tok, name.c_str());
  return Napi::Number::New(env, nr == __NR_SCMP_ERROR ? -1 : nr);
}

Napi::Value SeccompNativeArch(const Napi::CallbackInfo &info) {
  uint32_t tok = seccomp_arch_native();
  for (const auto &a : kArches)
    if (a.token == tok) return Napi::String::New(info.Env(), a.name);
  return Napi::String::New(info.Env(), "");
}

}  // namespace

void InitSeccomp(Napi::Env env, Napi::Object exports) {
  Export(env, exports, "seccompCompile", SeccompCompile);
  Export(env, exports, "seccompCompileAsync", SeccompCompileAsync);
  Export(env, exports, "seccompSyscallNumber", SeccompSyscallNumber);
  Export(env, exports, "seccompNativeArch", SeccompNativeArch);
}

}  // namespace tsrun
