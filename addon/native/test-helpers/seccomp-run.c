/*
 * Test helper for test/seccomp-*.test.ts: loads a compiled seccomp BPF program the way tsrun-init
 * does (no_new_privs, seccomp(2) with the plan's flags), then either execs a command or makes one
 * raw syscall and reports the result. The tests cannot do this in Node: no JavaScript may run
 * after a filter is loaded (and Node's own threads would not carry it).
 *
 *   seccomp-run BPF_FILE FLAGS exec CMD [ARG...]
 *   seccomp-run BPF_FILE FLAGS syscall NR [ARG...]   prints "ret=<r> errno=<ENAME|0>"
 *
 * FLAGS: SECCOMP_FILTER_FLAG_* as a number. A syscall ARG starting with a digit is a number
 * (strtoull, base 0), anything else is passed as a pointer to the string. Output goes through
 * write(2) only, so the filter sees nothing but the syscall under test, write and exit_group.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static void die(const char *what) {
  char buf[256];
  int n = snprintf(buf, sizeof buf, "seccomp-run: %s: %s\n", what, strerror(errno));
  if (write(2, buf, (size_t)n) < 0) _exit(125);
  _exit(125);
}

int main(int argc, char **argv) {
  if (argc < 5) {
    static const char usage[] = "usage: seccomp-run BPF_FILE FLAGS exec|syscall ...\n";
    if (write(2, usage, sizeof usage - 1) < 0) return 125;
    return 125;
  }
  int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open bpf");
  struct stat st;
  if (fstat(fd, &st) < 0) die("stat bpf");
  if (st.st_size == 0 || st.st_size % sizeof(struct sock_filter) != 0) {
    errno = EINVAL;
    die("bpf size");
  }
  struct sock_filter *insns = malloc((size_t)st.st_size);
  if (!insns || read(fd, insns, (size_t)st.st_size) != st.st_size) die("read bpf");
  close(fd);
  unsigned long flags = strtoul(argv[2], NULL, 0);

  /* Everything the syscall mode needs is decided before the filter goes in. */
  long nr = 0;
  unsigned long a[6] = {0};
  int is_exec = strcmp(argv[3], "exec") == 0;
  if (!is_exec) {
    nr = strtol(argv[4], NULL, 0);
    for (int i = 5; i < argc && i < 11; i++)
      a[i - 5] = (argv[i][0] >= '0' && argv[i][0] <= '9') ? strtoull(argv[i], NULL, 0) : (unsigned long)argv[i];
  }

  struct sock_fprog prog = {(unsigned short)(st.st_size / sizeof(struct sock_filter)), insns};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) die("no_new_privs");
  long lfd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
  if (lfd < 0) die("seccomp(SECCOMP_SET_MODE_FILTER)");

  if (is_exec) {
    execvp(argv[4], argv + 4);
    die("exec");
  }
  errno = 0;
  long r = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  int e = r < 0 ? errno : 0;
  char out[128];
  const char *name = e ? strerrorname_np(e) : "0";
  int n = snprintf(out, sizeof out, "ret=%ld errno=%s listener=%ld\n", r, name ? name : "?", (flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) ? lfd : -1L);
  if (write(1, out, (size_t)n) < 0) _exit(124);
  _exit(0);
}
