// Descriptor passing over a unix socket (SCM_RIGHTS), shared by the static container init
// (addon/init: no exceptions, single-threaded) and the N-API addon (addon/native): header-only,
// so each build compiles it with its own flags. Nothing here allocates or throws (the control
// buffer is on the stack, sized by MaxFds) and errno is left for the caller to report in its own
// words: the init dies with a message, the addon throws a JavaScript error.
#pragma once
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

namespace scm {

// One message's msghdr with its single iovec (data[0..len)) and room for MaxFds descriptors of
// control data, zeroed. It points into itself: not to be copied or moved.
template <size_t MaxFds>
struct Message {
  static_assert(MaxFds > 0 && MaxFds <= 253, "SCM_MAX_FD is 253");
  struct iovec iov;
  struct msghdr msg;
  // Aligned for the cmsghdr at its start (a union with one would not do as a member: cmsghdr ends
  // in a flexible array).
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * MaxFds)];
  Message(const void *data, size_t len) {
    iov.iov_base = const_cast<void *>(data);
    iov.iov_len = len;
    memset(&msg, 0, sizeof msg);
    memset(control, 0, sizeof control);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
  }
  Message(const Message &) = delete;
  Message &operator=(const Message &) = delete;
};

// One sendmsg of data[0..len) with fds[0..n) attached (no control data when n is 0), retried on
// EINTR. MSG_NOSIGNAL: a peer that is gone is EPIPE, not a SIGPIPE that kills the sender. On a
// stream socket the fds travel with the first byte, so len must be at least 1 when n > 0.
// Returns what sendmsg returned: the bytes sent (possibly fewer than len), or -1 with errno.
template <size_t MaxFds>
ssize_t send_with_fds(int sock, const void *data, size_t len, const int *fds, size_t n) {
  if (n > MaxFds) {
    errno = EINVAL;
    return -1;
  }
  Message<MaxFds> m(data, len);
  if (n == 0) {
    m.msg.msg_control = nullptr;
    m.msg.msg_controllen = 0;
  } else {
    m.msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m.msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * n);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
  }
  ssize_t r;
  do r = sendmsg(sock, &m.msg, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  return r;
}

// One recvmsg into data[0..len) with room for MaxFds descriptors, retried on EINTR. The fds
// arrive close-on-exec (MSG_CMSG_CLOEXEC) and each is handed to on_fd(int) — all of them, also
// when the caller then refuses the message, so that it can close them. *truncated: the kernel
// cut the control data (more fds were sent than there was room for; the kernel closed the rest).
// Returns what recvmsg returned: the bytes received (0: the peer closed), or -1 with errno.
template <size_t MaxFds, class OnFd>
ssize_t recv_with_fds(int sock, void *data, size_t len, bool *truncated, OnFd on_fd) {
  Message<MaxFds> m(data, len);
  ssize_t r;
  do r = recvmsg(sock, &m.msg, MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  *truncated = false;
  if (r < 0) return r;
  *truncated = (m.msg.msg_flags & MSG_CTRUNC) != 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&m.msg); c; c = CMSG_NXTHDR(&m.msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      on_fd(fd);
    }
  }
  return r;
}

}  // namespace scm
