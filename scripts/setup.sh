#!/bin/sh
# Installs everything tsrun needs on a fresh Debian 12 machine (as root) and builds it.
# Idempotent: what is already there is not fetched again.
set -eu
cd "$(dirname "$0")/.."

# Build: g++/make/python3 (node-gyp), libseccomp-dev (the addon compiles seccomp filters),
# libsystemd-dev (sd-bus: the addon talks to systemd for the systemd cgroup driver),
# libc6-dev (static libc for tsrun-init). Tests: busybox-static (the rootfs), procps (ps).
# Rootless containers: uidmap (newuidmap/newgidmap for multi-range user namespace mappings).
# The cgroup v2 VM (../shared/vm) wants qemu-system-x86, cpio, xz-utils, kmod, linux-image-amd64.
PKGS="g++ make python3 libc6-dev libseccomp-dev libsystemd-dev pkg-config busybox-static procps util-linux uidmap podman qemu-system-x86 cpio xz-utils kmod linux-image-amd64"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing$missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# npm's own install scripts run only for the packages package.json's allowScripts names
# (esbuild's binary, and the `node` package that fetches the Node 22 build).
if [ ! -x node_modules/node/bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
node_modules/node/bin/node scripts/build.mjs
