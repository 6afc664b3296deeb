#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Address-validation tokens (issue 10, cold start), with the real punch and
# punchd on loopback in a namespace of their own: the first `punch connect`
# keeps punchd's token beside known_peers; the second registers in one
# flight with it (its `registered` event says by_token, punchd counts the
# token taken) and is introduced before discovery's REGISTER is even
# answered (CONNECT went with the token's REGISTER). A token that no longer
# works (forged, or punchd restarted with a new secret) is a counted drop
# and the connect goes on with the cookie, as before.
. "$(dirname "$0")/netns.sh"
PUNCH=${PUNCH:?set PUNCH to the punch binary}

start_punchd --listen 127.0.0.1:0 --key "$TMP/server.key"
server=127.0.0.1:$(port_of 1)
tokfile() { echo "$TMP/alice/punch/servers/$server"; }

listen() {
    rm -f "$TMP/bob.ev"
    (echo "hello alice"; while [ ! -e "$TMP/stop" ]; do sleep 0.05; done) |
        XDG_CONFIG_HOME="$TMP/bob" "$PUNCH" --server "$server" --name bob \
            --events "$TMP/bob.ev" listen --datagram >"$TMP/bob.out" 2>"$TMP/bob.err" &
    BOB=$!
    trap 'stop_bob; stop_punchd; rm -rf "$TMP"' EXIT
    wait_grep "$TMP/bob.ev" registered || { cat "$TMP/bob.err"; fail "bob did not register"; }
}
connect() {
    listen
    rm -f "$TMP/alice.ev" "$TMP/alice.out"
    (echo "hello bob"; for _ in $(seq 200); do [ -s "$TMP/alice.out" ] && break; sleep 0.05; done) |
        XDG_CONFIG_HOME="$TMP/alice" timeout --foreground 30 "$PUNCH" --server "$server" --name alice \
            --events "$TMP/alice.ev" connect --datagram bob --timeout 20 \
            >"$TMP/alice.out" 2>"$TMP/alice.err" || { cat "$TMP/alice.err"; fail "connect failed ($1)"; }
    [ "$(cat "$TMP/alice.out")" = "hello alice" ] || fail "alice got '$(cat "$TMP/alice.out")' ($1)"
    grep -q '"event":"path".*"kind":"direct"' "$TMP/alice.ev" || fail "no direct path ($1)"
    stop_bob
}
stop_bob() {
    [ -n "${BOB:-}" ] || return 0
    touch "$TMP/stop"; kill -TERM "$BOB" 2>/dev/null; wait "$BOB" 2>/dev/null; rm -f "$TMP/stop"; BOB=
}
# counter NAME: punchd's counter now (SIGUSR1 makes it tell them).
counter() {
    kill -USR1 "$PUNCHD_PID"
    json_field "$(next_event counters)" "$1"
}
# line_of EVENT: the line number of alice's first EVENT.
line_of() { grep -n "\"event\":\"$1\"" "$TMP/alice.ev" | head -1 | cut -d: -f1; }

connect "first start"
grep -q '"event":"registered".*"by_token":false' "$TMP/alice.ev" || fail "the first start had a token?"
[ -s "$(tokfile)" ] || fail "no token kept in $(tokfile)"
[ "$(stat -c %a "$(tokfile)")" = 600 ] || fail "the token file is not mode 600"
grep -qE '^[A-Za-z0-9+/]{43}= [0-9a-f]{48} eim [0-9]+$' "$(tokfile)" || fail "token file: $(cat "$(tokfile)")"
[ "$(counter token_accepted)" = 0 ] || fail "a token was taken on the first start"
pass "the first start registers with a cookie and keeps punchd's token (nat eim)"

connect "second start"
grep -q '"event":"registered".*"by_token":true' "$TMP/alice.ev" ||
    fail "the second start did not register by token: $(grep registered "$TMP/alice.ev")"
grep -q '"event":"registered".*"by_token":true' "$TMP/bob.ev" || fail "bob's second start had no token"
n=$(counter token_accepted); [ "$n" = 2 ] || fail "punchd counted $n tokens taken, want 2 (alice, bob)"
[ "$(counter token_replayed)" = 0 ] || fail "copies of a token REGISTER counted as replays"
intro=$(line_of introduced) reg=$(line_of registered)
[ -n "$intro" ] && [ "$intro" -lt "$reg" ] ||
    fail "introduced (line $intro) not before registered (line $reg): CONNECT waited"
pass "the second start registers in one flight and CONNECT goes with it"

# A forged token: one hex digit changed. Counted, no answer; the HELLO
# beside it gets a cookie and the connect goes on.
read -r key tok nat rtt <"$(tokfile)"
last=${tok: -1}; [ "$last" = 0 ] && last=1 || last=0
echo "$key ${tok%?}$last $nat $rtt" >"$(tokfile)"
connect "forged token"
grep -q '"event":"registered".*"by_token":false' "$TMP/alice.ev" || fail "a forged token was taken"
# (Each datagram is counted: the first try goes as two copies.)
n=$(counter token_bad); [ "$n" -ge 1 ] || fail "punchd counted no bad token"
[ "$(cut -d' ' -f2 "$(tokfile)")" != "${tok%?}$last" ] || fail "no new token kept after the cookie"
pass "a forged token is a counted drop; the cookie takes over and a new token is kept"

# punchd restarted: its new secret knows no old token.
stop_punchd
start_punchd --listen 127.0.0.1:"${server##*:}" --key "$TMP/server.key"
connect "punchd restarted"
grep -q '"event":"registered".*"by_token":false' "$TMP/alice.ev" || fail "an old secret's token was taken"
n=$(counter token_bad); [ "$n" -ge 2 ] || fail "punchd counted $n old tokens, want alice's and bob's"
connect "after the restart"
grep -q '"event":"registered".*"by_token":true' "$TMP/alice.ev" || fail "the new token was not taken"
pass "after punchd restarts, an old token falls back to the cookie, and the new one works"
