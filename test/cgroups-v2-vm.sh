#!/bin/bash
# Runs the cgroup v2 tests (test/cgroups-v2.test.ts: the manager; test/cgroups-v2-container.test.ts:
# whole containers through bin/tsrun; the kill cases of test/crash.test.ts; test/rootless-cgroup-v2.test.ts: a rootless
# container in a delegated subtree, memory limit enforced) against a real cgroup v2 kernel inside the
# emulated VM of ../shared/vm (this host is hybrid). Ends with "N passed, N failed, N skipped"
# (what scripts/run-tests.mjs reads). Exit 124/125 from the VM script = infrastructure failure.
set -u
root="$(cd "$(dirname "$0")/.." && pwd)"
vm="${TSRUN_VM_SCRIPT:-$root/../shared/vm/run-in-cgroup2-vm.sh}"
[ -x "$vm" ] || vm=/work/shared/vm/run-in-cgroup2-vm.sh
if [ ! -x "$vm" ]; then
  echo "cgroup v2 VM: $vm not found: the v2 tests did NOT run against a real kernel"
  echo "0 passed, 0 failed, 1 skipped"
  exit 0
fi
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
start=$(date +%s)
# uvu's own -r (not node -r): without it uvu imports test files as ES modules, which Node 22
# cannot do for our extension-less TypeScript imports.
# Also the crash tests' kill cases (test/crash.test.ts, 3 kills per command: the VM is 10-60x
# slower) so that the v2 manager's cleanup after a killed tsrun is proven on a v2 kernel too.
# (2100 s: the rootless cases add up to ~6 minutes when other VMs share the host.)
VM_TIMEOUT="${VM_TIMEOUT:-2100}" "$vm" -e VM_TIMEOUT -e CRASH_KILLS=3 -e TEST_GREP=killed "$root" -- \
  "$root/node_modules/node/bin/node" "$root/node_modules/uvu/bin.js" -r esbuild-register -c false test "(cgroups-v2(-container)?|crash|rootless-cgroup-v2)\\.test\\.ts$" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
secs=$(( $(date +%s) - start ))
echo "cgroup v2 VM: exit $rc after ${secs}s"
if [ "$rc" = 124 ] || [ "$rc" = 125 ]; then
  echo "cgroup v2 VM: infrastructure failure; the v2 tests did NOT run"
  exit "$rc"
fi
total=$(sed -n 's/.*Total:[^0-9]*\([0-9][0-9]*\).*/\1/p' "$out" | tail -1)
passed=$(sed -n 's/.*Passed:[^0-9]*\([0-9][0-9]*\).*/\1/p' "$out" | tail -1)
skipped=$(sed -n 's/.*Skipped:[^0-9]*\([0-9][0-9]*\).*/\1/p' "$out" | tail -1)
total=${total:-0}; passed=${passed:-0}; skipped=${skipped:-0}
failed=$(( total - passed - skipped ))
if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then failed=1; fi
grep -q 'REAL-KERNEL tests run against this cgroup v2 host' "$out" || { echo "cgroup v2 VM: the guest was not a cgroup v2 host: real-kernel tests did NOT run"; failed=$((failed + 1)); }
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
