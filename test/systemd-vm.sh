#!/bin/bash
# Runs the systemd cgroup driver's container tests (test/systemd-container.test.ts as root,
# test/systemd-rootless.test.ts as the rootless test user with its own systemd instance) inside the
# emulated VM of ../shared/vm booted with systemd (VM_INIT=systemd: systemd 252 + D-Bus on pure
# cgroup v2; this host has no systemd), once against bin/tsrun and once against runc
# (`runc --systemd-cgroup`, the reference: the same checks must hold for it). One guest boot for
# both. Ends with "N passed, N failed, N skipped" (what scripts/run-tests.mjs reads).
# Exit 124/125 from the VM script = infrastructure failure. RUNTIMES="tsrun" (or "runc") runs one.
set -u
root="$(cd "$(dirname "$0")/.." && pwd)"
vm="${TSRUN_VM_SCRIPT:-$root/../shared/vm/run-in-cgroup2-vm.sh}"
[ -x "$vm" ] || vm=/work/shared/vm/run-in-cgroup2-vm.sh
if [ ! -x "$vm" ]; then
  echo "systemd VM: $vm not found: the systemd driver was NOT tested against a real systemd"
  echo "0 passed, 0 failed, 1 skipped"
  exit 0
fi
runtimes="${RUNTIMES:-tsrun runc}"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
start=$(date +%s)
# The guest command: the test file once per runtime, each run's summary kept.
cmd='for rt in '"$runtimes"'; do
  case $rt in tsrun) bin='"$root"'/bin/tsrun ;; runc) bin=/usr/sbin/runc ;; esac
  echo "=== systemd driver tests against $rt ($bin)"
  RUNTIME=$bin '"$root"'/node_modules/node/bin/node '"$root"'/node_modules/uvu/bin.js -r esbuild-register -c false '"$root"'/test "systemd-(container|rootless)\\.test\\.ts$" 2>&1
  echo "=== $rt: exit $?"
done'
VM_INIT=systemd VM_TIMEOUT="${VM_TIMEOUT:-1800}" "$vm" -e VM_TIMEOUT "$root" -- /bin/bash -c "$cmd" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
secs=$(( $(date +%s) - start ))
echo "systemd VM: exit $rc after ${secs}s"
if [ "$rc" = 124 ] || [ "$rc" = 125 ]; then
  echo "systemd VM: infrastructure failure; the systemd driver tests did NOT run"
  exit "$rc"
fi
passed=0; failed=0; skipped=0
# Per runtime: uvu's totals; a run that exited non-zero without a failed test (a crash) is one failure.
for rt in $runtimes; do
  # The guest's stdout and stderr reach us through two readers, so uvu's summary lines can come in
  # any order and another line's text can follow a number ("Skipped:   0=== tsrun: exit 0"):
  # each count is taken wherever it stands in the runtime's section (up to the next runtime's
  # header), as a number (+0).
  read -r t p s < <(sed 's/\x1b\[[0-9;]*m//g' "$out" | awk -v rt="$rt" '/^=== systemd driver tests against /{on=($0 ~ "against "rt" ")} on&&/Total:/{t=$2+0} on&&/Passed:/{p=$2+0} on&&/Skipped:/{s=$2+0} END{print t+0, p+0, s+0}')
  t=${t:-0}; p=${p:-0}; s=${s:-0}
  # No count read is no result, not a pass.
  if [ "$t" = 0 ] && [ "$s" = 0 ]; then echo "systemd VM: no test counts read for $rt"; failed=$((failed + 1)); fi
  # (uvu's Total leaves skipped tests out)
  f=$((t - p)); [ "$f" -ge 0 ] || f=0
  if ! grep -q "=== $rt: exit 0" "$out" && [ "$f" = 0 ]; then echo "systemd VM: the $rt run failed"; f=1; fi
  echo "systemd VM: $rt: $p passed, $f failed, $s skipped"
  passed=$((passed + p)); skipped=$((skipped + s)); failed=$((failed + f))
done
# A guest without systemd (the file then skips everything) is not a pass.
n=$(grep -c 'systemd-container: REAL systemd' "$out")
[ "$n" = "$(echo $runtimes | wc -w)" ] || { echo "systemd VM: systemd was not running in the guest: the tests did NOT run"; failed=$((failed + 1)); }
n=$(grep -c 'systemd-rootless: REAL user manager' "$out")
[ "$n" = "$(echo $runtimes | wc -w)" ] || { echo "systemd VM: the user's systemd instance did not start in the guest: the rootless tests did NOT run"; failed=$((failed + 1)); }
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
