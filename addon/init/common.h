// Shared state and helpers of tsrun-init: error reporting on the sync socket, file and fd helpers.
#pragma once
#include <stdint.h>
#include <sys/types.h>

#include <string>
#include <vector>

// The sync socket to the parent (-1 once closed), the pipe a forked child uses to tell stage 0
// how set-up ended ('R' ready, 'E' error), and stage 0's child (killed when stage 0 fails).
extern int g_sync_fd;
extern int g_status_fd;
extern pid_t g_child;

std::string strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// strerror in lowercase, like Go's syscall errors ("no such file or directory").
std::string errstr(int err);

// Reports {"type":"error","message":msg} (or to stderr when the socket is gone) and exits 1.
// The start-reply fifo (set once `start` has released the init): die() writes its message there.
extern int g_reply_fd;
// What the init is doing, for error messages ({"type":"error","phase":…}): "plan", "namespaces",
// "rootfs", "hooks", "process", "exec" (PROTOCOL.md). A string literal.
extern const char *g_phase;
[[noreturn]] void die(const std::string &msg);
// die(msg + ": " + strerror(err)).
[[noreturn]] void die_err(int err, const std::string &msg);

// Sends one JSON line on the sync socket; false when the socket is closed or broken.
bool send_line(const std::string &json);
void send_type(const char *type);
// Reads one line from fd byte by byte (so nothing after the newline is consumed); false on EOF.
bool read_line(int fd, std::string &line);

// Writes all of buf to a file path (O_WRONLY|O_CLOEXEC, plus extra open flags); returns errno or 0.
int write_file(const char *path, const std::string &buf, int extra_flags = 0);
bool write_all(int fd, const void *buf, size_t len);

// An O_PATH fd of "/proc", verified to be a procfs (errno EXDEV when it is not), or -1. For the
// writes the init makes through its own /proc (labels, sysctls), which the container may control.
int open_procfs();

// NULL-terminated argv/envp views over strings (the strings must outlive the result).
std::vector<char *> cstrs(const std::vector<std::string> &v);
