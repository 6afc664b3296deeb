#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# docs.api_reference_catches: the documentation check fails on a header with
# undocumented functions, naming exactly those, and passes the others.
# usage: expect_undocumented.sh SOURCE_DIR
set -u
src=$1
out=$(python3 "$src/scripts/api_man.py" --check "$src/tests/docs/undocumented_fixture.h" 2>&1)
rc=$?
fail() { echo "FAIL: $*" >&2; echo "$out" >&2; exit 1; }
[ "$rc" = 1 ] || fail "api_man.py --check exited $rc on the fixture, want 1"
got=$(echo "$out" | sed -n 's/^  undocumented_fixture.h: //p' | sort | tr '\n' ' ')
[ "$got" = "punch_fixture_alone punch_fixture_shares_a_comment " ] ||
    fail "named '$got' as undocumented, want punch_fixture_alone punch_fixture_shares_a_comment"
echo "ok: the check names the 2 undocumented functions of the fixture and passes the 3 documented ones"
