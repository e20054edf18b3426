// spawnProcess(file, args, fds) and pidfdReap(pidfd): our own children without libuv's uv_spawn.
// The spawn itself runs on libuv's thread pool (SpawnWorker).
//
// uv_spawn forks: the kernel copies the page tables of the whole Node process and the parent
// waits until the child has exec'd, so one spawn blocks the event loop for a time that grows
// with the process's memory (1.7 ms at 45 MiB, over 50 ms at 350 MiB). posix_spawn (glibc:
// clone with CLONE_VM | CLONE_VFORK) shares the memory until the exec instead: well under a
// millisecond whatever the size, which is what the shim, spawning an init for every create and
// exec, needs.
//
// The child gets what libuv's gives it: fds[i] as fd i (nothing else: every other fd of ours is
// close-on-exec), blocking stdio, default signal dispositions and an empty signal mask, its own
// session (Node's `detached: true`) and an empty environment. Its exit is read from a pidfd
// (waitReadable, then pidfdReap): libuv never reaps a child it did not spawn.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

#include "common.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace tsrun {

namespace {

struct FileActions {
  posix_spawn_file_actions_t fa;
  FileActions() { posix_spawn_file_actions_init(&fa); }
  ~FileActions() { posix_spawn_file_actions_destroy(&fa); }
};

struct SpawnAttr {
  posix_spawnattr_t attr;
  SpawnAttr() { posix_spawnattr_init(&attr); }
  ~SpawnAttr() { posix_spawnattr_destroy(&attr); }
};

// What one spawn needs, checked and copied out of the JS arguments on the main thread.
struct SpawnJob {
  std::vector<std::string> args;
  std::vector<int> fds;
  std::vector<bool> absent;  // a closed stdio fd given as itself: the child has it closed too, as with libuv
  int highest = 2;
};

SpawnJob ParseSpawn(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  SpawnJob job;
  std::string file = ArgString(info, 0, "file");
  if (info.Length() < 3 || !info[1].IsArray() || !info[2].IsArray()) throw Napi::TypeError::New(env, "args and fds must be arrays");
  Napi::Array a = info[1].As<Napi::Array>(), f = info[2].As<Napi::Array>();
  job.args.push_back(file);
  for (uint32_t i = 0; i < a.Length(); i++) job.args.push_back(a.Get(i).As<Napi::String>().Utf8Value());
  for (uint32_t i = 0; i < f.Length(); i++) {
    Napi::Value v = f.Get(i);
    if (!v.IsNumber()) throw Napi::TypeError::New(env, "fds must be numbers");
    int fd = v.As<Napi::Number>().Int32Value();
    if (fd < 0) throw Napi::RangeError::New(env, "fds must not be negative");
    bool closed = fcntl(fd, F_GETFD) < 0;
    if (closed && !(fd == (int)i && i <= 2)) ThrowErrno(env, "spawn: fd " + std::to_string(fd), EBADF);
    job.fds.push_back(fd);
    job.absent.push_back(closed);
    if (fd > job.highest) job.highest = fd;
  }
  if ((int)job.fds.size() - 1 > job.highest) job.highest = (int)job.fds.size() - 1;
  // As libuv's child: the stdio it gets is blocking (the flag belongs to the open file, which the
  // parent shares; libuv clears it in the child, which comes to the same).
  for (size_t i = 0; i < job.fds.size() && i <= 2; i++) {
    if (job.absent[i]) continue;
    int fl = fcntl(job.fds[i], F_GETFL);
    if (fl < 0) ThrowErrno(env, "fcntl", errno);
    if ((fl & O_NONBLOCK) && fcntl(job.fds[i], F_SETFL, fl & ~O_NONBLOCK) < 0) ThrowErrno(env, "fcntl", errno);
  }
  return job;
}

// posix_spawn itself: no JS values, so it can run on any thread. Returns 0 or the errno.
int RunSpawn(const SpawnJob &job, pid_t *pid) {
  FileActions fa;
  // Two steps, so that no source is overwritten before it is moved: every source to a free number
  // above all of them, then each of those to its place (dup2 leaves the new fd inheritable).
  const int base = job.highest + 1;
  for (size_t i = 0; i < job.fds.size(); i++)
    if (!job.absent[i]) posix_spawn_file_actions_adddup2(&fa.fa, job.fds[i], base + (int)i);
  for (size_t i = 0; i < job.fds.size(); i++) {
    if (job.absent[i]) continue;
    posix_spawn_file_actions_adddup2(&fa.fa, base + (int)i, (int)i);
    posix_spawn_file_actions_addclose(&fa.fa, base + (int)i);
  }
  SpawnAttr sa;
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  // Explicit, not inherited: the mask of whichever thread calls posix_spawn does not matter.
  posix_spawnattr_setsigmask(&sa.attr, &none);
  posix_spawnattr_setsigdefault(&sa.attr, &all);
  posix_spawnattr_setflags(&sa.attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);

  std::vector<char *> argv;
  for (auto &s : job.args) argv.push_back(const_cast<char *>(s.c_str()));
  argv.push_back(nullptr);
  char *envp[] = {nullptr};
  return posix_spawn(pid, job.args[0].c_str(), &fa.fa, &sa.attr, argv.data(), envp);
}

// CLONE_VFORK suspends the calling thread until the child has exec'd: with many containers being
// made at once on a busy host that took up to 9 ms (median 2.8 ms) of the event loop each time
// (the child must be scheduled, and its clone waits for the kernel's cgroup lock when another
// process is being moved between cgroups). On libuv's thread pool only a pool thread waits.
class SpawnWorker : public Napi::AsyncWorker {
 public:
  SpawnWorker(Napi::Env env, SpawnJob job) : Napi::AsyncWorker(env, "tsrun.spawnProcess"), job_(std::move(job)), deferred_(env) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override { err_ = RunSpawn(job_, &pid_); }
  void OnOK() override {
    Napi::Env env = Env();
    if (err_ != 0) {
      try {
        ThrowErrno(env, "posix_spawn " + job_.args[0], err_);
      } catch (const Napi::Error &e) {
        deferred_.Reject(e.Value());
      }
      return;
    }
    deferred_.Resolve(Napi::Number::New(env, pid_));
  }
  void OnError(const Napi::Error &e) override { deferred_.Reject(e.Value()); }

 private:
  SpawnJob job_;
  Napi::Promise::Deferred deferred_;
  pid_t pid_ = -1;
  int err_ = 0;
};

// spawnProcess(file, args, fds) → Promise<pid>. Bad arguments and fds throw at once; the fds
// must stay open until the promise settles.
Napi::Value SpawnProcess(const Napi::CallbackInfo &info) {
  auto *w = new SpawnWorker(info.Env(), ParseSpawn(info));
  Napi::Promise promise = w->Promise();
  w->Queue();
  return promise;
}

// waitid(P_PIDFD, WEXITED | WNOHANG): {code, signal} of an exited child (reaped now), or null
// while it runs.
Napi::Value PidfdReap(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, "pidfd");
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int r;
  do r = waitid((idtype_t)P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r < 0) ThrowErrno(env, "waitid", errno);
  if (si.si_pid == 0) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  bool exited = si.si_code == CLD_EXITED;
  o.Set("code", exited ? Napi::Number::New(env, si.si_status) : env.Null());
  o.Set("signal", exited ? env.Null() : Napi::Number::New(env, si.si_status));
  return o;
}

}  // namespace

void InitSpawn(Napi::Env env, Napi::Object exports) {
  Export(env, exports, "spawnProcess", SpawnProcess);
  Export(env, exports, "pidfdReap", PidfdReap);
}

}  // namespace tsrun
