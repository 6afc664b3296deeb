#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# examples/punch_chat (the sans-I/O API in a program's own poll loop) through
# a real punchd, in a network namespace of its own where loopback is the
# only interface: bob waits, alice connects, a line crosses each way.
. "$(dirname "$0")/netns.sh"
CHAT=${PUNCH_CHAT:?set PUNCH_CHAT to the punch_chat example binary}

start_punchd --listen 127.0.0.1:0
port=$(port_of 1)

# bob: says "hello alice" once he has a path, keeps stdin open until told.
(echo "hello alice"; while [ ! -e "$TMP/stop" ]; do sleep 0.05; done) |
    timeout --foreground 30 "$CHAT" 127.0.0.1 "$port" bob >"$TMP/bob.out" 2>"$TMP/bob.err" &
bob=$!
next_event registered >/dev/null || fail "bob did not register: $(cat "$TMP/bob.err")"
# alice: says "hello bob", leaves (closing the peer) once bob's line came.
(echo "hello bob"; for _ in $(seq 400); do [ -s "$TMP/alice.out" ] && break; sleep 0.05; done) |
    timeout --foreground 30 "$CHAT" 127.0.0.1 "$port" alice bob >"$TMP/alice.out" 2>"$TMP/alice.err"
rc=$?
touch "$TMP/stop"
wait "$bob"; bob_rc=$?
[ "$rc" = 0 ] || fail "alice exited $rc: $(cat "$TMP/alice.err")"
[ "$bob_rc" = 0 ] || fail "bob exited $bob_rc (want 0: alice closed): $(cat "$TMP/bob.err")"
[ "$(cat "$TMP/bob.out")" = "hello bob" ] || fail "bob got '$(cat "$TMP/bob.out")'"
[ "$(cat "$TMP/alice.out")" = "hello alice" ] || fail "alice got '$(cat "$TMP/alice.out")'"
grep -q '^path to bob: direct' "$TMP/alice.err" || fail "no direct path event: $(cat "$TMP/alice.err")"
grep -q '^alice closed: peer closed' "$TMP/bob.err" || fail "bob missed the goodbye: $(cat "$TMP/bob.err")"
pass "punch_chat: a line each way on a direct path, and the goodbye"
