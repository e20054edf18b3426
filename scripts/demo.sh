#!/bin/sh
# Makes an example bundle (a busybox rootfs and `tsrun spec`'s config, set to run a command
# without a terminal) and runs it with tsrun. Usage: scripts/demo.sh [DIR]
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-/tmp/tsrun-demo}
rm -rf "$dir"
mkdir -p "$dir/rootfs/bin" "$dir/rootfs/proc" "$dir/rootfs/dev" "$dir/rootfs/sys" "$dir/rootfs/tmp" "$dir/rootfs/etc"
cp /bin/busybox "$dir/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$dir/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$dir/rootfs/etc/passwd"
"$repo/bin/tsrun" spec --bundle "$dir"
"$repo/node_modules/node/bin/node" -e '
  const fs = require("fs"), f = process.argv[1], c = JSON.parse(fs.readFileSync(f, "utf8"));
  c.process.terminal = false;
  c.process.args = ["sh", "-c", "echo hello from $(hostname): pid $$, uid $(id -u); ls /"];
  fs.writeFileSync(f, JSON.stringify(c, null, 2));' "$dir/config.json"
exec "$repo/bin/tsrun" --root "$dir/state" run --bundle "$dir" tsrun-demo
