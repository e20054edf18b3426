// tsrun-init: carries out one InitPlan (src/native/init-plan.ts); see PROTOCOL.md.
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <linux/nsfs.h>
#include <limits.h>
#include <sys/sysmacros.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/scm_rights.h"
#include "common.h"
#include "json.h"
#include "plan.gen.h"
#include "plan_check.h"
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
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    // runc's words for the seccomp agent (clients match "failed to connect with seccomp agent").
    if (!strcmp(what, "seccomp listener"))
      die_err(errno, strf("failed to connect with seccomp agent specified in the seccomp profile: dial unix %s: connect", path.c_str()));
    die_err(errno, strf("connect %s %s", what, path.c_str()));
  }
  return fd;
}

struct NsInfo {
  PlanNamespaceType kind;  // enum_name(kind): the plan's name, for messages
  const char *file;        // under /proc/<pid>/ns
  int flag;
};
const NsInfo kNamespaces[] = {
    {PlanNamespaceType::kUser, "user", CLONE_NEWUSER},         {PlanNamespaceType::kPid, "pid", CLONE_NEWPID},
    {PlanNamespaceType::kNetwork, "net", CLONE_NEWNET},        {PlanNamespaceType::kMount, "mnt", CLONE_NEWNS},
    {PlanNamespaceType::kIpc, "ipc", CLONE_NEWIPC},            {PlanNamespaceType::kUts, "uts", CLONE_NEWUTS},
    {PlanNamespaceType::kCgroup, "cgroup", CLONE_NEWCGROUP},   {PlanNamespaceType::kTime, "time", CLONE_NEWTIME},
};
const NsInfo &ns_info(PlanNamespaceType type) {
  for (auto &n : kNamespaces)
    if (type == n.kind) return n;
  // Not reached: the table has every value of the schema's enum.
  die(strf("plan: unknown namespace type %s", enum_name(type)));
}

const NsInfo *ns_by_flag(int flag) {
  for (auto &n : kNamespaces)
    if (n.flag == flag) return &n;
  return nullptr;
}

// A namespace file opened and proven to be of the expected type before anything is joined:
// setns(fd, 0) would accept any nsfs file (an ipc namespace bind-mounted and given as "network"
// would put the container in that network namespace), so the type is read from the kernel
// (NS_GET_NSTYPE) and passed to setns again.
struct NsJoin {
  const NsInfo *info;
  int fd;
  std::string what;  // for messages: the config field or the /proc path
};

NsJoin open_namespace(int dirfd, const std::string &path, const NsInfo &info, const std::string &what) {
  int fd = openat(dirfd, path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) die_err(errno, strf("%s: open %s", what.c_str(), path.c_str()));
  int type = ioctl(fd, NS_GET_NSTYPE);
  if (type < 0) die_err(errno, strf("%s: %s is not a namespace file", what.c_str(), path.c_str()));
  if (type != info.flag) {
    const NsInfo *actual = ns_by_flag(type);
    die(strf("%s: %s is a %s namespace, not %s", what.c_str(), path.c_str(), actual ? enum_name(actual->kind) : "unknown", enum_name(info.kind)));
  }
  return NsJoin{&info, fd, what};
}

void join_namespace(const NsJoin &j) {
  if (setns(j.fd, j.info->flag) < 0) die_err(errno, strf("%s: join %s namespace", j.what.c_str(), enum_name(j.info->kind)));
  close(j.fd);
}

std::string id_map(const std::vector<PlanIdMapping> &maps) {
  std::string out;
  for (auto &m : maps) out += strf("%u %u %u\n", m.containerID, m.hostID, m.size);
  return out;
}

std::string plan_state(const CreatePlan &plan, pid_t host_pid) { return plan.statePrefix + std::to_string(host_pid) + plan.stateSuffix; }

// Whether the plan gives the container a mount namespace (new or joined); set by stage 0 before
// the clone, so the container init has it too.
bool g_own_mount_ns = true;
// A new IPC namespace together with a new user namespace: the container init unshares it once it
// is root in the user namespace (see container_init).
bool g_late_ipc_ns = false;
// The plan's `rootless` (runc's RootlessEUID): stage 0 runs as an unprivileged user. It writes no
// uid/gid map (the parent does, between "pid" and "placed"), cannot join the child's mount
// namespace (the child opens its bind sources itself), and the container never calls setgroups.
bool g_rootless = false;
// runc's nsexec leaves its init dumpable unless it joins namespace paths; ours is non-dumpable from
// the start. Rootless, that makes a created container unreachable for its own user: exec's
// stage 0 cannot open /proc/<init>/ns/* (they belong to the host's root, and the user has no
// CAP_SYS_PTRACE over the init's mm, which was made in the host's user namespace). So a rootless
// init that joined no namespace becomes dumpable again once it is the container's process
// (creds, capabilities, rootfs in place, no host fd left), for the time it waits for `start`.
bool g_dumpable_when_created = false;

// The rootfs path, resolved (no mounts: a container without a mount namespace of its own).
std::string real_rootfs(const CreatePlan &plan) {
  char real[PATH_MAX];
  const std::string &in = plan.rootfs;
  if (!realpath(in.c_str(), real)) die_err(errno, strf("rootfs %s", in.c_str()));
  return real;
}

// runc's reopenDevNull: stdio that is the host's /dev/null (as conmon and others hand it over,
// often read-only) becomes the container's own /dev/null, read-write, so `echo >&0` works as it
// would on a real /dev/null and no fd of the host's devtmpfs stays open in the container.
void reopen_dev_null() {
  struct stat null_st;
  bool have = false;
  for (int fd = 0; fd <= 2; fd++) {
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3)) continue;
    if (!have) {
      int n = open("/dev/null", O_RDWR | O_NOFOLLOW | O_CLOEXEC);
      if (n < 0) return;  // a container without /dev/null keeps what it was given
      if (fstat(n, &null_st) < 0 || !S_ISCHR(null_st.st_mode) || null_st.st_rdev != makedev(1, 3)) {
        close(n);
        return;  // not the real device: never make that the process's stdio
      }
      close(n);
      have = true;
    }
    if (st.st_dev == null_st.st_dev && st.st_ino == null_st.st_ino) continue;  // already the container's
    int n = open("/dev/null", O_RDWR | O_NOFOLLOW);
    if (n < 0) continue;
    struct stat nst;
    if (fstat(n, &nst) == 0 && S_ISCHR(nst.st_mode) && nst.st_rdev == makedev(1, 3) && n != fd) dup2(n, fd);
    if (n != fd) close(n);
  }
}

// What the forked child tells stage 0 through the status pipe.
const char kReady = 'R';

// The "type" of a message from the parent on the sync socket ("" when it has none).
std::string sync_type(const std::string &line) {
  JValue msg;
  std::string err;
  if (!json_parse(line, msg, err) || msg.type != JValue::Object) return "";
  const JValue *t = msg.get("type");
  return t && t->type == JValue::String ? t->text : "";
}

// Stage 0 after the child exists: report it, release it, and wait for the outcome (with
// wait_for_exit, the plan's waitForExit, also for its exit).
[[noreturn]] void supervise(bool wait_for_exit, pid_t child, int release_wr, int status_rd) {
  g_child = child;
  send_line(strf("{\"type\":\"pid\",\"pid\":%d}", child));
  // The parent puts the child (not stage 0: only container processes belong there) into the
  // container's cgroup, then says so; the child runs nothing of the container before that.
  {
    std::string line;
    if (!read_line(g_sync_fd, line)) die("sync: the parent went away before placing the container process");
    if (sync_type(line) != "placed") die("sync: expected {\"type\":\"placed\"}, got " + line);
  }
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
    if (!wait_for_exit) _exit(0);
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
  // Before "ready": `exec` may come the moment the caller has it. No process of the container
  // exists yet that could trace us in the instant the sync socket is still open.
  if (g_dumpable_when_created && prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0) die_err(errno, "set dumpable");
  send_type("ready");
  if (close_sync) {
    close(g_sync_fd);
    g_sync_fd = -1;
  }
}

// The host's /proc, opened before any namespace is joined: once stage 0 is in the container's
// mount namespace, "/proc" there is the container's (it may show other pids, or be a fake).
// Stage 0 alone uses it; the container's processes close it first thing (see close_host_fds).
int g_host_proc = -1;

void open_host_proc() {
  g_host_proc = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (g_host_proc < 0) die_err(errno, "open /proc");
}

// Host resources, opened by stage 0 before its first setns or clone and handed to the container
// process by inheritance: after the first namespace change nothing resolves a host path.
struct HostFds {
  int console = -1;     // --console-socket, connected
  int listener = -1;    // linux.seccomp.listenerPath, connected
  int exec_fifo = -1;   // <state>/exec.fifo, O_RDWR
  int reply_fifo = -1;  // <state>/start-reply.fifo, O_RDWR
};

// First thing in the container process: the host's /proc must never be reachable from it (a
// process exec'd into the container with CAP_SYS_PTRACE could open /proc/1/fd/<n>/sys/...).
void close_host_fds() {
  if (g_host_proc >= 0) close(g_host_proc);
  g_host_proc = -1;
}

// Writes /proc/<pid>/<file> of the host's /proc.
void write_proc(pid_t pid, const char *file, const std::string &data) {
  std::string rel = strf("%d/%s", pid, file);
  int fd = openat(g_host_proc, rel.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
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

// Field 22 of the host's /proc/<pid>/stat (clock ticks since boot), 0 when unreadable.
uint64_t process_start_time(pid_t pid) {
  int fd = openat(g_host_proc, strf("%d/stat", pid).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[1024];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  char *p = strrchr(buf, ')');  // the command name may hold spaces and parentheses
  if (!p) return 0;
  int field = 2;
  for (p++; *p && field < 22; p++)
    if (*p == ' ') field++;
  return strtoull(p, nullptr, 10);
}

// Whether setgroups(2) is allowed in the user namespace of `pid`, read through the host's /proc
// (the container's /proc could say "deny" to keep our supplementary groups).
bool setgroups_allowed(pid_t pid) {
  int fd = openat(g_host_proc, strf("%d/setgroups", pid).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;  // kernels without the file have no deny
  char b[8] = {0};
  bool deny = read(fd, b, sizeof b - 1) > 0 && strncmp(b, "deny", 4) == 0;
  close(fd);
  return !deny;
}

// Before the child is released, so that nothing of the container runs with the host's value.
void write_oom_score_adj(const PlanProcess &proc, pid_t child) {
  if (proc.oomScoreAdj) write_proc(child, "oom_score_adj", std::to_string(*proc.oomScoreAdj));
}

// A user namespace that holds only these maps, for idmapping mounts: a child made in it that
// waits on a pipe while stage 0 (root of the parent user namespace) writes its maps and opens
// its namespace, then exits. Its gid_map needs no setgroups "deny": the writer has CAP_SETGID.
int userns_with_maps(const std::string &uids, const std::string &gids) {
  int hold[2];
  if (pipe2(hold, O_CLOEXEC) < 0) die_err(errno, "pipe");
  pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), 0, 0, 0, 0);
  if (pid < 0) die_err(errno, "clone a user namespace for an id-mapped mount");
  if (pid == 0) {
    close(hold[1]);
    char c;
    while (read(hold[0], &c, 1) < 0 && errno == EINTR) {
    }
    _exit(0);
  }
  close(hold[0]);
  write_proc(pid, "uid_map", uids);
  write_proc(pid, "gid_map", gids);
  int fd = openat(g_host_proc, strf("%d/ns/user", pid).c_str(), O_RDONLY | O_CLOEXEC);
  int err = errno;
  close(hold[1]);
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  if (fd < 0) die_err(err, "open the user namespace of an id-mapped mount");
  return fd;
}

// Every id-mapped bind's tree, in plan order, made before the first namespace change (the
// idmapping needs CAP_SYS_ADMIN over the source's superblock: the host's root). Mounts with the
// same maps share one user namespace; without maps, the joined user namespace (the plan check
// guarantees there is one).
std::vector<int> make_idmapped_trees(const CreatePlan &plan, int joined_userns) {
  std::vector<int> trees;
  std::vector<std::pair<std::string, int>> made;
  for (auto &step : plan.mountSteps) {
    const auto *m = std::get_if<PlanMountStepMount>(&step);
    if (!m || !m->idmap) continue;
    std::string uids = id_map(m->idmap->uidMappings), gids = id_map(m->idmap->gidMappings);
    int userns = joined_userns;
    if (!uids.empty()) {
      std::string key = uids + "/" + gids;
      userns = -1;
      for (auto &m : made)
        if (m.first == key) userns = m.second;
      if (userns < 0) made.push_back({key, userns = userns_with_maps(uids, gids)});
    }
    if (userns < 0) die("plan: an id-mapped mount without mappings needs a joined user namespace");
    trees.push_back(make_idmapped_tree(*m, userns));
  }
  for (auto &m : made) close(m.second);
  return trees;
}

void make_pipes(int release[2], int status[2]) {
  if (pipe2(release, O_CLOEXEC) < 0 || pipe2(status, O_CLOEXEC) < 0) die_err(errno, "pipe");
}

// console_socket: the plan's consoleSocket (both modes have one).
void connect_sockets(const std::string &console_socket, const PlanProcess &proc, HostFds &fds) {
  if (proc.terminal && !console_socket.empty()) fds.console = connect_unix(console_socket, "console socket");
  if (proc.seccomp && !proc.seccomp->listenerPath.empty()) fds.listener = connect_unix(proc.seccomp->listenerPath, "seccomp listener");
}

// path "": no fifo.
int open_fifo(const std::string &path, const char *what) {
  if (path.empty()) return -1;
  // A fifo tsrun made (mkfifo in its 0700 state dir): never follow a link, never block.
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) die_err(errno, strf("open %s %s", what, path.c_str()));
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) die(strf("open %s %s: not a fifo", what, path.c_str()));
  return fd;
}

// The number of bind steps (each has a source fd).
size_t count_binds(const CreatePlan &plan) {
  size_t binds = 0;
  for (auto &step : plan.mountSteps) {
    const auto *m = std::get_if<PlanMountStepMount>(&step);
    binds += m && (m->flags & MS_BIND);
  }
  return binds;
}

// Bind-mount sources are host paths: they are opened (O_PATH) by stage 0, with the host's
// credentials, in the order of the plan's bind steps. A source that only the host's root can
// reach (a 0700 parent, a mapped root that is not host root) is then mounted as with runc.
// An id-mapped bind's place holds its tree from make_idmapped_trees instead (taken from `trees`).
std::vector<int> open_bind_sources(const CreatePlan &plan, std::vector<int> &trees) {
  std::vector<int> fds;
  size_t next_tree = 0;
  for (auto &step : plan.mountSteps) {
    const auto *m = std::get_if<PlanMountStepMount>(&step);
    if (!m || !(m->flags & MS_BIND)) continue;
    if (m->idmap) {
      fds.push_back(trees.at(next_tree));
      trees[next_tree++] = -1;
      continue;
    }
    const std::string &src = m->source, &dst = m->destination;
    int fd = open(src.c_str(), O_PATH | O_CLOEXEC);
    if (fd < 0) die_err(errno, strf("mount %s on %s", src.c_str(), dst.c_str()));
    fds.push_back(fd);
  }
  return fds;
}

// A bind source must belong to the mount namespace it is attached in (open_tree refuses a mount
// of another namespace), so for a new mount namespace stage 0 opens the sources inside the
// child's — a copy of the host's, nothing of the container mounted yet — as runc 1.1 does, then
// returns to its own and sends the fds to the child.
std::vector<int> open_bind_sources_in(pid_t child, const CreatePlan &plan, std::vector<int> &trees) {
  int own = openat(g_host_proc, strf("%d/ns/mnt", getpid()).c_str(), O_RDONLY | O_CLOEXEC);
  int theirs = openat(g_host_proc, strf("%d/ns/mnt", child).c_str(), O_RDONLY | O_CLOEXEC);
  if (own < 0 || theirs < 0) die_err(errno, "open mount namespaces for bind sources");
  if (setns(theirs, CLONE_NEWNS) < 0) die_err(errno, "join the container's mount namespace");
  std::vector<int> fds = open_bind_sources(plan, trees);
  if (setns(own, CLONE_NEWNS) < 0) die_err(errno, "return to the host's mount namespace");
  close(own);
  close(theirs);
  return fds;
}

const size_t kFdsPerMessage = 200;  // below SCM_MAX_FD (253)

void send_fds(int sock, const std::vector<int> &fds) {
  size_t i = 0;
  do {
    size_t n = std::min(kFdsPerMessage, fds.size() - i);
    // Each message's one byte says whether more follow ('M') or this is the last ('L').
    char last = i + n == fds.size() ? 'L' : 'M';
    if (scm::send_with_fds<kFdsPerMessage>(sock, &last, 1, fds.data() + i, n) < 0) die_err(errno, "send bind sources");
    i += n;
  } while (i < fds.size());
}

std::vector<int> recv_fds(int sock) {
  std::vector<int> fds;
  for (;;) {
    char last = 0;
    bool truncated;
    ssize_t r = scm::recv_with_fds<kFdsPerMessage>(sock, &last, 1, &truncated, [&](int fd) { fds.push_back(fd); });
    if (r <= 0) _exit(1);  // stage 0 is gone
    if (truncated) die("receive bind sources: truncated");
    if (last == 'L') return fds;
  }
}

void make_cwd(const std::string &cwd) {
  std::string p;
  size_t i = 1;
  while (i <= cwd.size()) {
    size_t j = cwd.find('/', i);
    if (j == std::string::npos) j = cwd.size();
    if (j > i) {
      p += "/" + cwd.substr(i, j - i);
      if (mkdir(p.c_str(), 0755) < 0 && errno != EEXIST) die_err(errno, strf("mkdir cwd %s", cwd.c_str()));
    }
    i = j + 1;
  }
}

[[noreturn]] void container_init(const CreatePlan &plan, int release_rd, int status_wr, const HostFds &fds, bool user_ns,
                                 bool new_cgroup_ns, std::vector<int> bind_sources, int sources_sock) {
  close_host_fds();
  g_status_fd = status_wr;
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  pid_t host_pid = wait_release(release_rd);
  // The maps are written (rootless: the child was dumpable for that, see stage0_create).
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) die_err(errno, "set non-dumpable");
  const PlanProcess &proc = plan.process;
  // Now in the container's cgroup: a new cgroup namespace is rooted there (as runc, unshared
  // after the placement rather than at clone, when stage 0's cgroup would have been the root).
  if (new_cgroup_ns && unshare(CLONE_NEWCGROUP) < 0) die_err(errno, "unshare cgroup namespace");
  if (user_ns) {
    if (setresgid(0, 0, 0) < 0) die_err(errno, "setresgid 0");
    if (setresuid(0, 0, 0) < 0) die_err(errno, "setresuid 0");
  }
  // The IPC namespace's mqueue filesystem belongs to whoever creates the namespace: created here,
  // as root of the new user namespace (runc's order), /dev/mqueue is the container root's, not
  // the host root's.
  if (g_late_ipc_ns && unshare(CLONE_NEWIPC) < 0) die_err(errno, "unshare ipc namespace");
  // Device modes and created mount points must be exactly what the plan says.
  mode_t old_umask = umask(0);
  if (plan.hostname && sethostname(plan.hostname->data(), plan.hostname->size()) < 0) die_err(errno, "sethostname");
  if (plan.domainname && setdomainname(plan.domainname->data(), plan.domainname->size()) < 0) die_err(errno, "setdomainname");
  // A session keyring of the container's own, so that it cannot read the keys of the session it
  // was started from (runc's default; --no-new-keyring keeps the caller's). Kernels without keys
  // support, or where the keyring quota is exhausted, are tolerated as runc tolerates them.
  if (plan.sessionKeyring && !plan.sessionKeyring->empty()) {
    long id = syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, plan.sessionKeyring->c_str(), 0, 0, 0);
    if (id < 0 && errno != ENOSYS && errno != EDQUOT && errno != EPERM) die_err(errno, "join session keyring");
    // Possessor: everything; user: view/read/search/link; group, other: nothing (runc's mask).
    if (id >= 0) syscall(SYS_keyctl, 9 /* KEYCTL_SETPERM */, id, 0x3f1b0000, 0, 0);
  }
  int64_t pers = plan.personality;
  if (pers >= 0 && personality((unsigned long)pers) < 0) die_err(errno, "personality");

  if (sources_sock >= 0) {
    bind_sources = recv_fds(sources_sock);
    close(sources_sock);
  } else if (g_rootless && g_own_mount_ns && bind_sources.empty()) {
    // Rootless: stage 0 has no privilege to enter this mount namespace, so the sources are opened
    // here, before anything of the container is mounted: the namespace is still the copy of the
    // host's it was at clone time, and the user's credentials (uid 0 here is the user outside)
    // are the same stage 0 would have used (runc's shouldSendMountSources is false when rootless).
    // No id-mapped binds here: they need the host's root (refused for rootless before the plan).
    std::vector<int> no_trees;
    bind_sources = open_bind_sources(plan, no_trees);
  }
  g_phase = "rootfs";
  std::string rootfs = g_own_mount_ns ? setup_rootfs(plan, bind_sources) : real_rootfs(plan);

  if (plan.syncRuntimeHooks) {
    send_type("hooks");
    std::string line;
    if (!read_line(g_sync_fd, line)) _exit(1);  // the parent went away
    if (sync_type(line) != "continue") die("sync: expected {\"type\":\"continue\"}, got " + line);
  }
  // The parent learns that these hooks begin (runtime.md: a failure from here on continues with
  // the poststop hooks) from the protocol, not from an error's wording.
  if (!plan.createContainerHooks.empty()) send_type("createContainerHooks");
  // runc runs them from inside the rootfs (before pivot_root): relative paths resolve there.
  run_hooks(plan.createContainerHooks, plan_state(plan, host_pid), "createContainer", rootfs);
  if (g_own_mount_ns) {
    enter_rootfs(rootfs, plan.noPivot);
  } else {
    // runc's chroot() for a container without a mount namespace: pivot_root would move the root
    // of every process of the host.
    if (chdir(rootfs.c_str()) < 0) die_err(errno, strf("chdir %s", rootfs.c_str()));
    if (chroot(".") < 0) die_err(errno, "chroot .");
    if (chdir("/") < 0) die_err(errno, "chdir /");
  }
  reopen_dev_null();
  // runc: a missing cwd is created (we are inside the new root), before / may turn read-only.
  make_cwd(proc.cwd);
  finish_rootfs(plan);
  umask(old_umask);

  g_phase = "process";
  setup_terminal(proc, fds.console, true);
  // As runc: the user, capabilities and cwd are in place before "ready", so that their errors
  // fail `create`; only the exec fifo, late seccomp, startContainer hooks and execve come after.
  prepare_process(proc, fds.listener, host_pid);
  std::string exe = lookup_executable(proc);
  report_ready(true);
  if (fds.exec_fifo >= 0) {
    char b;
    ssize_t n;
    do n = read(fds.exec_fifo, &b, 1); while (n < 0 && errno == EINTR);
    if (n != 1) die_err(n < 0 ? errno : EIO, "read exec fifo");
    close(fds.exec_fifo);
    // From here on, errors (a failing startContainer hook, execve) go to `start` through the
    // reply fifo; execve closes it (CLOEXEC), which tells `start` the process is running.
    g_reply_fd = fds.reply_fifo;
  }
  // runc: with no_new_privs the filter is loaded right before the startContainer hooks, so the
  // hooks run under the container's seccomp profile as the container process would.
  load_late_seccomp(proc, fds.listener, host_pid);
  run_hooks(plan.startContainerHooks, plan_state(plan, host_pid), "startContainer");
  g_phase = "exec";
  exec_process(proc, exe);
}

[[noreturn]] void stage0_create(const CreatePlan &plan) {
  const PlanProcess &proc = plan.process;
  int clone_flags = 0;
  bool user_ns = false, new_time = false, has_mount_ns = false;
  // Every namespace path is opened and its type proven before the first one is joined.
  std::vector<NsJoin> joins;  // user first
  const auto &nss = plan.namespaces;
  for (size_t i = 0; i < nss.size(); i++) {
    const PlanNamespace &ns = nss[i];
    PlanNamespaceType type = ns.type;
    const NsInfo &info = ns_info(type);
    if (type == PlanNamespaceType::kUser) user_ns = true;
    if (type == PlanNamespaceType::kMount) has_mount_ns = true;
    if (ns.path && !ns.path->empty()) {
      NsJoin j = open_namespace(AT_FDCWD, *ns.path, info, strf("linux.namespaces[%zu] (%s) path", i, enum_name(type)));
      if (type == PlanNamespaceType::kUser) joins.insert(joins.begin(), j);
      else joins.push_back(j);
    } else if (type == PlanNamespaceType::kTime) {
      new_time = true;
    } else {
      clone_flags |= info.flag;
    }
  }
  // Without one the container shares our mount namespace: the plan (checked) mounts nothing,
  // and the container init only chroots into the rootfs.
  g_own_mount_ns = has_mount_ns;
  g_rootless = plan.rootless.value_or(false);  // optional: absent is false
  g_dumpable_when_created = g_rootless && joins.empty();

  HostFds fds;
  connect_sockets(plan.consoleSocket, proc, fds);
  fds.exec_fifo = open_fifo(plan.execFifo, "exec fifo");
  fds.reply_fifo = open_fifo(plan.startReplyFifo.value_or(""), "start reply fifo");
  bool joined_userns = !joins.empty() && joins[0].info->flag == CLONE_NEWUSER;
  std::vector<int> trees = make_idmapped_trees(plan, joined_userns ? joins[0].fd : -1);

  for (auto &j : joins) join_namespace(j);
  // A joined user namespace may deny setgroups; a new one (written by stage 0 below) never does.
  set_setgroups_allowed(setgroups_allowed(getpid()));
  if (new_time) {
    if (unshare(CLONE_NEWTIME) < 0) die_err(errno, "unshare time namespace");
    const std::pair<const char *, const std::optional<PlanTimeOffset> &> clocks[] = {
        {"monotonic", plan.timeOffsets.monotonic}, {"boottime", plan.timeOffsets.boottime}};
    std::string buf;
    for (auto &c : clocks)
      if (c.second) buf += strf("%s %lld %u\n", c.first, (long long)c.second->secs, c.second->nanosecs);
    if (!buf.empty()) write_proc(getpid(), "timens_offsets", buf);
  }

  // A joined mount namespace is the one stage 0 is in now: open the bind sources here and let
  // the child inherit them; for a new one, they are opened inside it after the clone.
  size_t binds = count_binds(plan);
  // The namespace round trip below only when there is a bind source to open in it. In a joined
  // user namespace stage 0 cannot enter the child's mount namespace (both are non-dumpable, so
  // /proc/<child>/ns needs CAP_SYS_PTRACE of the host's): the child opens its sources itself,
  // with no more privilege over host files than stage 0 has there. Rootless, the container init
  // opens them (container_init).
  bool new_mount_ns = (clone_flags & CLONE_NEWNS) && binds > 0 && !joined_userns && !g_rootless;
  bool child_opens_sources = (clone_flags & CLONE_NEWNS) && binds > 0 && joined_userns && !g_rootless;
  bool new_cgroup_ns = clone_flags & CLONE_NEWCGROUP;
  clone_flags &= ~CLONE_NEWCGROUP;
  if ((clone_flags & CLONE_NEWUSER) && (clone_flags & CLONE_NEWIPC)) {
    clone_flags &= ~CLONE_NEWIPC;
    g_late_ipc_ns = true;
  }
  std::vector<int> bind_sources;
  if (!(clone_flags & CLONE_NEWNS)) bind_sources = open_bind_sources(plan, trees);
  int sources[2] = {-1, -1};
  if (new_mount_ns && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sources) < 0) die_err(errno, "socketpair");
  int release[2], status[2];
  make_pipes(release, status);
  // Rootless: the parent (the same unprivileged user) writes the child's maps, and /proc/<pid>/
  // files of a non-dumpable process belong to the host's root. As runc's nsexec, the child is
  // dumpable (inherited from this clone) until it is released, then non-dumpable again before it
  // does anything; stage 0 is dumpable only around the clone.
  bool dumpable_child = g_rootless && (clone_flags & CLONE_NEWUSER);
  if (dumpable_child && prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0) die_err(errno, "set dumpable for the uid/gid maps");
  pid_t child = (pid_t)syscall(SYS_clone, (unsigned long)clone_flags | SIGCHLD, 0, 0, 0, 0);
  if (child != 0 && dumpable_child) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (child < 0) die_err(errno, "clone container init");
  if (child == 0) {
    close(release[1]);
    close(status[0]);
    if (sources[0] >= 0) close(sources[0]);
    // runc: a rootless container never calls setgroups (its single own-gid map denies it, and
    // additional groups are refused before the plan is built).
    if (clone_flags & CLONE_NEWUSER) set_setgroups_allowed(!g_rootless);
    if (child_opens_sources) bind_sources = open_bind_sources(plan, trees);
    container_init(plan, release[0], status[1], fds, user_ns, new_cgroup_ns, bind_sources, sources[1]);
  }
  g_child = child;
  close(release[0]);
  close(status[1]);
  for (int fd : bind_sources) close(fd);
  if (child_opens_sources)
    for (int fd : trees)
      if (fd >= 0) close(fd);
  if (new_mount_ns) {
    close(sources[1]);
    std::vector<int> opened = open_bind_sources_in(child, plan, trees);
    send_fds(sources[0], opened);
    for (int fd : opened) close(fd);
    close(sources[0]);
  }
  for (int fd : {fds.console, fds.listener, fds.exec_fifo, fds.reply_fifo})
    if (fd >= 0) close(fd);
  // Stage 0 is root in the parent user namespace, so it writes the maps without newuidmap.
  // Rootless, the parent writes them (directly, or through newuidmap/newgidmap) on "pid".
  if ((clone_flags & CLONE_NEWUSER) && !g_rootless) {
    std::string uids = id_map(plan.uidMappings), gids = id_map(plan.gidMappings);
    if (!uids.empty()) write_proc(child, "uid_map", uids);
    if (!gids.empty()) write_proc(child, "gid_map", gids);
  }
  write_oom_score_adj(proc, child);
  supervise(plan.waitForExit, child, release[1], status[0]);
}

[[noreturn]] void exec_child(const ExecPlan &plan, int release_rd, int status_wr, const HostFds &fds) {
  close_host_fds();
  g_status_fd = status_wr;
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  pid_t host_pid = wait_release(release_rd);
  const PlanProcess &proc = plan.process;
  g_phase = "process";
  setup_terminal(proc, fds.console, false);
  prepare_process(proc, fds.listener, host_pid);
  std::string exe = lookup_executable(proc);
  // The sync socket stays open (close-on-exec) so that a failure of the late seccomp load or of
  // execve still reaches the parent as an error.
  report_ready(false);
  load_late_seccomp(proc, fds.listener, host_pid);
  g_phase = "exec";
  exec_process(proc, exe);
}

[[noreturn]] void stage0_exec(const ExecPlan &plan) {
  const PlanProcess &proc = plan.process;
  pid_t init_pid = (pid_t)plan.initPid;  // 1 .. 2^22 (the schema's range)
  // Host paths: connect before entering any of the container's namespaces.
  HostFds fds;
  connect_sockets(plan.consoleSocket, proc, fds);
  int pidfd = (int)syscall(SYS_pidfd_open, init_pid, 0);
  if (pidfd < 0) die_err(errno, strf("pidfd_open %d", init_pid));
  // The pidfd pins a process; its start time proves it is the container's init and not a process
  // that got the pid after the init died (the Node side checked before spawning us).
  uint64_t want = plan.initStartTime;
  if (process_start_time(init_pid) != want) die(strf("container init %d is gone (its pid now names another process)", init_pid));
  // Every namespace file is opened through the host's /proc while the pidfd pins the init, and
  // typed; the liveness check afterwards proves they are that process's (no pid reuse between).
  std::vector<NsJoin> joins;
  for (PlanNamespaceType t : plan.joinNamespaces) {
    const NsInfo &info = ns_info(t);
    NsJoin j = open_namespace(g_host_proc, strf("%d/ns/%s", init_pid, info.file), info, strf("join %s namespace of %d", enum_name(t), init_pid));
    if (t == PlanNamespaceType::kUser) joins.insert(joins.begin(), j);
    else joins.push_back(j);
  }
  if (syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0) < 0) die_err(errno, strf("container init %d", init_pid));
  close(pidfd);
  set_setgroups_allowed(setgroups_allowed(init_pid));
  // The child inherits oom_score_adj; written on stage 0 itself, the host's /proc can be closed
  // before the fork: the child is visible in the container's pid namespace from its first
  // instruction, and a neighbour with CAP_SYS_PTRACE that opened /proc/<child>/fd/<n> in that
  // instant would keep the host's /proc.
  // An unprivileged stage 0 (rootless) cannot open its own /proc files while it is not dumpable
  // (they belong to the host's root then): dumpable for this one write, still in the host's
  // namespaces, as the same user who could ptrace it anyway.
  bool unprivileged = geteuid() != 0 && proc.oomScoreAdj;
  if (unprivileged) prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
  write_oom_score_adj(proc, getpid());
  if (unprivileged && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) die_err(errno, "set non-dumpable");
  close_host_fds();
  for (auto &j : joins) join_namespace(j);
  int release[2], status[2];
  make_pipes(release, status);
  pid_t child = fork();
  if (child < 0) die_err(errno, "fork");
  if (child == 0) {
    close(release[1]);
    close(status[0]);
    exec_child(plan, release[0], status[1], fds);
  }
  close(release[0]);
  close(status[1]);
  for (int fd : {fds.console, fds.listener})
    if (fd >= 0) close(fd);
  supervise(plan.waitForExit, child, release[1], status[0]);
}

// The plan line, checked as a whole before anything is opened, joined or created, and turned
// into its C++ types (check_plan); the JSON tree is freed here, so a created init waiting for
// `start` holds only the typed plan.
InitPlan read_plan() {
  std::string line;
  if (!read_line(g_sync_fd, line)) _exit(1);  // parent closed before sending a plan
  JValue json;
  std::string err;
  if (!json_parse(line, json, err)) die("plan: invalid JSON: " + err);
  return check_plan(json);
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
  if (*end || fd < 3 || fd > 65536 + 3) {
    static const char bad[] = "tsrun-init: bad sync fd\n";
    write_all(2, bad, sizeof bad - 1);
    return 2;
  }
  if (fcntl((int)fd, F_GETFD) < 0) {
    die_err(errno, strf("sync fd %ld", fd));
  }
  g_sync_fd = (int)fd;
  // runc: a container process without a stdin (or stdout/stderr) gets /dev/null, opened read-write
  // on the host side, never a closed fd that its first open() would silently become.
  for (int std = 0; std < 3; std++) {
    if (fcntl(std, F_GETFD) >= 0) continue;
    int nul = open("/dev/null", O_RDWR);
    if (nul < 0) die_err(errno, "open /dev/null");
    if (nul != std) {
      if (dup2(nul, std) < 0) die_err(errno, "dup2 /dev/null");
      close(nul);
    }
  }
  // libuv hands on every fd the caller of tsrun leaked without close-on-exec (a directory of the
  // host, its /proc, a cgroup tree): everything above the sync fd goes now, before anything else,
  // so that no stage of the init — least of all a created init waiting for `start` — holds one.
  // Below it are stdio and the preserved fds, which the container is meant to get.
  if (syscall(SYS_close_range, (unsigned)g_sync_fd + 1, ~0U, 0) < 0) die_err(errno, "close_range");
  ensure_sealed_self(argv);
  // Only now: the re-exec above must keep it. Hooks and the container process must not.
  if (fcntl(g_sync_fd, F_SETFD, FD_CLOEXEC) < 0) die_err(errno, strf("sync fd %ld", fd));
  // Writes to a vanished reader (hook stdin, sockets) must fail with EPIPE, not kill us.
  signal(SIGPIPE, SIG_IGN);

  InitPlan plan = read_plan();
  g_phase = "namespaces";
  open_host_proc();
  if (const auto *create = std::get_if<CreatePlan>(&plan)) stage0_create(*create);
  stage0_exec(*std::get_if<ExecPlan>(&plan));
}
