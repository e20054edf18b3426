// What the containerd shim needs for container stdio and that Node lacks: real pipes (libuv's
// "pipes" are socketpairs, and `echo > /dev/stdout` fails on a socket), dup of a pty master (one
// libuv handle reads it, writes go through the copy), the terminal size (ResizePty), and mount(2)
// for the task's rootfs. Each call is one syscall, synchronous and non-blocking.
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <termios.h>
#include <unistd.h>

#include "common.h"

namespace tsrun {

// pipe2(O_CLOEXEC): [read end, write end]. Both close-on-exec: whoever passes an end on (libuv's
// spawn, stage 0) dups it onto the child's stdio, which clears the flag there only.
static Napi::Value Pipe(const Napi::CallbackInfo &info) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) ThrowErrno(info.Env(), "pipe2", errno);
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, Napi::Number::New(info.Env(), fds[0]));
  out.Set(1u, Napi::Number::New(info.Env(), fds[1]));
  return out;
}

// fcntl(F_DUPFD_CLOEXEC): a second fd of the same open file description.
static Napi::Value Dup(const Napi::CallbackInfo &info) {
  int fd = ArgInt(info, 0, "fd");
  int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (d < 0) ThrowErrno(info.Env(), "dup", errno);
  return Napi::Number::New(info.Env(), d);
}

// ioctl(TIOCSWINSZ): the size the container's terminal reports (SIGWINCH to its foreground group).
static Napi::Value SetWinsize(const Napi::CallbackInfo &info) {
  int fd = ArgInt(info, 0, "fd");
  int cols = ArgInt(info, 1, "cols"), rows = ArgInt(info, 2, "rows");
  if (cols < 0 || cols > 65535 || rows < 0 || rows > 65535) throw Napi::RangeError::New(info.Env(), "terminal size out of range 0-65535");
  struct winsize ws = {};
  ws.ws_col = (unsigned short)cols;
  ws.ws_row = (unsigned short)rows;
  if (ioctl(fd, TIOCSWINSZ, &ws) < 0) ThrowErrno(info.Env(), "ioctl TIOCSWINSZ", errno);
  return info.Env().Undefined();
}

// mount(2) with the flags and data the caller parsed from containerd's Mount options.
static Napi::Value Mount(const Napi::CallbackInfo &info) {
  std::string source = ArgString(info, 0, "source"), target = ArgString(info, 1, "target");
  std::string fstype = ArgString(info, 2, "fstype"), data = ArgString(info, 4, "data");
  if (info.Length() <= 3 || !info[3].IsNumber()) throw Napi::TypeError::New(info.Env(), "flags must be a number");
  double f = info[3].As<Napi::Number>().DoubleValue();
  if (f < 0 || f > 4294967295.0 || f != (double)(unsigned long)f) throw Napi::RangeError::New(info.Env(), "flags must be a 32-bit unsigned integer");
  if (mount(source.c_str(), target.c_str(), fstype.empty() ? nullptr : fstype.c_str(), (unsigned long)f, data.empty() ? nullptr : data.c_str()) < 0)
    ThrowErrno(info.Env(), "mount " + source + " on " + target, errno);
  return info.Env().Undefined();
}

// umount2(target, flags) (MNT_DETACH = 2).
static Napi::Value Umount(const Napi::CallbackInfo &info) {
  std::string target = ArgString(info, 0, "target");
  int flags = ArgInt(info, 1, "flags");
  if (umount2(target.c_str(), flags) < 0) ThrowErrno(info.Env(), "umount " + target, errno);
  return info.Env().Undefined();
}

void InitShimIo(Napi::Env env, Napi::Object exports) {
  Export(env, exports, "pipe", Pipe);
  Export(env, exports, "dup", Dup);
  Export(env, exports, "setWinsize", SetWinsize);
  Export(env, exports, "mount", Mount);
  Export(env, exports, "umount", Umount);
}

}  // namespace tsrun
