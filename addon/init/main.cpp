// tsrun-init: carries out one InitPlan (src/native/init-plan.ts); see PROTOCOL.md.
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "json.h"
#include "process.h"
#include "rootfs.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

namespace {

const unsigned kSeals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;

// CVE-2019-5736: a container process that can reach /proc/<init>/exe must find a sealed
// in-memory copy, never the host binary it could overwrite.
void ensure_sealed_self(char **argv) {
  int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (self < 0) die_err(errno, "open /proc/self/exe");
  int seals = fcntl(self, F_GET_SEALS);
  if (seals >= 0 && (seals & kSeals) == kSeals) {
    close(self);
    return;
  }
  int mfd = (int)syscall(SYS_memfd_create, "tsrun-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (mfd < 0) die_err(errno, "memfd_create");
  struct stat st;
  if (fstat(self, &st) < 0) die_err(errno, "stat /proc/self/exe");
  off_t off = 0;
  while (off < st.st_size) {
    ssize_t n = sendfile(mfd, self, &off, st.st_size - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) die_err(n < 0 ? errno : EIO, "copy /proc/self/exe to memfd");
  }
  close(self);
  if (fcntl(mfd, F_ADD_SEALS, kSeals) < 0) die_err(errno, "seal memfd");
  char *envp[] = {nullptr};
  syscall(SYS_execveat, mfd, "", argv, envp, AT_EMPTY_PATH);
  die_err(errno, "exec sealed memfd");
}

int connect_unix(const std::string &path, const char *what) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die_err(errno, strf("%s socket", what));
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) die(strf("connect %s %s: path too long", what, path.c_str()));
  memcpy(sa.sun_path, path.c_str(), path.size());
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die_err(errno, strf("connect %s %s", what, path.c_str()));
  return fd;
}

struct NsInfo {
  const char *type;
  const char *file;  // under /proc/<pid>/ns
  int flag;
};
const NsInfo kNamespaces[] = {
    {"user", "user", CLONE_NEWUSER}, {"pid", "pid", CLONE_NEWPID},       {"network", "net", CLONE_NEWNET},
    {"mount", "mnt", CLONE_NEWNS},   {"ipc", "ipc", CLONE_NEWIPC},       {"uts", "uts", CLONE_NEWUTS},
    {"cgroup", "cgroup", CLONE_NEWCGROUP}, {"time", "time", CLONE_NEWTIME},
};
const NsInfo &ns_info(const std::string &type) {
  for (auto &n : kNamespaces)
    if (type == n.type) return n;
  die(strf("plan: unknown namespace type %s", type.c_str()));
}

void setns_path(const std::string &path, const char *type) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) die_err(errno, strf("open %s namespace %s", type, path.c_str()));
  if (setns(fd, 0) < 0) die_err(errno, strf("join %s namespace %s", type, path.c_str()));
  close(fd);
}

std::string id_map(const JValue &plan, const char *key) {
  std::string out;
  for (auto &m : parr(plan, key))
    out += strf("%lld %lld %lld\n", (long long)pint(m, "containerID"), (long long)pint(m, "hostID"), (long long)pint(m, "size"));
  return out;
}

std::string plan_state(const JValue &plan, pid_t host_pid) {
  return pstr(plan, "statePrefix") + std::to_string(host_pid) + pstr(plan, "stateSuffix");
}

// What the forked child tells stage 0 through the status pipe.
const char kReady = 'R';

// Stage 0 after the child exists: report it, release it, and wait for the outcome.
[[noreturn]] void supervise(const JValue &plan, pid_t child, int release_wr, int status_rd) {
  g_child = child;
  send_line(strf("{\"type\":\"pid\",\"pid\":%d}", child));
  // The child learns its host pid here (it is pid 1 of its namespace): hooks and the seccomp
  // listener state need it.
  int32_t hp = child;
  if (!write_all(release_wr, &hp, sizeof hp)) die_err(errno, "release container process");
  close(release_wr);
  char c = 0;
  ssize_t n;
  do n = read(status_rd, &c, 1); while (n < 0 && errno == EINTR);
  close(status_rd);
  if (n == 1 && c == kReady) {
    g_child = 0;  // from here on the child is the container's, not ours to kill
    if (!pbool(plan, "waitForExit")) _exit(0);
    int status;
    while (waitpid(child, &status, 0) < 0)
      if (errno != EINTR) die_err(errno, "wait for container process");
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    send_line(strf("{\"type\":\"exit\",\"status\":%d}", code));
    _exit(0);
  }
  // The child failed (it reported why) or died without a word: make sure it is gone.
  kill(child, SIGKILL);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  g_child = 0;
  if (n != 1) {
    if (WIFSIGNALED(status)) die(strf("container process died during set-up (signal %d)", WTERMSIG(status)));
    die(strf("container process exited during set-up (status %d)", WEXITSTATUS(status)));
  }
  _exit(1);
}

pid_t wait_release(int release_rd) {
  int32_t hp = 0;
  size_t got = 0;
  while (got < sizeof hp) {
    ssize_t n = read(release_rd, (char *)&hp + got, sizeof hp - got);
    if (n < 0 && errno == EINTR) continue;
    // Stage 0 is gone (failed or killed): nothing to set up for.
    if (n <= 0) _exit(1);
    got += n;
  }
  close(release_rd);
  return hp;
}

// Both modes: "ready" reaches the parent, then stage 0 learns set-up is over.
void report_ready(bool close_sync) {
  // Stage 0 exits after this; the death signal must not follow us into the container's life.
  prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
  // Stage 0 first: once the parent has "ready" it may signal us, and stage 0 must then already
  // know that set-up succeeded (a death from then on is the container's, reported as its exit).
  write_all(g_status_fd, &kReady, 1);
  close(g_status_fd);
  g_status_fd = -1;
  send_type("ready");
  if (close_sync) {
    close(g_sync_fd);
    g_sync_fd = -1;
  }
}

[[noreturn]] void container_init(const JValue &plan, int release_rd, int status_wr, int console_fd, int listener_fd,
                                 bool user_ns) {
  g_status_fd = status_wr;
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  pid_t host_pid = wait_release(release_rd);
  const JValue &proc = req(plan, "process");
  if (user_ns) {
    if (setresgid(0, 0, 0) < 0) die_err(errno, "setresgid 0");
    if (setresuid(0, 0, 0) < 0) die_err(errno, "setresuid 0");
  }
  // Device modes and created mount points must be exactly what the plan says.
  mode_t old_umask = umask(0);
  const JValue &hn = req(plan, "hostname");
  if (hn.type == JValue::String && sethostname(hn.text.data(), hn.text.size()) < 0) die_err(errno, "sethostname");
  const JValue &dn = req(plan, "domainname");
  if (dn.type == JValue::String && setdomainname(dn.text.data(), dn.text.size()) < 0) die_err(errno, "setdomainname");
  // A session keyring of the container's own, so that it cannot read the keys of the session it
  // was started from (runc's default; --no-new-keyring keeps the caller's). Kernels without keys
  // support, or where the keyring quota is exhausted, are tolerated as runc tolerates them.
  const JValue *keyring = plan.get("sessionKeyring");
  if (keyring && keyring->type == JValue::String && !keyring->text.empty()) {
    long id = syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, keyring->text.c_str(), 0, 0, 0);
    if (id < 0 && errno != ENOSYS && errno != EDQUOT && errno != EPERM) die_err(errno, "join session keyring");
    // Possessor: everything; user: view/read/search/link; group, other: nothing (runc's mask).
    if (id >= 0) syscall(SYS_keyctl, 9 /* KEYCTL_SETPERM */, id, 0x3f1b0000, 0, 0);
  }
  int64_t pers = pint(plan, "personality");
  if (pers >= 0 && personality((unsigned long)pers) < 0) die_err(errno, "personality");

  std::string rootfs = setup_rootfs(plan);

  int fifo = -1;
  std::string fifo_path = pstr(plan, "execFifo");
  if (!fifo_path.empty()) {
    fifo = open(fifo_path.c_str(), O_RDWR | O_CLOEXEC);
    if (fifo < 0) die_err(errno, strf("open exec fifo %s", fifo_path.c_str()));
  }
  int reply = -1;
  const JValue *reply_field = plan.get("startReplyFifo");  // optional
  std::string reply_path = reply_field && reply_field->type == JValue::String ? reply_field->text : "";
  if (!reply_path.empty()) {
    reply = open(reply_path.c_str(), O_RDWR | O_CLOEXEC);
    if (reply < 0) die_err(errno, strf("open start reply fifo %s", reply_path.c_str()));
  }
  if (pbool(plan, "syncRuntimeHooks")) {
    send_type("hooks");
    std::string line;
    if (!read_line(g_sync_fd, line)) _exit(1);  // the parent went away
    JValue msg;
    std::string err;
    if (!json_parse(line, msg, err) || pstr(msg, "type") != "continue") die("sync: expected {\"type\":\"continue\"}, got " + line);
  }
  run_hooks(req(plan, "createContainerHooks"), plan_state(plan, host_pid), "createContainer");
  enter_rootfs(rootfs, pbool(plan, "noPivot"));
  finish_rootfs(plan);
  umask(old_umask);

  setup_terminal(proc, console_fd, true);
  // As runc: the user, capabilities and cwd are in place before "ready", so that their errors
  // fail `create`; only the exec fifo, startContainer hooks, late seccomp and execve come after.
  prepare_process(proc, listener_fd, host_pid);
  std::string exe = lookup_executable(proc);
  report_ready(true);
  if (fifo >= 0) {
    char b;
    ssize_t n;
    do n = read(fifo, &b, 1); while (n < 0 && errno == EINTR);
    if (n != 1) die_err(n < 0 ? errno : EIO, "read exec fifo");
    close(fifo);
    // From here on, errors (a failing startContainer hook, execve) go to `start` through the
    // reply fifo; execve closes it (CLOEXEC), which tells `start` the process is running.
    g_reply_fd = reply;
  }
  run_hooks(req(plan, "startContainerHooks"), plan_state(plan, host_pid), "startContainer");
  exec_process(proc, exe, listener_fd, host_pid);
}

// The host's /proc, opened before any namespace is joined: once stage 0 is in the container's
// mount namespace, "/proc" there does not show the child's host pid.
int g_host_proc = -1;

void open_host_proc() {
  g_host_proc = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (g_host_proc < 0) die_err(errno, "open /proc");
}

// Writes /proc/<pid>/<file> of the host's /proc.
void write_proc(pid_t pid, const char *file, const std::string &data) {
  std::string rel = strf("%d/%s", pid, file);
  int fd = openat(g_host_proc, rel.c_str(), O_WRONLY | O_CLOEXEC);
  int err = 0;
  if (fd < 0) {
    err = errno;
  } else {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) err = errno;
    else if ((size_t)n != data.size()) err = EIO;
    close(fd);
  }
  if (err) die_err(err, strf("write /proc/%s", rel.c_str()));
}

// Before the child is released, so that nothing of the container runs with the host's value.
void write_oom_score_adj(const JValue &proc, pid_t child) {
  const JValue &oom = req(proc, "oomScoreAdj");
  if (oom.type == JValue::Null) return;
  write_proc(child, "oom_score_adj", std::to_string(jint(oom, "oomScoreAdj")));
}

void make_pipes(int release[2], int status[2]) {
  if (pipe2(release, O_CLOEXEC) < 0 || pipe2(status, O_CLOEXEC) < 0) die_err(errno, "pipe");
}

int connect_console(const JValue &plan, const JValue &proc) {
  std::string cs = pstr(plan, "consoleSocket");
  if (!pbool(proc, "terminal") || cs.empty()) return -1;
  return connect_unix(cs, "console socket");
}

int connect_listener(const JValue &proc) {
  const JValue &sc = req(proc, "seccomp");
  if (sc.type != JValue::Object) return -1;
  std::string lp = pstr(sc, "listenerPath");
  if (lp.empty()) return -1;
  return connect_unix(lp, "seccomp listener");
}

[[noreturn]] void stage0_create(const JValue &plan) {
  const JValue &proc = req(plan, "process");
  int clone_flags = 0;
  bool user_ns = false, new_time = false;
  std::vector<std::pair<std::string, std::string>> joins;  // (type, path), user first
  for (auto &ns : parr(plan, "namespaces")) {
    std::string type = pstr(ns, "type");
    const NsInfo &info = ns_info(type);
    const JValue *path = ns.get("path");
    if (type == "user") user_ns = true;
    if (path && path->type == JValue::String && !path->text.empty()) {
      if (type == "user") joins.insert(joins.begin(), {type, path->text});
      else joins.push_back({type, path->text});
    } else if (type == "time") {
      new_time = true;
    } else {
      clone_flags |= info.flag;
    }
  }
  bool has_mount_ns = false;
  for (auto &ns : parr(plan, "namespaces")) has_mount_ns |= pstr(ns, "type") == "mount";
  // Without one, the rootfs set-up would rearrange the host's mounts.
  if (!has_mount_ns) die("a mount namespace is required");

  for (auto &j : joins) setns_path(j.second, j.first.c_str());
  if (new_time) {
    if (unshare(CLONE_NEWTIME) < 0) die_err(errno, "unshare time namespace");
    const JValue &off = req(plan, "timeOffsets");
    std::string buf;
    for (const char *clock : {"monotonic", "boottime"}) {
      const JValue *o = off.get(clock);
      if (o && o->type == JValue::Object)
        buf += strf("%s %lld %lld\n", clock, (long long)pint(*o, "secs"), (long long)pint(*o, "nanosecs"));
    }
    if (!buf.empty()) {
      int err = write_file("/proc/self/timens_offsets", buf);
      if (err) die_err(err, "write /proc/self/timens_offsets");
    }
  }
  int console_fd = connect_console(plan, proc);
  int listener_fd = connect_listener(proc);

  int release[2], status[2];
  make_pipes(release, status);
  pid_t child = (pid_t)syscall(SYS_clone, (unsigned long)clone_flags | SIGCHLD, 0, 0, 0, 0);
  if (child < 0) die_err(errno, "clone container init");
  if (child == 0) {
    close(release[1]);
    close(status[0]);
    container_init(plan, release[0], status[1], console_fd, listener_fd, user_ns);
  }
  g_child = child;
  close(release[0]);
  close(status[1]);
  if (console_fd >= 0) close(console_fd);
  if (listener_fd >= 0) close(listener_fd);
  // Stage 0 is root in the parent user namespace, so it writes the maps without newuidmap.
  if (clone_flags & CLONE_NEWUSER) {
    std::string uids = id_map(plan, "uidMappings"), gids = id_map(plan, "gidMappings");
    if (!uids.empty()) write_proc(child, "uid_map", uids);
    if (!gids.empty()) write_proc(child, "gid_map", gids);
  }
  write_oom_score_adj(proc, child);
  supervise(plan, child, release[1], status[0]);
}

[[noreturn]] void exec_child(const JValue &plan, int release_rd, int status_wr, int console_fd, int listener_fd) {
  g_status_fd = status_wr;
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  pid_t host_pid = wait_release(release_rd);
  const JValue &proc = req(plan, "process");
  setup_terminal(proc, console_fd, false);
  prepare_process(proc, listener_fd, host_pid);
  std::string exe = lookup_executable(proc);
  // The sync socket stays open (close-on-exec) so that a failure of the late seccomp load or of
  // execve still reaches the parent as an error.
  report_ready(false);
  exec_process(proc, exe, listener_fd, host_pid);
}

[[noreturn]] void stage0_exec(const JValue &plan) {
  const JValue &proc = req(plan, "process");
  pid_t init_pid = (pid_t)pint(plan, "initPid");
  // Host paths: connect before entering the container's mount namespace.
  int console_fd = connect_console(plan, proc);
  int listener_fd = connect_listener(proc);
  std::vector<std::string> types = pstrs(plan, "joinNamespaces");
  int flags = 0;
  for (auto &t : types) flags |= ns_info(t).flag;
  int pidfd = (int)syscall(SYS_pidfd_open, init_pid, 0);
  if (pidfd < 0) die_err(errno, strf("pidfd_open %d", init_pid));
  // One setns with a pidfd joins all namespaces of that exact process atomically.
  if (flags && setns(pidfd, flags) < 0) {
    if (errno != EINVAL) die_err(errno, strf("join namespaces of %d", init_pid));
    std::vector<std::string> ordered;
    for (auto &t : types)
      if (t == "user") ordered.insert(ordered.begin(), t);
      else ordered.push_back(t);
    for (auto &t : ordered) setns_path(strf("/proc/%d/ns/%s", init_pid, ns_info(t).file), t.c_str());
    // The pid may have been reused while we joined by path; the pidfd still names the original.
    if (syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0) < 0) die_err(errno, strf("container init %d", init_pid));
  }
  close(pidfd);
  int release[2], status[2];
  make_pipes(release, status);
  pid_t child = fork();
  if (child < 0) die_err(errno, "fork");
  if (child == 0) {
    close(release[1]);
    close(status[0]);
    exec_child(plan, release[0], status[1], console_fd, listener_fd);
  }
  close(release[0]);
  close(status[1]);
  if (console_fd >= 0) close(console_fd);
  if (listener_fd >= 0) close(listener_fd);
  write_oom_score_adj(proc, child);
  supervise(plan, child, release[1], status[0]);
}

}  // namespace

int main(int argc, char **argv) {
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (argc != 2) {
    static const char usage[] = "usage: tsrun-init <sync-fd> (started by tsrun, see addon/init/PROTOCOL.md)\n";
    write_all(2, usage, sizeof usage - 1);
    return 2;
  }
  char *end;
  long fd = strtol(argv[1], &end, 10);
  if (*end || fd < 3) {
    static const char bad[] = "tsrun-init: bad sync fd\n";
    write_all(2, bad, sizeof bad - 1);
    return 2;
  }
  if (fcntl((int)fd, F_GETFD) < 0) {
    die_err(errno, strf("sync fd %ld", fd));
  }
  g_sync_fd = (int)fd;
  ensure_sealed_self(argv);
  // Only now: the re-exec above must keep it. Hooks and the container process must not.
  if (fcntl(g_sync_fd, F_SETFD, FD_CLOEXEC) < 0) die_err(errno, strf("sync fd %ld", fd));
  // Writes to a vanished reader (hook stdin, sockets) must fail with EPIPE, not kill us.
  signal(SIGPIPE, SIG_IGN);

  std::string line;
  if (!read_line(g_sync_fd, line)) _exit(1);  // parent closed before sending a plan
  JValue plan;
  std::string err;
  if (!json_parse(line, plan, err)) die("plan: invalid JSON: " + err);
  if (plan.type != JValue::Object) die("plan: not a JSON object");
  std::string mode = pstr(plan, "mode");
  open_host_proc();
  if (mode == "create") stage0_create(plan);
  if (mode == "exec") stage0_exec(plan);
  die(strf("plan: unknown mode %s", mode.c_str()));
}
