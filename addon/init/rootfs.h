// The container's root filesystem: mount steps resolved inside the rootfs, devices, pivot_root,
// and what follows it (sysctl, masked and read-only paths).
#pragma once
#include <vector>

#include "plan.gen.h"

// Everything before the exec fifo: "/" propagation, the rootfs bind, mountSteps, devices,
// devSymlinks. Returns the host path of the rootfs actually used (realpath).
// bind_sources: one O_PATH fd per bind mount step, in order (opened by stage 0); each is closed
// once mounted.
std::string setup_rootfs(const CreatePlan &plan, const std::vector<int> &bind_sources);
// Stage 0's half of an id-mapped bind (the step's `idmap`): a detached copy of the source
// (open_tree, recursive for rbind), idmapped with userns_fd (all of it for "ridmap"), and given
// the step's remount flags. Needs the host's CAP_SYS_ADMIN: made before any namespace is joined.
// Returns the tree fd, which the container init only attaches (in place of the O_PATH source).
int make_idmapped_tree(const PlanMountStepMount &step, int userns_fd);
// pivot_root (or MS_MOVE + chroot when noPivot) into rootfs.
void enter_rootfs(const std::string &rootfs, bool no_pivot);
// sysctl, maskedPaths, readonlyPaths, readonly root, explicit root propagation.
void finish_rootfs(const CreatePlan &plan);
// Binds the pty slave (its fd) onto /dev/console (after pivot_root), creating the file if needed.
void bind_console(int slave);
