#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs check_layers.sh on the impure fixture and passes only when it fails for
# the right reasons: the forbidden include and the forbidden calls are named.
set -u
here=$(dirname "$0")
out=$("$here/check_layers.sh" --dir "$here" --lib "$1" 2>&1)
rc=$?
echo "$out"
[ "$rc" = 1 ] || { echo "expected exit 1, got $rc"; exit 1; }
for want in "forbidden include in a pure layer: .*sys/socket.h" "calls clock_gettime" "calls socket"; do
    grep -qE "$want" <<<"$out" || { echo "missing: $want"; exit 1; }
done
echo "the layer check caught the impure fixture"
