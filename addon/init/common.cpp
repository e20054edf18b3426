#include "common.h"
#include "json.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

int g_sync_fd = -1;
int g_status_fd = -1;
pid_t g_child = 0;

std::string strf(const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < (int)sizeof buf) return std::string(buf, n < 0 ? 0 : n);
  std::string big(n + 1, '\0');
  va_start(ap, fmt);
  vsnprintf(&big[0], n + 1, fmt, ap);
  va_end(ap);
  big.resize(n);
  return big;
}

std::string errstr(int err) {
  std::string s = strerror(err);
  if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z' && !(s.size() > 1 && s[1] >= 'A' && s[1] <= 'Z')) s[0] += 'a' - 'A';
  return s;
}

namespace {

// All of buf[0..len) through `io` (write or send), which may take less each time; EINTR is retried.
template <class Io>
bool all_of(const void *buf, size_t len, Io io) {
  const char *p = (const char *)buf;
  while (len) {
    ssize_t n = io(p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    len -= n;
  }
  return true;
}

}  // namespace

bool write_all(int fd, const void *buf, size_t len) {
  return all_of(buf, len, [fd](const char *p, size_t n) { return write(fd, p, n); });
}

bool send_line(const std::string &json) {
  if (g_sync_fd < 0) return false;
  std::string line = json + "\n";
  // MSG_NOSIGNAL: a parent that went away must give an error here, not SIGPIPE.
  return all_of(line.data(), line.size(), [](const char *p, size_t n) { return send(g_sync_fd, p, n, MSG_NOSIGNAL); });
}

void send_type(const char *type) { send_line(strf("{\"type\":\"%s\"}", type)); }

int g_reply_fd = -1;

const char *g_phase = "plan";

namespace {
[[noreturn]] void fail(int err, const std::string &msg) {
  if (g_reply_fd >= 0) {
    // After `start` released us nobody reads the sync socket: `start` reads this fifo instead.
    std::string l = msg + "\n";
    write_all(g_reply_fd, l.data(), l.size());
  }
  std::string j = strf("{\"type\":\"error\",\"phase\":\"%s\",\"errno\":%d,\"message\":", g_phase, err);
  json_quote(j, msg);
  j += "}";
  if (!send_line(j)) {
    std::string l = "tsrun-init: " + msg + "\n";
    write_all(2, l.data(), l.size());
  }
  if (g_status_fd >= 0) write_all(g_status_fd, "E", 1);
  if (g_child > 0) {
    // Stage 0 never leaves a half set-up child behind.
    kill(g_child, SIGKILL);
    waitpid(g_child, nullptr, 0);
  }
  _exit(1);
}
}  // namespace

void die(const std::string &msg) { fail(0, msg); }

void die_err(int err, const std::string &msg) { fail(err, msg + ": " + errstr(err)); }

bool read_line(int fd, std::string &line) {
  line.clear();
  // Never past the newline: what follows belongs to the next reader (after a fork, maybe another
  // process). On a socket, peek to find it and then read exactly that far; elsewhere one byte at
  // a time (a 6 KB plan is then 6000 reads, which is why the socket path exists).
  char buf[8192];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, MSG_PEEK);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == ENOTSOCK) break;
    if (n < 0) return false;
    if (n == 0) return false;
    const char *nl = (const char *)memchr(buf, '\n', (size_t)n);
    size_t want = nl ? (size_t)(nl - buf) + 1 : (size_t)n;
    size_t got = 0;
    while (got < want) {
      ssize_t r = read(fd, buf + got, want - got);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      got += (size_t)r;
    }
    if (nl) {
      line.append(buf, want - 1);
      return true;
    }
    line.append(buf, want);
  }
  for (;;) {
    char c;
    ssize_t n = read(fd, &c, 1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) return false;
    if (c == '\n') return true;
    line += c;
  }
}

int write_file(const char *path, const std::string &buf, int extra_flags) {
  int fd = open(path, O_WRONLY | O_CLOEXEC | extra_flags);
  if (fd < 0) return errno;
  int err = 0;
  ssize_t n = write(fd, buf.data(), buf.size());
  if (n < 0) err = errno;
  else if ((size_t)n != buf.size()) err = EIO;
  close(fd);
  return err;
}

std::vector<char *> cstrs(const std::vector<std::string> &v) {
  std::vector<char *> out;
  for (auto &s : v) out.push_back(const_cast<char *>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

int open_procfs() {
  int fd = open("/proc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -1;
  struct statfs sfs;
  if (fstatfs(fd, &sfs) < 0 || sfs.f_type != PROC_SUPER_MAGIC) {
    close(fd);
    errno = EXDEV;
    return -1;
  }
  return fd;
}
