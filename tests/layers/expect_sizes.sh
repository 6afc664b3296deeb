#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs check_sizes.sh on made-up sources and passes only when it fails for
# the right reasons: a strict folder's long file and long function are
# named, while the same in a folder that is not strict is only reported.
set -u
here=$(dirname "$0")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/strict" "$tmp/loose"
long_function() {  # NAME BODY_LINES
    printf 'static int %s(int x)\n{\n' "$1"
    for ((i = 0; i < $2; i++)); do printf '    x += %d;\n' "$i"; done
    printf '    return x;\n}\n'
}
{ long_function fits 76; long_function too_long 77; } >"$tmp/strict/a.c"   # 80 and 81 lines
for ((i = 0; i < 1001; i++)); do echo "/* $i */"; done >"$tmp/strict/b.h"
cp "$tmp/strict/a.c" "$tmp/loose/a.c"
out=$("$here/check_sizes.sh" --root "$tmp" --strict strict 2>&1)
rc=$?
echo "$out"
[ "$rc" = 1 ] || { echo "expected exit 1, got $rc"; exit 1; }
for want in "over: strict/a.c: too_long has 81 lines" "over: strict/b.h has 1001 lines" \
            "over \(reported only\): loose/a.c: too_long has 81 lines"; do
    grep -qE "$want" <<<"$out" || { echo "missing: $want"; exit 1; }
done
if grep -q "fits" <<<"$out"; then echo "an 80-line function was called too long"; exit 1; fi
rm "$tmp/strict/b.h"
sed -i '/too_long/,$d' "$tmp/strict/a.c"
"$here/check_sizes.sh" --root "$tmp" --strict strict || { echo "expected a pass within the limits"; exit 1; }
echo "the size check caught the long file and function"
