// Event-driven waits, so that nothing on the create/start/delete path polls with sleeps:
//
//   waitReadable(fd, timeoutMs, cb)  libuv's uv_poll_t on Node's own loop: cb(true) once fd is
//                                    readable or hung up (a pidfd: its process exited; a unix
//                                    socket: a message or the peer gone), cb(false) after
//                                    timeoutMs (< 0: none). Nothing is read; the caller keeps
//                                    fd open until cb ran. Returns an id for unrefWait(id): the
//                                    wait then no longer keeps the loop alive (a process that is
//                                    only reaped when it ends, nobody waiting for it).
//   flockWait(fd, exclusive, timeoutMs, cb)
//                                    a blocking flock(2) on a thread of its own (never libuv's
//                                    pool: a waiter there could starve the lock holder's own
//                                    fs and seccomp work, which needs the pool to finish and let
//                                    go), on a dup of fd so that the lock is the caller's open
//                                    file's; cb(null) with it held, cb(Error) otherwise, code
//                                    ETIMEDOUT after timeoutMs (< 0: none). After a timeout the
//                                    thread may still get the lock: it then lets go of it as
//                                    soon as the caller has closed fd (the lock belongs to the
//                                    open file, which its dup alone keeps alive), and nothing of
//                                    it keeps the loop alive any more.
//
// The callbacks are called through MakeCallback, so promises they settle run at once (a
// promise resolved from a bare libuv callback would wait for whatever JavaScript ran next).
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <uv.h>

#include <thread>
#include <unordered_map>

#include "common.h"

namespace tsrun {

namespace {

uv_loop_t *LoopOf(Napi::Env env) {
  uv_loop_t *loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) throw Napi::Error::New(env, "no event loop");
  return loop;
}

Napi::Error ErrnoError(Napi::Env env, const char *op, int err) {
  Napi::Error e = Napi::Error::New(env, std::string(op) + ": " + strerror(err));
  const char *name = err == ETIMEDOUT ? "ETIMEDOUT" : err == EWOULDBLOCK ? "EAGAIN" : err == EBADF ? "EBADF" : err == EINVAL ? "EINVAL" : err == ENOLCK ? "ENOLCK" : "EIO";
  e.Set("code", Napi::String::New(env, name));
  e.Set("errno", Napi::Number::New(env, err));
  return e;
}

// One pending wait: its callback and the handles that must be closed before it is freed.
struct Pending {
  Napi::Env env;
  Napi::FunctionReference cb;
  Napi::AsyncContext context;
  int open_handles = 0;
  Pending(Napi::Env e, Napi::Function f, const char *name) : env(e), cb(Napi::Persistent(f)), context(e, name) {}
  virtual ~Pending() = default;

  void Call(std::initializer_list<napi_value> args) {
    Napi::HandleScope scope(env);
    Napi::Function f = cb.Value();
    cb.Reset();
    // An exception thrown by cb is Node's to report (uncaught), as for any callback; it must not
    // leave this libuv callback as a C++ exception (that aborts the process).
    try {
      f.MakeCallback(env.Global(), args, context);
    } catch (const Napi::Error &e) {
      napi_fatal_exception(env, e.Value());
    }
  }
};

void CloseDone(uv_handle_t *h) {
  auto *p = static_cast<Pending *>(h->data);
  if (--p->open_handles == 0) delete p;
}

struct ReadableWait;
// The pending readable waits by id, for unrefWait (only the loop's thread touches it).
std::unordered_map<uint32_t, ReadableWait *> g_waits;
uint32_t g_next_wait = 1;

struct ReadableWait : Pending {
  uv_poll_t poll;
  uv_timer_t timer;
  uint32_t id = 0;
  bool done = false;
  using Pending::Pending;

  void Finish(bool readable) {
    if (done) return;
    done = true;
    g_waits.erase(id);
    uv_poll_stop(&poll);
    uv_timer_stop(&timer);
    uv_close(reinterpret_cast<uv_handle_t *>(&poll), CloseDone);
    uv_close(reinterpret_cast<uv_handle_t *>(&timer), CloseDone);
    Call({Napi::Boolean::New(env, readable)});
  }
};

Napi::Value WaitReadable(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, "fd");
  int timeout = ArgInt(info, 1, "timeoutMs");
  if (info.Length() < 3 || !info[2].IsFunction()) throw Napi::TypeError::New(env, "cb must be a function");
  uv_loop_t *loop = LoopOf(env);
  auto *w = new ReadableWait(env, info[2].As<Napi::Function>(), "tsrun.waitReadable");
  int r = uv_poll_init(loop, &w->poll, fd);
  if (r < 0) {
    delete w;
    throw Napi::Error::New(env, std::string("waitReadable: ") + uv_strerror(r));
  }
  w->poll.data = w;
  w->open_handles = 1;
  uv_timer_init(loop, &w->timer);
  w->timer.data = w;
  w->open_handles = 2;
  r = uv_poll_start(&w->poll, UV_READABLE | UV_DISCONNECT, [](uv_poll_t *h, int, int) { static_cast<ReadableWait *>(h->data)->Finish(true); });
  if (r < 0) {
    // epoll refuses the fd (a regular file): no callback, the handles go.
    w->done = true;
    uv_close(reinterpret_cast<uv_handle_t *>(&w->poll), CloseDone);
    uv_close(reinterpret_cast<uv_handle_t *>(&w->timer), CloseDone);
    throw Napi::Error::New(env, std::string("waitReadable: ") + uv_strerror(r));
  }
  if (timeout >= 0) uv_timer_start(&w->timer, [](uv_timer_t *h) { static_cast<ReadableWait *>(h->data)->Finish(false); }, (uint64_t)timeout, 0);
  w->id = g_next_wait++;
  if (g_next_wait == 0) g_next_wait = 1;
  g_waits[w->id] = w;
  return Napi::Number::New(env, w->id);
}

Napi::Value UnrefWait(const Napi::CallbackInfo &info) {
  auto it = g_waits.find((uint32_t)ArgInt(info, 0, "id"));
  if (it != g_waits.end()) {
    uv_unref(reinterpret_cast<uv_handle_t *>(&it->second->poll));
    uv_unref(reinterpret_cast<uv_handle_t *>(&it->second->timer));
  }
  return info.Env().Undefined();
}

struct LockWait : Pending {
  uv_async_t async;
  uv_timer_t timer;
  int fd = -1;  // our dup of the caller's fd
  int op = 0;
  int err = 0;  // written by the thread before uv_async_send
  bool answered = false;
  using Pending::Pending;

  void Answer(int e) {
    if (answered) return;
    answered = true;
    Napi::HandleScope scope(env);
    Call({e ? ErrnoError(env, "flock", e).Value() : env.Null()});
  }
};

Napi::Value FlockWait(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, "fd");
  bool exclusive = ArgBool(info, 1, "exclusive");
  int timeout = ArgInt(info, 2, "timeoutMs");
  if (info.Length() < 4 || !info[3].IsFunction()) throw Napi::TypeError::New(env, "cb must be a function");
  uv_loop_t *loop = LoopOf(env);
  int dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (dupfd < 0) ThrowErrno(env, "dup", errno);
  auto *w = new LockWait(env, info[3].As<Napi::Function>(), "tsrun.flockWait");
  w->fd = dupfd;
  w->op = exclusive ? LOCK_EX : LOCK_SH;
  uv_async_init(loop, &w->async, [](uv_async_t *h) {
    auto *w = static_cast<LockWait *>(h->data);
    // The thread is done with w. Closing our dup never drops a lock the caller holds (its fd
    // refers to the same open file); after a timeout the caller closed its fd, so this lets go.
    close(w->fd);
    uv_timer_stop(&w->timer);
    uv_close(reinterpret_cast<uv_handle_t *>(&w->async), CloseDone);
    uv_close(reinterpret_cast<uv_handle_t *>(&w->timer), CloseDone);
    w->Answer(w->err);
  });
  w->async.data = w;
  uv_timer_init(loop, &w->timer);
  w->timer.data = w;
  w->open_handles = 2;
  if (timeout >= 0)
    uv_timer_start(&w->timer, [](uv_timer_t *h) {
      auto *w = static_cast<LockWait *>(h->data);
      // The thread cannot be interrupted; it no longer keeps the loop alive.
      uv_unref(reinterpret_cast<uv_handle_t *>(&w->async));
      w->Answer(ETIMEDOUT);
    }, (uint64_t)timeout, 0);
  // No signal is ever handled on the waiting thread: it inherits a mask with all blocked.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    std::thread([w] {
      int r;
      do r = flock(w->fd, w->op);
      while (r < 0 && errno == EINTR);
      w->err = r < 0 ? errno : 0;
      uv_async_send(&w->async);  // w may be freed from here on
    }).detach();
  } catch (...) {
    // No thread: the callback gets the error (ENOLCK) and the dup is closed there as always.
    w->err = ENOLCK;
    uv_async_send(&w->async);
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return env.Undefined();
}

}  // namespace

void InitWait(Napi::Env env, Napi::Object exports) {
  Export(env, exports, "waitReadable", WaitReadable);
  Export(env, exports, "unrefWait", UnrefWait);
  Export(env, exports, "flockWait", FlockWait);
}

}  // namespace tsrun
