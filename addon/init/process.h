// The container process: terminal, executable lookup, hooks, and the final sequence to execve.
#pragma once
#include <sys/types.h>

#include <string>
#include <vector>

#include "plan.gen.h"

// setsid, and with process.terminal: a pty from the container's /dev/ptmx, its master sent on
// console_fd, the slave as stdio and controlling terminal (bound on /dev/console if asked).
void setup_terminal(const PlanProcess &proc, int console_fd, bool bind_dev_console);
// args[0] resolved with the plan env's PATH; errors use runc's wording.
std::string lookup_executable(const PlanProcess &proc);
// Runs each hook (fork+exec, `state` on stdin, timeout); `phase` names them in errors.
// `cwd` (when not empty): the hook's working directory (runc: the rootfs for createContainer).
void run_hooks(const std::vector<PlanHook> &hooks, const std::string &state, const char *phase, const std::string &cwd = "");
// Everything up to the exec that can fail and must be reported while the parent still listens:
// close_range (close-on-exec), rlimits, no_new_privs, seccomp (without no_new_privs),
// apparmor/selinux labels, capabilities and user switch, umask, cwd (verified inside the root).
void prepare_process(const PlanProcess &proc, int listener_fd, pid_t host_pid);
// Whether setgroups(2) may be called in the process's user namespace (decided by stage 0 from
// the host's /proc: "deny" there makes the call fail, and runc skips it).
void set_setgroups_allowed(bool allowed);
// Seccomp when no_new_privs is set (as late as possible: before startContainer hooks and execve).
void load_late_seccomp(const PlanProcess &proc, int listener_fd, pid_t host_pid);
// execve of the resolved executable with the plan's args and env.
[[noreturn]] void exec_process(const PlanProcess &proc, const std::string &exe);
