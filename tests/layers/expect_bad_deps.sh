#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs check_deps.sh on a manifest with the bad fixture layer and a cycle,
# and passes only when it fails for each of the right reasons.
set -u
here=$(dirname "$0")
out=$("$here/check_deps.sh" "$1" 2>&1)
rc=$?
echo "$out"
[ "$rc" = 1 ] || { echo "expected exit 1, got $rc"; exit 1; }
for want in "deps_fixture may not use core: .*deps_fixture.c:[0-9]+:" \
            "deps_fixture \(.*\) calls punch_agent_new of core" \
            "cycle: cycle_a cycle_b cycle_a"; do
    grep -qE "$want" <<<"$out" || { echo "missing: $want"; exit 1; }
done
# The real layers alone pass: only the fixture lines failed.
if grep -v -E 'deps_fixture|cycle' <<<"$out" | grep -q 'check_deps:'; then
    echo "a real layer failed too"; exit 1
fi
echo "the dependency check caught the fixture and the cycle"
