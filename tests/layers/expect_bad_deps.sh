#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs check_deps.sh on a manifest with the bad fixture layer and a cycle,
# and passes only when it fails for each of the right reasons; then on the
# real manifest with io declaring crypto again (issue 11), which the
# ceilings must refuse.
#
# usage: expect_bad_deps.sh FIXTURE_MANIFEST REAL_MANIFEST CEILINGS
set -u
here=$(dirname "$0")
out=$("$here/check_deps.sh" "$1" "$3" 2>&1)
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

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
sed '/^io /s/$/ crypto/' "$2" >"$tmp"
grep -q '^io .* crypto$' "$tmp" || { echo "no io line in $2"; exit 1; }
out=$("$here/check_deps.sh" "$tmp" "$3" 2>&1)
rc=$?
echo "$out"
[ "$rc" = 1 ] || { echo "io declaring crypto: expected exit 1, got $rc"; exit 1; }
grep -qE "io may use crypto, above its ceiling" <<<"$out" || { echo "missing: io above its ceiling"; exit 1; }
echo "the dependency check caught the fixture, the cycle and io declaring crypto"
