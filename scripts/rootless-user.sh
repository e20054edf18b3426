#!/bin/sh
# Creates (idempotently) the unprivileged user the rootless tests run tsrun as, with subordinate
# id ranges for newuidmap/newgidmap, and prints "<name> <uid> <gid>". Run as root.
#
# What it changes on the host, and nothing else:
# - a system account without password or login shell (useradd --system, /usr/sbin/nologin,
#   home /nonexistent), so nobody can log in as it;
# - one line each in /etc/subuid and /etc/subgid: 65536 subordinate ids starting at
#   TSRUN_ROOTLESS_SUBID (default 1410000000, far above ordinary users' 100000+ ranges).
# The user reaches node, bin/tsrun and the build through the world-readable paths that are
# already there (/work is 0755); the tests give it its own bundle and state directories.
set -eu
name="${TSRUN_ROOTLESS_USER:-tsrun-rootless}"
start="${TSRUN_ROOTLESS_SUBID:-1410000000}"
count=65536
[ "$(id -u)" = 0 ] || { echo "rootless-user.sh: run as root" >&2; exit 1; }
command -v newuidmap >/dev/null 2>&1 || { echo "rootless-user.sh: newuidmap missing (apt-get install uidmap, see scripts/setup.sh)" >&2; exit 1; }
if ! id -u "$name" >/dev/null 2>&1; then
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$name"
fi
for f in /etc/subuid /etc/subgid; do
  touch "$f"
  # Exactly our line, whatever useradd or an earlier run wrote for this user.
  if ! grep -qx "$name:$start:$count" "$f"; then
    tmp="$f.tsrun-$$"
    grep -v "^$name:" "$f" > "$tmp" || true
    echo "$name:$start:$count" >> "$tmp"
    chmod 644 "$tmp"
    mv "$tmp" "$f"
  fi
done
echo "$name $(id -u "$name") $(id -g "$name")"
