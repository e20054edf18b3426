#include "rootfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <deque>

#include "common.h"

namespace {

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd &) = delete;
  Fd &operator=(const Fd &) = delete;
  Fd(Fd &&o) : fd(o.fd) { o.fd = -1; }
  Fd &operator=(Fd &&o) {
    if (this != &o) {
      if (fd >= 0) close(fd);
      fd = o.fd;
      o.fd = -1;
    }
    return *this;
  }
  ~Fd() {
    if (fd >= 0) close(fd);
  }
  int release() {
    int f = fd;
    fd = -1;
    return f;
  }
};

std::string fdpath(int fd) { return strf("/proc/self/fd/%d", fd); }

// One component, never following anything: symlinks are expanded by resolve() itself so that
// they are interpreted relative to the rootfs, and magic links are refused outright.
int open_component(int dirfd, const std::string &name) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  for (;;) {
    long r = syscall(SYS_openat2, dirfd, name.c_str(), &how, sizeof how);
    if (r >= 0) return (int)r;
    if (errno == EAGAIN || errno == EINTR) continue;  // openat2 asks to retry on rename races
    return -1;
  }
}

std::vector<std::string> split_path(const std::string &p) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    if (j > i) out.push_back(p.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

enum Create { kNoCreate, kCreateDirs, kCreateFile };

// Resolves the container path `path` inside `rootfd` like the kernel would after chroot: ".."
// stops at the root, absolute symlink targets restart at the root, so nothing resolves outside.
// Missing components are created (directories with dir_mode; with kCreateFile the last one as
// an empty file). With nofollow_last the last component itself is returned even if it is a
// symlink. Returns an O_PATH fd, or -1 with errno set.
int resolve(int rootfd, const std::string &path, Create create, mode_t dir_mode = 0755, bool nofollow_last = false) {
  std::vector<Fd> stack;
  stack.emplace_back(fcntl(rootfd, F_DUPFD_CLOEXEC, 0));
  if (stack.back().fd < 0) return -1;
  std::deque<std::string> todo;
  for (auto &c : split_path(path)) todo.push_back(c);
  int links = 0;
  while (!todo.empty()) {
    std::string comp = todo.front();
    todo.pop_front();
    if (comp == ".") continue;
    if (comp == "..") {
      if (stack.size() > 1) stack.pop_back();
      continue;
    }
    bool last = todo.empty();
    int fd = open_component(stack.back().fd, comp);
    if (fd < 0 && errno == ENOENT && create != kNoCreate) {
      int r;
      if (last && create == kCreateFile) {
        r = openat(stack.back().fd, comp.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (r >= 0) close(r);
      } else {
        r = mkdirat(stack.back().fd, comp.c_str(), dir_mode);
      }
      if (r < 0 && errno != EEXIST) return -1;
      fd = open_component(stack.back().fd, comp);
    }
    if (fd < 0) return -1;
    Fd cur(fd);
    struct stat st;
    if (fstat(fd, &st) < 0) return -1;
    if (S_ISLNK(st.st_mode) && !(last && nofollow_last)) {
      if (++links > 40) {
        errno = ELOOP;
        return -1;
      }
      char buf[PATH_MAX];
      ssize_t n = readlinkat(fd, "", buf, sizeof buf - 1);
      if (n < 0) return -1;
      std::string target(buf, n);
      if (!target.empty() && target[0] == '/') stack.resize(1);
      auto parts = split_path(target);
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) todo.push_front(*it);
      continue;
    }
    if (!last && !S_ISDIR(st.st_mode)) {
      errno = ENOTDIR;
      return -1;
    }
    stack.push_back(std::move(cur));
  }
  return stack.back().release();
}

// Resolves the directory containing `path` (created if missing) and returns the final name.
int resolve_parent(int rootfd, const std::string &path, std::string &name) {
  auto parts = split_path(path);
  // Lexical clean first, so that the final name is a real entry ("/a/b/.." names "a").
  std::vector<std::string> clean;
  for (auto &p : parts) {
    if (p == ".") continue;
    if (p == "..") {
      if (!clean.empty()) clean.pop_back();
      continue;
    }
    clean.push_back(p);
  }
  if (clean.empty()) {
    errno = EEXIST;
    return -1;
  }
  name = clean.back();
  std::string dir;
  for (size_t i = 0; i + 1 < clean.size(); i++) dir += "/" + clean[i];
  return resolve(rootfd, dir, kCreateDirs);
}

// The flags a bind remount must keep: in a user namespace the kernel refuses to clear them.
unsigned long locked_flags(const std::string &path) {
  struct statfs sfs;
  if (statfs(path.c_str(), &sfs) < 0) return 0;
  unsigned long f = 0;
  if (sfs.f_flags & ST_NOSUID) f |= MS_NOSUID;
  if (sfs.f_flags & ST_NODEV) f |= MS_NODEV;
  if (sfs.f_flags & ST_NOEXEC) f |= MS_NOEXEC;
  if (sfs.f_flags & ST_NOATIME) f |= MS_NOATIME;
  if (sfs.f_flags & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (sfs.f_flags & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

std::string unescape_mountinfo(const std::string &s) {
  std::string o;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = (s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0');
      o += (char)v;
      i += 3;
    } else {
      o += s[i];
    }
  }
  return o;
}

// pivot_root refuses a new root whose parent mount is shared (as it is when rootPropagation is
// MS_SHARED); like runc, make that parent mount private.
void make_parent_mount_private(const std::string &rootfs) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f) die_err(errno, "open /proc/self/mountinfo");
  char *line = nullptr;
  size_t cap = 0;
  std::string best;
  bool best_shared = false;
  while (getline(&line, &cap, f) > 0) {
    // id parent major:minor root mountpoint options [optional...] - ...
    std::vector<std::string> fields;
    char *save = nullptr;
    for (char *t = strtok_r(line, " \n", &save); t; t = strtok_r(nullptr, " \n", &save)) fields.push_back(t);
    if (fields.size() < 7) continue;
    std::string mp = unescape_mountinfo(fields[4]);
    bool shared = false;
    for (size_t i = 6; i < fields.size() && fields[i] != "-"; i++)
      if (fields[i].compare(0, 7, "shared:") == 0) shared = true;
    bool prefix = mp == "/" || rootfs == mp || (rootfs.compare(0, mp.size(), mp) == 0 && rootfs[mp.size()] == '/');
    if (prefix && mp.size() >= best.size()) {
      best = mp;
      best_shared = shared;
    }
  }
  free(line);
  fclose(f);
  if (best_shared && mount(nullptr, best.c_str(), nullptr, MS_PRIVATE, nullptr) < 0)
    die_err(errno, strf("make %s private", best.c_str()));
}

bool is_proc_or_sys(const std::string &dest, const std::string &fstype) {
  std::string d = dest;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return d == "/proc" || d == "/sys" || fstype == "proc" || fstype == "sysfs";
}

// root + the lexically cleaned container path (".." stops at the root).
std::string clean_join(const std::string &root, const std::string &path) {
  std::vector<std::string> clean;
  for (auto &p : split_path(path)) {
    if (p == ".") continue;
    if (p == "..") {
      if (!clean.empty()) clean.pop_back();
      continue;
    }
    clean.push_back(p);
  }
  std::string out = root == "/" ? "" : root;
  for (auto &c : clean) out += "/" + c;
  return out.empty() ? "/" : out;
}

std::string fd_target(int fd) {
  char buf[PATH_MAX];
  ssize_t n = readlink(fdpath(fd).c_str(), buf, sizeof buf - 1);
  if (n < 0) die_err(errno, "readlink " + fdpath(fd));
  return std::string(buf, n);
}

// runc's rule (CVE-2019-16884 and its kin): nothing may be mounted inside /proc — where the
// runtime later writes security settings (attr/exec, sysctls) — except the files lxcfs emulates,
// and /proc itself only takes a procfs. Judged on where the resolved target really is, so a
// rootfs symlink into /proc is caught too.
void check_proc_path(const std::string &where, const std::string &proc, const std::string &dest, const std::string &source, const std::string &fstype);

void check_proc_mount(int rootfd, int target_fd, const std::string &dest, const std::string &source, const std::string &fstype) {
  std::string root = fd_target(rootfd);
  std::string proc = root == "/" ? "/proc" : root + "/proc";
  check_proc_path(target_fd >= 0 ? fd_target(target_fd) : clean_join(root, dest), proc, dest, source, fstype);
}

void check_proc_path(const std::string &where, const std::string &proc, const std::string &dest, const std::string &source, const std::string &fstype) {
  if (where == proc) {
    if (fstype == "proc") return;
    struct statfs sfs;
    if (!source.empty() && statfs(source.c_str(), &sfs) == 0 && sfs.f_type == 0x9fa0 /* PROC_SUPER_MAGIC */) return;
    die(strf("\"%s\" cannot be mounted because it is not of type proc", dest.c_str()));
  }
  if (where.compare(0, proc.size() + 1, proc + "/") != 0) return;
  static const char *const lxcfs[] = {"cpuinfo", "diskstats", "meminfo", "stat", "swaps", "uptime", "loadavg", "slabinfo", "net/dev", "sys/kernel/ns_last_pid"};
  std::string rel = where.substr(proc.size() + 1);
  for (const char *ok : lxcfs)
    if (rel == ok) return;
  die(strf("\"%s\" cannot be mounted because it is inside /proc", dest.c_str()));
}

// runc's tmpcopyup: what the covered directory held is copied into the new tmpfs. Everything is
// opened relative to directory fds with O_NOFOLLOW: the tree is the container's, and no link in
// it is ever followed (symlinks are copied as symlinks, hard links become copies). Depth is
// bounded so that a hostile tree cannot exhaust the stack; size is bounded by the tmpfs itself.
static void copy_tree(int src, int dst, const std::string &where, int depth) {
  if (depth > 128) die(strf("tmpcopyup %s: directory tree deeper than 128 levels", where.c_str()));
  int dup_src = fcntl(src, F_DUPFD_CLOEXEC, 3);
  if (dup_src < 0) die_err(errno, strf("tmpcopyup %s", where.c_str()));
  DIR *dir = fdopendir(dup_src);
  if (!dir) die_err(errno, strf("tmpcopyup %s", where.c_str()));
  while (struct dirent *e = readdir(dir)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = where + "/" + name;
    struct stat st;
    if (fstatat(src, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) die_err(errno, strf("tmpcopyup %s", path.c_str()));
    mode_t perm = st.st_mode & 07777;
    if (S_ISDIR(st.st_mode)) {
      if (mkdirat(dst, name.c_str(), 0700) < 0) die_err(errno, strf("tmpcopyup %s", path.c_str()));
      Fd s2(openat(src, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      Fd d2(openat(dst, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (s2.fd < 0 || d2.fd < 0) die_err(errno, strf("tmpcopyup %s", path.c_str()));
      copy_tree(s2.fd, d2.fd, path, depth + 1);
      if (fchown(d2.fd, st.st_uid, st.st_gid) < 0 || fchmod(d2.fd, perm) < 0) die_err(errno, strf("tmpcopyup %s", path.c_str()));
    } else if (S_ISREG(st.st_mode)) {
      Fd in(openat(src, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      Fd out(openat(dst, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (in.fd < 0 || out.fd < 0) die_err(errno, strf("tmpcopyup %s", path.c_str()));
      char buf[65536];
      for (;;) {
        ssize_t n = read(in.fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) die_err(errno, strf("tmpcopyup %s", path.c_str()));
        if (n == 0) break;
        if (!write_all(out.fd, buf, (size_t)n)) die_err(errno, strf("tmpcopyup %s", path.c_str()));
      }
      if (fchown(out.fd, st.st_uid, st.st_gid) < 0 || fchmod(out.fd, perm) < 0) die_err(errno, strf("tmpcopyup %s", path.c_str()));
    } else if (S_ISLNK(st.st_mode)) {
      char target[PATH_MAX];
      ssize_t n = readlinkat(src, name.c_str(), target, sizeof target - 1);
      if (n < 0) die_err(errno, strf("tmpcopyup %s", path.c_str()));
      target[n] = 0;
      if (symlinkat(target, dst, name.c_str()) < 0 || fchownat(dst, name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
        die_err(errno, strf("tmpcopyup %s", path.c_str()));
    } else {
      // fifos, sockets and device nodes: the node itself, never what it refers to.
      if (mknodat(dst, name.c_str(), (st.st_mode & S_IFMT) | perm, st.st_rdev) < 0 ||
          fchownat(dst, name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
        die_err(errno, strf("tmpcopyup %s", path.c_str()));
    }
  }
  closedir(dir);
}

struct MountAttr {
  uint64_t set, clr, propagation, userns_fd;
};

// A bind's remount flags (ro, nosuid...) as mount_setattr attributes on the detached tree, before
// it is attached: only the top mount, as runc's remount without MS_REC ("rro" & co. are the
// recursive attributes).
void set_remount_attrs(int tree, unsigned long remount, const std::string &dest) {
  if (!remount) return;
  MountAttr attr = {0, 0, 0, 0};
  if (remount & MS_RDONLY) attr.set |= MOUNT_ATTR_RDONLY;
  if (remount & MS_NOSUID) attr.set |= MOUNT_ATTR_NOSUID;
  if (remount & MS_NODEV) attr.set |= MOUNT_ATTR_NODEV;
  if (remount & MS_NOEXEC) attr.set |= MOUNT_ATTR_NOEXEC;
  if (remount & MS_NODIRATIME) attr.set |= MOUNT_ATTR_NODIRATIME;
  if (remount & (MS_NOATIME | MS_STRICTATIME | MS_RELATIME)) {
    attr.clr |= MOUNT_ATTR__ATIME;
    attr.set |= (remount & MS_NOATIME) ? MOUNT_ATTR_NOATIME : (remount & MS_STRICTATIME) ? MOUNT_ATTR_STRICTATIME : MOUNT_ATTR_RELATIME;
  }
  if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0) die_err(errno, strf("remount %s", dest.c_str()));
}

void mount_step(int rootfd, const PlanMountStepMount &step, int source_fd) {
  const std::string &source = step.source, &dest = step.destination, &fstype = step.fstype, &data = step.data;
  unsigned long flags = step.flags;
  unsigned long remount = step.remountFlags;
  bool bind = flags & MS_BIND;
  // What the source is, from the fd stage 0 opened (the plan's sourceIsDir is TypeScript's view).
  bool is_dir = step.sourceIsDir;
  if (bind) {
    struct stat sst;
    if (fstat(source_fd, &sst) < 0) die_err(errno, strf("mount %s on %s", source.c_str(), dest.c_str()));
    is_dir = S_ISDIR(sst.st_mode);
  }
  std::string what = strf("mount %s on %s", source.empty() ? fstype.c_str() : source.c_str(), dest.c_str());

  if (is_proc_or_sys(dest, fstype)) {
    // runc refuses these too: a symlinked /proc or /sys would be followed somewhere the
    // container chose, where later writes (sysctl, masks) would not land on procfs.
    std::string name;
    Fd parent(resolve_parent(rootfd, dest, name));
    if (parent.fd < 0) die_err(errno, what);
    int fd = open_component(parent.fd, name);
    if (fd >= 0) {
      struct stat st;
      int r = fstat(fd, &st);
      close(fd);
      if (r == 0 && S_ISLNK(st.st_mode)) die(strf("%s: destination %s is a symlink, refusing to mount over it", what.c_str(), dest.c_str()));
    }
  }
  // Checked on the path as written (before anything is created), then on where it resolved to.
  check_proc_mount(rootfd, -1, dest, source, fstype);
  // runc: a tmpfs without mode= over a directory that exists gets that directory's mode (a tmpfs
  // over /run of an image stays 0755, not tmpfs' 1777). Read before anything is created, and only
  // used if the directory the mount lands on is that same one.
  struct stat covered_st;
  bool keep_mode = false;
  if (!bind && fstype == "tmpfs" && ("," + data).find(",mode=") == std::string::npos) {
    Fd before(resolve(rootfd, dest, kNoCreate));
    keep_mode = before.fd >= 0 && fstat(before.fd, &covered_st) == 0 && S_ISDIR(covered_st.st_mode);
  }
  Fd target(resolve(rootfd, dest, bind && !is_dir ? kCreateFile : kCreateDirs));
  if (target.fd < 0) die_err(errno, what);
  if (keep_mode) {
    struct stat now;
    keep_mode = fstat(target.fd, &now) == 0 && now.st_dev == covered_st.st_dev && now.st_ino == covered_st.st_ino;
  }
  check_proc_mount(rootfd, target.fd, dest, source, fstype);
  const std::vector<uint32_t> &props = step.propagation;
  uint64_t attr_set = step.recursiveAttrSet;
  uint64_t attr_clr = step.recursiveAttrClear;
  Fd mnt;
  if (bind) {
    // A bind is built detached (open_tree), given its flags there (mount_setattr), and only then
    // attached to the resolved target (move_mount): a read-only bind is never writable, and no
    // path is looked up a second time — a container swapping the mount point for a symlink
    // (CVE-2021-30465 shape) cannot redirect the remount. The tree fd then names the new mount.
    if (step.idmap) {
      // Made, idmapped and given its flags by stage 0 (make_idmapped_tree): only attached here.
      mnt = Fd(fcntl(source_fd, F_DUPFD_CLOEXEC, 3));
      if (mnt.fd < 0) die_err(errno, what);
    } else {
      mnt = Fd((int)syscall(SYS_open_tree, source_fd, "",
                            AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | ((flags & MS_REC) ? AT_RECURSIVE : 0)));
      if (mnt.fd < 0) die_err(errno, what);
      set_remount_attrs(mnt.fd, remount, dest);
    }
    if (syscall(SYS_move_mount, mnt.fd, "", target.fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
      die_err(errno, what);
  } else {
    bool copy_up = step.copyUp.value_or(false);
    // The covered directory, opened before the mount hides it (the O_PATH target keeps naming it).
    Fd covered;
    if (copy_up) {
      covered = Fd(openat(target.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (covered.fd < 0) die_err(errno, strf("tmpcopyup %s", dest.c_str()));
    }
    if (mount(source.c_str(), fdpath(target.fd).c_str(), fstype.empty() ? nullptr : fstype.c_str(), flags,
              data.empty() ? nullptr : data.c_str()) < 0)
      die_err(errno, what);
    if (keep_mode) {
      Fd top(resolve(rootfd, dest, kNoCreate));
      if (top.fd < 0) die_err(errno, what);
      Fd dir(openat(top.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (dir.fd < 0 || fchmod(dir.fd, covered_st.st_mode & 07777) < 0) die_err(errno, strf("chmod %s", dest.c_str()));
    }
    if (copy_up) {
      Fd fresh(resolve(rootfd, dest, kNoCreate));
      if (fresh.fd < 0) die_err(errno, strf("tmpcopyup %s", dest.c_str()));
      Fd top(openat(fresh.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (top.fd < 0) die_err(errno, strf("tmpcopyup %s", dest.c_str()));
      copy_tree(covered.fd, top.fd, dest, 0);
    }
    if (props.empty() && !attr_set && !attr_clr) return;
    // The target fd still names the covered directory: look the destination up again to reach
    // the new mount (a fresh filesystem: nothing of the host to redirect it to).
    mnt = Fd(resolve(rootfd, dest, kNoCreate));
    if (mnt.fd < 0) die_err(errno, what);
  }
  std::string mp = fdpath(mnt.fd);
  for (uint32_t p : props) {
    if (mount("", mp.c_str(), nullptr, p, nullptr) < 0)
      die_err(errno, strf("change propagation of %s", dest.c_str()));
  }
  if (attr_set || attr_clr) {
    struct {
      uint64_t set, clr, prop, userns;
    } attr = {attr_set, attr_clr, 0, 0};
    if (syscall(SYS_mount_setattr, mnt.fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
      die_err(errno, strf("mount_setattr %s", dest.c_str()));
  }
}

void symlink_in_root(int rootfd, const std::string &target, const std::string &link) {
  std::string name;
  Fd parent(resolve_parent(rootfd, link, name));
  if (parent.fd < 0) die_err(errno, strf("symlink %s %s", target.c_str(), link.c_str()));
  if (symlinkat(target.c_str(), parent.fd, name.c_str()) < 0 && errno != EEXIST)
    die_err(errno, strf("symlink %s %s", target.c_str(), link.c_str()));
}

void bind_device(int rootfd, const std::string &path) {
  Fd target(resolve(rootfd, path, kCreateFile));
  if (target.fd < 0) die_err(errno, strf("create device mount point %s", path.c_str()));
  if (mount(path.c_str(), fdpath(target.fd).c_str(), nullptr, MS_BIND, nullptr) < 0)
    die_err(errno, strf("bind mount device %s", path.c_str()));
}

void create_device(int rootfd, const PlanDevice &d) {
  const std::string &path = d.path;
  if (d.bind) return bind_device(rootfd, path);
  mode_t kind = S_IFCHR;
  switch (d.type) {
    case PlanDeviceType::kC:
    case PlanDeviceType::kU:
      kind = S_IFCHR;
      break;
    case PlanDeviceType::kB:
      kind = S_IFBLK;
      break;
    case PlanDeviceType::kP:
      kind = S_IFIFO;
      break;
  }
  std::string name;
  Fd parent(resolve_parent(rootfd, path, name));
  if (parent.fd < 0) die_err(errno, strf("mknod %s", path.c_str()));
  mode_t mode = kind | (d.fileMode & 07777);
  dev_t dev = makedev(d.major, d.minor);
  if (mknodat(parent.fd, name.c_str(), mode, dev) < 0) {
    if (errno == EEXIST) return;  // runc keeps what the rootfs or a mount already provides
    if (errno == EPERM) return bind_device(rootfd, path);
    die_err(errno, strf("mknod %s", path.c_str()));
  }
  if (fchownat(parent.fd, name.c_str(), d.uid, d.gid, AT_SYMLINK_NOFOLLOW) < 0)
    die_err(errno, strf("chown %s", path.c_str()));
}

}  // namespace

int make_idmapped_tree(const PlanMountStepMount &step, int userns_fd) {
  const std::string &source = step.source, &dest = step.destination;
  unsigned long flags = step.flags;
  bool recursive = step.idmap->recursive;
  std::string what = strf("id-mapped mount %s on %s", source.c_str(), dest.c_str());
  int tree = (int)syscall(SYS_open_tree, AT_FDCWD, source.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | ((flags & MS_REC) ? AT_RECURSIVE : 0));
  if (tree < 0) die_err(errno, what);
  MountAttr attr = {MOUNT_ATTR_IDMAP, 0, 0, (uint64_t)userns_fd};
  // EINVAL: the filesystem cannot be idmapped (FS_ALLOW_IDMAP) or the source is already idmapped.
  if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr, sizeof attr) < 0)
    die_err(errno, what + " (mount_setattr MOUNT_ATTR_IDMAP; the source's filesystem must support id-mapped mounts)");
  set_remount_attrs(tree, step.remountFlags, dest);
  return tree;
}

std::string setup_rootfs(const CreatePlan &plan, const std::vector<int> &bind_sources) {
  char real[PATH_MAX];
  const std::string &rootfs_in = plan.rootfs;
  if (!realpath(rootfs_in.c_str(), real)) die_err(errno, strf("rootfs %s", rootfs_in.c_str()));
  std::string rootfs = real;
  if (mount(nullptr, "/", nullptr, plan.rootPropagation, nullptr) < 0)
    die_err(errno, "set propagation of /");
  make_parent_mount_private(rootfs);
  if (mount(rootfs.c_str(), rootfs.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0)
    die_err(errno, strf("bind mount rootfs %s", rootfs.c_str()));
  Fd root(open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (root.fd < 0) die_err(errno, strf("open rootfs %s", rootfs.c_str()));

  size_t next_source = 0;
  for (auto &step : plan.mountSteps) {
    if (const auto *m = std::get_if<PlanMountStepMount>(&step)) {
      int source = -1;
      if (m->flags & MS_BIND) {
        if (next_source >= bind_sources.size()) die("plan: fewer bind sources than bind mounts");
        source = bind_sources[next_source++];
      }
      mount_step(root.fd, *m, source);
      // Host fds never outlive their mount.
      if (source >= 0) close(source);
    } else if (const auto *l = std::get_if<PlanMountStepSymlink>(&step)) {
      symlink_in_root(root.fd, l->target, l->linkPath);
    } else if (const auto *d = std::get_if<PlanMountStepMkdir>(&step)) {
      Fd fd(resolve(root.fd, d->path, kCreateDirs, d->mode & 07777));
      if (fd.fd < 0) die_err(errno, strf("mkdir %s", d->path.c_str()));
    }
  }
  for (auto &d : plan.devices) create_device(root.fd, d);
  for (auto &l : plan.devSymlinks) symlink_in_root(root.fd, l.target, l.linkPath);
  return rootfs;
}

// runc's msMoveRoot: without pivot_root the host's full procfs and sysfs mounts stay in the
// container's mount namespace below the chroot, and while a fully visible procfs exists there the
// kernel lets a process with CAP_SYS_ADMIN mount a fresh one — with none of the masked paths. So
// every procfs/sysfs mount outside the rootfs is detached (or, where that is refused, covered).
void hide_host_proc_and_sys(const std::string &rootfs) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f) die_err(errno, "open /proc/self/mountinfo");
  std::vector<std::string> targets;
  char *line = nullptr;
  size_t cap = 0;
  while (getline(&line, &cap, f) > 0) {
    std::string l = line;
    size_t dash = l.find(" - ");
    if (dash == std::string::npos) continue;
    std::vector<std::string> pre, post;
    char *save = nullptr;
    std::string a = l.substr(0, dash), b = l.substr(dash + 3);
    for (char *t = strtok_r(&a[0], " \n", &save); t; t = strtok_r(nullptr, " \n", &save)) pre.push_back(t);
    for (char *t = strtok_r(&b[0], " \n", &save); t; t = strtok_r(nullptr, " \n", &save)) post.push_back(t);
    if (pre.size() < 5 || post.empty()) continue;
    if (pre[3] != "/" || (post[0] != "proc" && post[0] != "sysfs")) continue;
    std::string mp = unescape_mountinfo(pre[4]);
    if (mp == rootfs || mp.compare(0, rootfs.size() + 1, rootfs + "/") == 0) continue;
    targets.push_back(mp);
  }
  free(line);
  fclose(f);
  for (auto &mp : targets) {
    // Unmount events must not reach the host.
    if (mount("", mp.c_str(), nullptr, MS_SLAVE | MS_REC, nullptr) < 0) {
      if (errno == ENOENT || errno == EINVAL) continue;  // gone with a parent detached before
      die_err(errno, strf("make %s slave", mp.c_str()));
    }
    if (umount2(mp.c_str(), MNT_DETACH) == 0) continue;
    if (errno != EPERM) {
      if (errno == EINVAL || errno == ENOENT) continue;
      die_err(errno, strf("unmount %s", mp.c_str()));
    }
    if (mount("tmpfs", mp.c_str(), "tmpfs", 0, nullptr) < 0) die_err(errno, strf("cover %s", mp.c_str()));
  }
}

void enter_rootfs(const std::string &rootfs, bool no_pivot) {
  if (no_pivot) {
    hide_host_proc_and_sys(rootfs);
    if (chdir(rootfs.c_str()) < 0) die_err(errno, strf("chdir %s", rootfs.c_str()));
    if (mount(rootfs.c_str(), "/", nullptr, MS_MOVE, nullptr) < 0) die_err(errno, strf("move mount %s to /", rootfs.c_str()));
    if (chroot(".") < 0) die_err(errno, "chroot .");
    if (chdir("/") < 0) die_err(errno, "chdir /");
    return;
  }
  // runc's way: no put_old directory inside the rootfs is needed, and the old root is detached
  // while we still stand on it.
  Fd oldroot(open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC));
  if (oldroot.fd < 0) die_err(errno, "open /");
  Fd newroot(open(rootfs.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC));
  if (newroot.fd < 0) die_err(errno, strf("open %s", rootfs.c_str()));
  if (fchdir(newroot.fd) < 0) die_err(errno, strf("chdir %s", rootfs.c_str()));
  if (syscall(SYS_pivot_root, ".", ".") < 0) die_err(errno, strf("pivot_root %s", rootfs.c_str()));
  if (fchdir(oldroot.fd) < 0) die_err(errno, "chdir to old root");
  // Unmounting must not propagate back to the host's mounts.
  if (mount("", ".", nullptr, MS_SLAVE | MS_REC, nullptr) < 0) die_err(errno, "make old root slave");
  if (umount2(".", MNT_DETACH) < 0) die_err(errno, "unmount old root");
  if (chdir("/") < 0) die_err(errno, "chdir /");
}

// An O_PATH fd of a path in the (pivoted) root that no symlink or magic link took part in
// resolving: masks and read-only paths are judged on what the path really is.
static int open_path_no_symlinks(const std::string &p) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
  how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  return (int)syscall(SYS_openat2, AT_FDCWD, p.c_str(), &how, sizeof how);
}

void finish_rootfs(const CreatePlan &plan) {
  for (auto &s : plan.sysctl) {
    const std::string &key = s.key;
    std::string rel = "sys/";
    for (char c : key) rel += c == '.' ? '/' : c;
    // On the container's procfs, verified, without following a link or crossing a mount.
    Fd proc(open_procfs());
    if (proc.fd < 0) die_err(errno, strf("write sysctl %s: open /proc", key.c_str()));
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_WRONLY | O_TRUNC | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS;
    Fd fd((int)syscall(SYS_openat2, proc.fd, rel.c_str(), &how, sizeof how));
    if (fd.fd < 0) die_err(errno, strf("write sysctl %s", key.c_str()));
    const std::string &v = s.value;
    ssize_t n = write(fd.fd, v.data(), v.size());
    if (n < 0 || (size_t)n != v.size()) die_err(n < 0 ? errno : EIO, strf("write sysctl %s", key.c_str()));
  }
  // /dev/null is opened and checked once, and every mask is a clone of that very open file:
  // nothing is looked up by path twice, so a container swapping /dev/null for a symlink to a
  // host file while we mask (CVE-2025-31133 shape) gains nothing.
  Fd null_fd;
  for (auto &p : plan.maskedPaths) {
    Fd target(open_path_no_symlinks(p));
    if (target.fd < 0) {
      if (errno == ENOENT) continue;
      die_err(errno, strf("mask %s", p.c_str()));
    }
    struct stat st;
    if (fstat(target.fd, &st) < 0) die_err(errno, strf("mask %s", p.c_str()));
    if (S_ISDIR(st.st_mode)) {
      if (mount("tmpfs", fdpath(target.fd).c_str(), "tmpfs", MS_RDONLY, nullptr) < 0) die_err(errno, strf("mask %s", p.c_str()));
      continue;
    }
    if (null_fd.fd < 0) {
      // Symlinks inside the container's root may lead to /dev/null; what counts is that the file
      // finally opened is the null device itself (magic links stay refused).
      struct open_how null_how;
      memset(&null_how, 0, sizeof null_how);
      null_how.flags = O_PATH | O_CLOEXEC;
      null_how.resolve = RESOLVE_NO_MAGICLINKS;
      null_fd = Fd((int)syscall(SYS_openat2, AT_FDCWD, "/dev/null", &null_how, sizeof null_how));
      struct stat ns;
      if (null_fd.fd < 0 || fstat(null_fd.fd, &ns) < 0) die_err(errno, strf("mask %s: open /dev/null", p.c_str()));
      if (!S_ISCHR(ns.st_mode) || major(ns.st_rdev) != 1 || minor(ns.st_rdev) != 3)
        die(strf("mask %s: /dev/null is not the null device (char 1:3)", p.c_str()));
    }
    Fd tree((int)syscall(SYS_open_tree, null_fd.fd, "", AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
    if (tree.fd < 0) die_err(errno, strf("mask %s: clone /dev/null", p.c_str()));
    if (syscall(SYS_move_mount, tree.fd, "", target.fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
      die_err(errno, strf("mask %s", p.c_str()));
  }
  for (auto &p : plan.readonlyPaths) {
    // Looked up once, never through a symlink; the read-only copy is made detached (open_tree),
    // made read-only there (mount_setattr, the whole subtree) and attached to that same fd, so a
    // container swapping the path meanwhile cannot redirect or escape the remount.
    Fd target(open_path_no_symlinks(p));
    if (target.fd < 0) {
      if (errno == ENOENT) continue;
      die_err(errno, strf("bind mount %s read-only", p.c_str()));
    }
    Fd tree((int)syscall(SYS_open_tree, target.fd, "", AT_EMPTY_PATH | AT_RECURSIVE | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
    if (tree.fd < 0) die_err(errno, strf("bind mount %s read-only", p.c_str()));
    struct {
      uint64_t set, clr, prop, userns;
    } attr = {MOUNT_ATTR_RDONLY, 0, 0, 0};
    if (syscall(SYS_mount_setattr, tree.fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
      die_err(errno, strf("remount %s read-only", p.c_str()));
    if (syscall(SYS_move_mount, tree.fd, "", target.fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
      die_err(errno, strf("bind mount %s read-only", p.c_str()));
  }
  // runc's read-only /dev: remounted once everything in it is made (a fresh tmpfs, by path: the
  // container has not run anything yet that could have replaced it).
  unsigned long dev_ro = plan.devRemountFlags;
  if (dev_ro && mount("", "/dev", nullptr, MS_REMOUNT | dev_ro, nullptr) < 0) die_err(errno, "remount /dev read-only");
  if (plan.rootfsReadonly) {
    unsigned long f = MS_BIND | MS_REMOUNT | MS_RDONLY | locked_flags("/");
    if (mount("", "/", nullptr, f, nullptr) < 0) die_err(errno, "remount / read-only");
  }
  if (plan.rootPropagationExplicit) {
    if (mount("", "/", nullptr, plan.rootPropagation, nullptr) < 0)
      die_err(errno, "set propagation of /");
  }
}

void bind_console(int slave) {
  // /dev is the container's: /dev itself and /dev/console are opened without following links,
  // the mount point created O_EXCL, and the slave bound from its own fd (no name lookup).
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  Fd dev((int)syscall(SYS_openat2, AT_FDCWD, "/dev", &how, sizeof how));
  if (dev.fd < 0) die_err(errno, "bind console: open /dev");
  how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  Fd target((int)syscall(SYS_openat2, dev.fd, "console", &how, sizeof how));
  if (target.fd < 0 && errno == ENOENT) {
    int fd = openat(dev.fd, "console", O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) die_err(errno, "create /dev/console");
    close(fd);
    target = Fd((int)syscall(SYS_openat2, dev.fd, "console", &how, sizeof how));
  }
  if (target.fd < 0) die_err(errno, errno == ELOOP ? "bind console: /dev/console is a symlink" : "bind console: open /dev/console");
  struct stat st;
  if (fstat(target.fd, &st) < 0) die_err(errno, "stat /dev/console");
  if (S_ISDIR(st.st_mode)) die("bind console: /dev/console is a directory");
  Fd tree((int)syscall(SYS_open_tree, slave, "", AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
  if (tree.fd < 0) die_err(errno, "bind mount the console on /dev/console");
  if (syscall(SYS_move_mount, tree.fd, "", target.fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    die_err(errno, "bind mount the console on /dev/console");
}
