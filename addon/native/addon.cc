// Module entry and the small system-call wrappers Node lacks (flock, mkfifo, fd passing, pidfd,
// unix socket peer credentials, the thread's scheduler times). Everything is synchronous: each
// call is one or two syscalls.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vector>

#include "../common/scm_rights.h"
#include "common.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

namespace tsrun {

// ThrowErrno, ThrowCode and the Arg* helpers: common.cc (shared with the systemd addon).

namespace {

Napi::Value Flock(const Napi::CallbackInfo &info) {
  int fd = ArgInt(info, 0, "fd");
  int op = (ArgBool(info, 1, "exclusive") ? LOCK_EX : LOCK_SH) | (ArgBool(info, 2, "nonblocking") ? LOCK_NB : 0);
  int r;
  do r = flock(fd, op);
  while (r < 0 && errno == EINTR);
  if (r < 0) ThrowErrno(info.Env(), "flock", errno);
  return info.Env().Undefined();
}

Napi::Value Funlock(const Napi::CallbackInfo &info) {
  int fd = ArgInt(info, 0, "fd");
  if (flock(fd, LOCK_UN) < 0) ThrowErrno(info.Env(), "flock", errno);
  return info.Env().Undefined();
}

Napi::Value Mkfifo(const Napi::CallbackInfo &info) {
  std::string path = ArgString(info, 0, "path");
  int mode = ArgInt(info, 1, "mode");
  if (mkfifo(path.c_str(), (mode_t)mode) < 0) ThrowErrno(info.Env(), "mkfifo " + path, errno);
  return info.Env().Undefined();
}

Napi::Value Socketpair(const Napi::CallbackInfo &info) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) ThrowErrno(info.Env(), "socketpair", errno);
  Napi::Array a = Napi::Array::New(info.Env(), 2);
  a.Set(0u, Napi::Number::New(info.Env(), sv[0]));
  a.Set(1u, Napi::Number::New(info.Env(), sv[1]));
  return a;
}

Napi::Value SendFd(const Napi::CallbackInfo &info) {
  int sock = ArgInt(info, 0, "sockFd");
  int fd = ArgInt(info, 1, "fd");
  std::string data = ArgString(info, 2, "data");
  // A stream socket cannot carry ancillary data without at least one byte of payload.
  if (data.empty()) data.assign(1, '\0');
  ssize_t n = scm::send_with_fds<1>(sock, data.data(), data.size(), &fd, 1);
  if (n < 0) ThrowErrno(info.Env(), "sendmsg", errno);
  // The fd went with the first byte; the rest of a short write is plain data.
  size_t off = (size_t)n;
  while (off < data.size()) {
    ssize_t m = send(sock, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (m < 0 && errno == EINTR) continue;
    if (m < 0) ThrowErrno(info.Env(), "send", errno);
    off += (size_t)m;
  }
  return info.Env().Undefined();
}

Napi::Value RecvFd(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int sock = ArgInt(info, 0, "sockFd");
  // Large enough for a ContainerProcessState with annotations; one recvmsg, like runc's RecvFd.
  std::vector<char> data(1 << 16);
  std::vector<int> fds;
  bool truncated;
  // Room for 8: a sender of a few more is told "more than one fd" rather than "truncated".
  ssize_t n = scm::recv_with_fds<8>(sock, data.data(), data.size(), &truncated, [&](int fd) { fds.push_back(fd); });
  if (n < 0) ThrowErrno(env, "recvmsg", errno);
  // Never leak what we received when refusing it.
  auto closeAll = [&] {
    for (int fd : fds) close(fd);
  };
  if (truncated) {
    closeAll();
    ThrowCode(env, "recvmsg: control data truncated (more than one fd sent)", "EMSGSIZE");
  }
  if (fds.size() != 1) {
    closeAll();
    if (n == 0) ThrowCode(env, "recvmsg: connection closed before a file descriptor arrived", "ENOMSG");
    ThrowCode(env, "recvmsg: expected exactly one file descriptor, got " + std::to_string(fds.size()), "ENOMSG");
  }
  std::string s(data.data(), (size_t)n);
  // sendFd pads an empty payload with one NUL byte (see SendFd); runc's console name has none.
  while (!s.empty() && s.back() == '\0') s.pop_back();
  Napi::Object r = Napi::Object::New(env);
  r.Set("fd", Napi::Number::New(env, fds[0]));
  r.Set("data", Napi::String::New(env, s));
  return r;
}

Napi::Value PidfdOpen(const Napi::CallbackInfo &info) {
  int pid = ArgInt(info, 0, "pid");
  if (pid <= 0) throw Napi::TypeError::New(info.Env(), "pid must be positive");
  long fd = syscall(SYS_pidfd_open, pid, 0);  // pidfds are always close-on-exec
  if (fd < 0) ThrowErrno(info.Env(), "pidfd_open", errno);
  return Napi::Number::New(info.Env(), (double)fd);
}

Napi::Value PidfdSendSignal(const Napi::CallbackInfo &info) {
  int fd = ArgInt(info, 0, "pidfd");
  int sig = ArgInt(info, 1, "sig");
  if (syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0) < 0) ThrowErrno(info.Env(), "pidfd_send_signal", errno);
  return info.Env().Undefined();
}

Napi::Value PeerCredentials(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, "fd");
  // The credentials the peer had when it called connect(2) (or socketpair(2)): what ttrpc's
  // UnixCredentialsFunc handshake checks.
  struct ucred cred = {};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) ThrowErrno(env, "getsockopt(SO_PEERCRED)", errno);
  if (len != sizeof cred) ThrowCode(env, "getsockopt(SO_PEERCRED): short reply", "EPROTO");
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", Napi::Number::New(env, cred.pid));
  o.Set("uid", Napi::Number::New(env, cred.uid));
  o.Set("gid", Napi::Number::New(env, cred.gid));
  return o;
}

// The calling thread's scheduler accounts, in ms: `cpu`, the time it ran (CLOCK_THREAD_CPUTIME_ID,
// which brings the running slice up to date; schedstat's own first field lags by up to a tick),
// and `waited`, the time it was runnable but had no CPU (/proc/thread-self/schedstat's run_delay,
// settled each time the thread gets a CPU, so current while it runs). A callback that keeps the
// event loop for longer than both together was asleep in a system call. (getrusage's
// RUSAGE_THREAD, as process.threadCpuUsage reads it, moves in 4 ms ticks here.)
Napi::Value ThreadSchedTimes(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  struct timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0) ThrowErrno(env, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)", errno);
  int fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) ThrowErrno(env, "open /proc/thread-self/schedstat", errno);
  char buf[128];
  ssize_t n;
  do n = read(fd, buf, sizeof buf - 1);
  while (n < 0 && errno == EINTR);
  int err = errno;
  close(fd);
  if (n < 0) ThrowErrno(env, "read /proc/thread-self/schedstat", err);
  buf[n] = 0;
  unsigned long long run_ns = 0, wait_ns = 0;
  if (sscanf(buf, "%llu %llu", &run_ns, &wait_ns) != 2) ThrowCode(env, "/proc/thread-self/schedstat: unexpected content", "EPROTO");
  Napi::Object o = Napi::Object::New(env);
  o.Set("cpu", Napi::Number::New(env, (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6));
  o.Set("waited", Napi::Number::New(env, (double)wait_ns / 1e6));
  return o;
}

}  // namespace

void InitSys(Napi::Env env, Napi::Object exports) {
  Export(env, exports, "flock", Flock);
  Export(env, exports, "funlock", Funlock);
  Export(env, exports, "mkfifo", Mkfifo);
  Export(env, exports, "socketpair", Socketpair);
  Export(env, exports, "sendFd", SendFd);
  Export(env, exports, "recvFd", RecvFd);
  Export(env, exports, "pidfdOpen", PidfdOpen);
  Export(env, exports, "pidfdSendSignal", PidfdSendSignal);
  Export(env, exports, "peerCredentials", PeerCredentials);
  Export(env, exports, "threadSchedTimes", ThreadSchedTimes);
}

}  // namespace tsrun

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  tsrun::InitSys(env, exports);
  tsrun::InitSeccomp(env, exports);
  tsrun::InitDeviceFilter(env, exports);
  tsrun::InitShimIo(env, exports);
  tsrun::InitWait(env, exports);
  tsrun::InitSpawn(env, exports);
  tsrun::InitFiles(env, exports);
  tsrun::InitStats(env, exports);
  return exports;
}

NODE_API_MODULE(tsrun_native, Init)
