// Event-driven waits, so that nothing on the create/start/delete path polls with sleeps:
//
//   waitReadable(fd, timeoutMs, cb)  cb(true) once fd is readable or hung up (a pidfd: its
//                                    process exited; a unix socket: a message or the peer gone),
//                                    cb(false) after timeoutMs (< 0: none). Nothing is read; the
//                                    caller keeps fd open until cb ran. Returns an id for
//                                    unrefWait(id): the wait then no longer keeps the event loop
//                                    alive (a process that is only reaped when it ends, nobody
//                                    waiting for it). cancelWait(id): the wait ends without
//                                    its callback (the reactor lets go of its dup of fd, so that
//                                    closing fd closes the file).
//   flockWait(fd, exclusive, timeoutMs, cb)
//                                    a blocking flock(2) on a thread of its own (never the
//                                    engine's worker pool: a waiter there could starve the lock
//                                    holder's own fs and seccomp work, which needs the pool to
//                                    finish and let go), on a dup of fd so that the lock is the
//                                    caller's open file's; cb(null) with it held, cb(Error)
//                                    otherwise, code ETIMEDOUT after timeoutMs (< 0: none). After
//                                    a timeout the thread may still get the lock: it then lets go
//                                    of it as soon as the caller has closed fd (the lock belongs
//                                    to the open file, which its dup alone keeps alive), and
//                                    nothing of it keeps the event loop alive any more.
//
// Only N-API, no libuv: one reactor thread per process (epoll over a dup of each waited fd, plus
// the deadlines) hands what happened to the JavaScript thread through one thread-safe function.
// So the addon runs on any engine that implements N-API (Bun has no uv_poll), and a wait costs
// an epoll registration, not a thread. The thread-safe function is referenced (keeps the loop
// alive) exactly while some wait that has not been unref'd is pending.
//
// The callbacks are called through MakeCallback, so promises they settle run at once (a
// promise resolved from a bare callback would wait for whatever JavaScript ran next).
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>

#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common.h"

namespace tsrun {

namespace {

Napi::Error ErrnoError(Napi::Env env, const char *op, int err) {
  Napi::Error e = Napi::Error::New(env, std::string(op) + ": " + strerror(err));
  const char *name = err == ETIMEDOUT ? "ETIMEDOUT" : err == EWOULDBLOCK ? "EAGAIN" : err == EBADF ? "EBADF" : err == EINVAL ? "EINVAL" : err == ENOLCK ? "ENOLCK" : "EIO";
  e.Set("code", Napi::String::New(env, name));
  e.Set("errno", Napi::Number::New(env, err));
  return e;
}

int64_t NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// What the reactor (or a lock thread) reports to the JavaScript thread.
struct Event {
  uint32_t id;
  enum Kind { kReadable, kTimeout, kLocked } kind;
  int err;  // kLocked: flock's errno, 0 when held
};

// One pending wait, owned by the JavaScript thread (only it reads or writes these fields).
struct Pending {
  Napi::FunctionReference cb;
  Napi::AsyncContext context;
  bool lock = false;      // a flockWait: the lock thread still reports its end
  bool answered = false;  // cb ran
  bool reffed = true;     // counts in Waits::reffed_
  int lock_fd = -1;       // flockWait: our dup, closed once the lock thread is done
  Pending(Napi::Env env, Napi::Function f, const char *name) : cb(Napi::Persistent(f)), context(env, name) {}
};

// The reactor's own view of a wait, under Waits::mu_.
struct Watch {
  int fd = -1;            // our dup of the caller's fd, registered with epoll; -1: a deadline only
  int64_t deadline = -1;  // monotonic ms, -1: none
};

class Waits {
 public:
  static Waits &Of(Napi::Env env) {
    // One JavaScript thread uses the addon (no workers). Never freed: the reactor thread outlives
    // everything.
    if (!instance_) instance_ = new Waits(env);
    return *instance_;
  }

  Napi::Env env() const { return env_; }

  uint32_t Add(Pending *p) {
    uint32_t id = next_++;
    if (next_ == 0) next_ = 1;
    pending_[id] = p;
    Ref();
    return id;
  }

  // Starts watching: fd (a dup is registered; -1 for a deadline only) and/or a deadline.
  // Returns 0 or the errno of epoll_ctl (EPERM for a regular file).
  int Watch(uint32_t id, int fd, int timeout_ms) {
    struct Watch w;
    if (timeout_ms >= 0) w.deadline = NowMs() + timeout_ms;
    {
      // Registered under the lock: an fd that is readable already wakes the reactor at once,
      // and it must find the watch.
      std::lock_guard<std::mutex> g(mu_);
      if (fd >= 0) {
        w.fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (w.fd < 0) return errno;
        struct epoll_event ev = {};
        ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
        ev.data.u32 = id;
        if (epoll_ctl(epfd_, EPOLL_CTL_ADD, w.fd, &ev) < 0) {
          int e = errno;
          close(w.fd);
          return e;
        }
      }
      watches_[id] = w;
    }
    Wake();
    return 0;
  }

  void Unref(uint32_t id) {
    auto it = pending_.find(id);
    if (it == pending_.end() || !it->second->reffed) return;
    it->second->reffed = false;
    Unref();
  }

  bool IsReadableWait(uint32_t id) const {
    auto it = pending_.find(id);
    return it != pending_.end() && !it->second->lock && !it->second->answered;
  }

  // A wait that never started (its fd refused): gone without a callback.
  void Forget(uint32_t id) {
    Unref(id);
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    delete it->second;
    pending_.erase(it);
  }

  // Called from any thread: hands an event to the JavaScript thread.
  void Post(Event e) {
    // One call per event: the engine runs each as a callback of its own, so that a burst of
    // events is not one long stretch of JavaScript.
    // Under calls_mu_, against Close: once the engine has begun to go away, its thread-safe
    // function may be freed, and the event would have nobody to reach anyway.
    std::lock_guard<std::mutex> g(calls_mu_);
    if (closing_) return;
    auto *copy = new Event(e);
    if (tsfn_.NonBlockingCall(copy) != napi_ok) delete copy;
  }

  // From the engine's cleanup (or exit()): no call into it from here on.
  void Close() {
    std::lock_guard<std::mutex> g(calls_mu_);
    closing_ = true;
  }

  // Takes the wait out of the reactor (its dup closed); false if the reactor already did.
  bool Unwatch(uint32_t id) {
    std::lock_guard<std::mutex> g(mu_);
    auto it = watches_.find(id);
    if (it == watches_.end()) return false;
    Drop(it->second);
    watches_.erase(it);
    return true;
  }

 private:
  explicit Waits(Napi::Env env) : env_(env) {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    wakefd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (epfd_ < 0 || wakefd_ < 0) ThrowErrno(env, "waits: epoll", errno);
    struct epoll_event ev = {};
    ev.events = EPOLLIN;
    ev.data.u32 = 0;  // id 0 is never a wait's
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev) < 0) ThrowErrno(env, "waits: epoll_ctl", errno);
    tsfn_ = Tsfn::New(env, Napi::Function(), "tsrun.waits", 0, 1, this);
    tsfn_.Unref(env);
    // Registered after the thread-safe function: cleanup hooks run last-in first-out, so this
    // runs before the engine frees it. exit() (process.exit) may skip the hooks: atexit too.
    napi_add_env_cleanup_hook(env, [](void *self) { static_cast<Waits *>(self)->Close(); }, this);
    std::atexit([] { if (instance_) instance_->Close(); });
    // No signal is ever handled on the reactor: it inherits a mask with all blocked.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    std::thread([this] { Run(); }).detach();
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }

  void Ref() {
    if (reffed_++ == 0) tsfn_.Ref(env_);
  }
  void Unref() {
    if (--reffed_ == 0) tsfn_.Unref(env_);
  }

  void Wake() {
    uint64_t one = 1;
    ssize_t r = write(wakefd_, &one, sizeof one);
    (void)r;  // a full counter is a wake-up already pending
  }

  // Under mu_.
  void Drop(struct Watch &w) {
    if (w.fd >= 0) {
      // Closing the dup alone would not take it out of the epoll set while the caller's fd
      // keeps the open file alive.
      epoll_ctl(epfd_, EPOLL_CTL_DEL, w.fd, nullptr);
      close(w.fd);
      w.fd = -1;
    }
  }

  void Run() {
    struct epoll_event evs[64];
    for (;;) {
      int timeout = -1;
      std::vector<Event> due;
      {
        std::lock_guard<std::mutex> g(mu_);
        int64_t now = NowMs();
        for (auto it = watches_.begin(); it != watches_.end();) {
          if (it->second.deadline >= 0 && it->second.deadline <= now) {
            due.push_back({it->first, Event::kTimeout, 0});
            Drop(it->second);
            it = watches_.erase(it);
            continue;
          }
          if (it->second.deadline >= 0) {
            int64_t left = it->second.deadline - now;
            if (timeout < 0 || left < timeout) timeout = (int)left;
          }
          ++it;
        }
      }
      for (const Event &e : due) Post(e);
      due.clear();
      int n = epoll_wait(epfd_, evs, 64, timeout);
      if (n < 0) continue;  // EINTR
      {
        std::lock_guard<std::mutex> g(mu_);
        for (int i = 0; i < n; i++) {
          uint32_t id = evs[i].data.u32;
          if (id == 0) {
            uint64_t v;
            ssize_t r = read(wakefd_, &v, sizeof v);
            (void)r;
            continue;
          }
          auto it = watches_.find(id);
          if (it == watches_.end()) continue;  // taken out meanwhile
          Drop(it->second);
          watches_.erase(it);
          due.push_back({id, Event::kReadable, 0});
        }
      }
      for (const Event &e : due) Post(e);
    }
  }

  static void CallJs(Napi::Env env, Napi::Function, Waits *self, Event *e) {
    if (env != nullptr) self->Deliver(env, *e);  // null: the engine is tearing down
    delete e;
  }

  // On the JavaScript thread: the wait's callback, once.
  void Deliver(Napi::Env env, const Event &e) {
    auto it = pending_.find(e.id);
    if (it == pending_.end()) return;
    Pending *p = it->second;
    if (e.kind == Event::kLocked) {
      // The thread is done with our dup. Closing it never drops a lock the caller holds (its
      // fd refers to the same open file); after a timeout the caller closed its fd, so this
      // lets go.
      close(p->lock_fd);
      p->lock = false;
      Unwatch(e.id);
      Answer(env, p, {e.err ? ErrnoError(env, "flock", e.err).Value() : env.Null()});
    } else if (p->lock) {
      // The lock's deadline: the thread cannot be interrupted, and no longer keeps the loop
      // alive.
      Answer(env, p, {ErrnoError(env, "flock", ETIMEDOUT).Value()});
    } else {
      Answer(env, p, {Napi::Boolean::New(env, e.kind == Event::kReadable)});
    }
    if (p->answered && !p->lock) {
      pending_.erase(e.id);
      delete p;
    }
  }

  void Answer(Napi::Env env, Pending *p, std::initializer_list<napi_value> args) {
    if (p->answered) return;
    p->answered = true;
    if (p->reffed) {
      p->reffed = false;
      Unref();
    }
    Napi::HandleScope scope(env);
    Napi::Function f = p->cb.Value();
    p->cb.Reset();
    // An exception thrown by cb is the engine's to report (uncaught), as for any callback; it
    // must not leave this callback as a C++ exception (that aborts the process).
    try {
      f.MakeCallback(env.Global(), args, p->context);
    } catch (const Napi::Error &err) {
      napi_fatal_exception(env, err.Value());
    }
  }

  using Tsfn = Napi::TypedThreadSafeFunction<Waits, Event, CallJs>;
  static inline Waits *instance_ = nullptr;
  std::mutex calls_mu_;
  bool closing_ = false;
  Napi::Env env_;
  Tsfn tsfn_;
  int epfd_ = -1;
  int wakefd_ = -1;
  // The JavaScript thread's.
  std::unordered_map<uint32_t, Pending *> pending_;
  uint32_t next_ = 1;
  int reffed_ = 0;
  // Shared with the reactor and lock threads.
  std::mutex mu_;
  std::unordered_map<uint32_t, struct Watch> watches_;
};

Napi::Value WaitReadable(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, "fd");
  int timeout = ArgInt(info, 1, "timeoutMs");
  if (info.Length() < 3 || !info[2].IsFunction()) throw Napi::TypeError::New(env, "cb must be a function");
  if (fd < 0) ThrowErrno(env, "waitReadable", EBADF);
  Waits &waits = Waits::Of(env);
  auto *p = new Pending(env, info[2].As<Napi::Function>(), "tsrun.waitReadable");
  uint32_t id = waits.Add(p);
  int err = waits.Watch(id, fd, timeout);
  if (err) {
    // epoll refuses the fd (a regular file): no callback.
    waits.Forget(id);
    ThrowErrno(env, "waitReadable", err);
  }
  return Napi::Number::New(env, id);
}

Napi::Value CancelWait(const Napi::CallbackInfo &info) {
  Waits &waits = Waits::Of(info.Env());
  uint32_t id = (uint32_t)ArgInt(info, 0, "id");
  // Only a readable wait the reactor still holds: then its callback can no longer come.
  if (waits.IsReadableWait(id) && waits.Unwatch(id)) waits.Forget(id);
  return info.Env().Undefined();
}

Napi::Value UnrefWait(const Napi::CallbackInfo &info) {
  Waits::Of(info.Env()).Unref((uint32_t)ArgInt(info, 0, "id"));
  return info.Env().Undefined();
}

Napi::Value FlockWait(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, "fd");
  bool exclusive = ArgBool(info, 1, "exclusive");
  int timeout = ArgInt(info, 2, "timeoutMs");
  if (info.Length() < 4 || !info[3].IsFunction()) throw Napi::TypeError::New(env, "cb must be a function");
  Waits &waits = Waits::Of(env);
  int dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (dupfd < 0) ThrowErrno(env, "dup", errno);
  auto *p = new Pending(env, info[3].As<Napi::Function>(), "tsrun.flockWait");
  p->lock = true;
  p->lock_fd = dupfd;
  uint32_t id = waits.Add(p);
  if (timeout >= 0) waits.Watch(id, -1, timeout);
  int op = exclusive ? LOCK_EX : LOCK_SH;
  // No signal is ever handled on the waiting thread: it inherits a mask with all blocked.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  Waits *w = &waits;
  try {
    std::thread([w, id, dupfd, op] {
      int r;
      do r = flock(dupfd, op);
      while (r < 0 && errno == EINTR);
      w->Post({id, Event::kLocked, r < 0 ? errno : 0});
    }).detach();
  } catch (...) {
    // No thread: the callback gets the error (ENOLCK) and the dup is closed there as always.
    waits.Post({id, Event::kLocked, ENOLCK});
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return env.Undefined();
}

}  // namespace

void InitWait(Napi::Env env, Napi::Object exports) {
  Export(env, exports, "waitReadable", WaitReadable);
  Export(env, exports, "unrefWait", UnrefWait);
  Export(env, exports, "cancelWait", CancelWait);
  Export(env, exports, "flockWait", FlockWait);
}

}  // namespace tsrun
