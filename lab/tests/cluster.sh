#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# punchd --cluster in the lab (issue 15): a real redis-server and two
# punchd members on the server node (member 1 on 198.51.100.1, member 2 on
# 198.51.100.2, Redis on the node's loopback); bob registers at member 2,
# alice at member 1, each behind a real NAT. Cones: they connect directly.
# Symmetric NATs: the session is relayed through both members. Redis
# stopped: a connect within member 1 still works, one across members is
# refused with the reason; Redis back: across members works again. And
# alice's NAT rebinding mid-session (punch-nat, SIGHUP, a new port): member
# 1 tells member 2, bob moves to her new endpoint within 7 s.
. "$(dirname "$0")/lib.sh"
B=${PUNCH_BUILD_DIR:?}
PUNCH=$B/apps/punch PUNCHD=$B/apps/punchd
command -v redis-server >/dev/null || { echo "SKIP: redis-server not installed (scripts/setup)"; exit 77; }
M1=198.51.100.1:3478 M2=198.51.100.2:3478

# up TOPOLOGY-ARGS...: the lab, Redis and both members (events in $TMP/c).
up() {
    rm -rf "$TMP/c" && mkdir -p "$TMP/c"
    lab up "$@" >/dev/null
    head -c 32 /dev/urandom >"$TMP/c/secret"
    redis_start
    member 1 "$M1"; member 2 "$M2"
}
redis_start() {
    lab exec server -- redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no \
        </dev/null >>"$TMP/c/redis.log" 2>&1 &
    REDIS=$!
    local i
    for ((i = 0; i < 400; i++)); do
        lab exec server -- redis-cli ping 2>/dev/null | grep -q PONG && return; sleep 0.025
    done
    fail "redis-server did not start: $(cat "$TMP/c/redis.log")"
}
MEMBER_ARGS=() # more punchd options for the members
member() {
    lab exec server -- "$PUNCHD" --listen "$2" --no-tcp "${MEMBER_ARGS[@]}" --key "$TMP/c/m$1.key" \
        --events "$TMP/c/m$1.ev" --cluster redis://127.0.0.1:6379/0 \
        --cluster-secret-file "$TMP/c/secret" 2>"$TMP/c/m$1.err" </dev/null &
    until_grep "$TMP/c/m$1.ev" '"state":"up"' || fail "member $1 did not join: $(cat "$TMP/c/m$1.err")"
}
# until_grep FILE REGEX [N]: bounded wait for more than N matching lines.
until_grep() {
    local i n
    for ((i = 0; i < 400; i++)); do
        n=$(grep -c -- "$2" "$1" 2>/dev/null) || true # nothing while FILE is not there yet
        [ "${n:-0}" -gt "${3:-0}" ] && return 0; sleep 0.025
    done
    return 1
}
# listen NAME MEMBER: NAME on bob's host, registered at MEMBER.
listen() {
    # A fresh events file: the last listen's `registered` must not pass for
    # this one's (a connect would then find the last one's record, of a
    # listener going away, and end with it).
    rm -f "$TMP/c/stop" "$TMP/c/$1.ev"
    (while [ ! -e "$TMP/c/stop" ]; do [ -s "$TMP/c/alice.out" ] || echo "hello alice"; sleep 0.3; done) |
        lab exec bob -- env XDG_CONFIG_HOME="$TMP/c/$1" "$PUNCH" --server "$2" --name "$1" \
            --events "$TMP/c/$1.ev" listen --datagram >"$TMP/c/$1.out" 2>"$TMP/c/$1.err" &
    LISTENER=$!
    until_grep "$TMP/c/$1.ev" '"event":"registered"' || fail "$1 did not register: $(cat "$TMP/c/$1.err")"
}
stop_listen() { touch "$TMP/c/stop"; kill -TERM "$LISTENER" 2>/dev/null || true; wait "$LISTENER" 2>/dev/null || true; }
# connect PEER: alice at member 1 until both have the other's line; sets RC.
connect() {
    rm -f "$TMP/c/alice.out" "$TMP/c/alice.ev"
    RC=0
    (for ((i = 0; i < 60; i++)); do [ -s "$TMP/c/alice.out" ] && [ -s "$TMP/c/$1.out" ] && break
         echo "hello $1"; sleep 0.3; done) |
        lab exec alice -- env XDG_CONFIG_HOME="$TMP/c/alice" timeout --foreground 30 "$PUNCH" \
            --server "$M1" --name alice --events "$TMP/c/alice.ev" connect "$1" --datagram \
            --timeout 20 >"$TMP/c/alice.out" 2>"$TMP/c/alice.err" || RC=$?
}
kind() { grep '"event":"path"' "$TMP/c/$1.ev" | tail -1 | grep -o '"kind":"[^"]*"' | cut -d'"' -f4; }
# across PEER WANT_KIND: alice at member 1 reaches PEER at member 2 on WANT_KIND.
across() {
    rm -f "$TMP/c/$1.out"
    listen "$1" "$M2"
    connect "$1"
    stop_listen
    [ "$RC" = 0 ] || fail "connect across members exited $RC: $(cat "$TMP/c/alice.err")"
    [ "$(sort -u "$TMP/c/$1.out")" = "hello $1" ] || fail "$1 got '$(cat "$TMP/c/$1.out")'"
    [ "$(sort -u "$TMP/c/alice.out")" = "hello alice" ] || fail "alice got '$(cat "$TMP/c/alice.out")'"
    [ "$(kind alice)" = "$2" ] && [ "$(kind "$1")" = "$2" ] ||
        fail "ended $(kind alice) / $(kind "$1"), want $2"
}

up different-nats --nat-a port-restricted-cone --nat-b port-restricted-cone --delay 5ms
across bob direct
ok "cones: alice at member 1 and bob at member 2 connect directly"

# Redis goes away: member 1 says so; a connect within member 1 works, one
# across members is refused with the reason.
lab exec server -- redis-cli shutdown nosave >/dev/null 2>&1 || true
wait "$REDIS" 2>/dev/null || true
until_grep "$TMP/c/m1.ev" '"state":"down"' || fail "member 1 did not say Redis went away"
rm -f "$TMP/c/carol.out"
listen carol "$M1"
connect carol
stop_listen
[ "$RC" = 0 ] && [ "$(sort -u "$TMP/c/alice.out")" = "hello alice" ] ||
    fail "same-member connect without Redis failed ($RC): $(cat "$TMP/c/alice.err")"
listen bob "$M2"
connect bob
stop_listen
[ "$RC" != 0 ] || fail "a connect across members worked without Redis"
grep -q "no such peer" "$TMP/c/alice.err" || fail "alice was not told: $(cat "$TMP/c/alice.err")"
until_grep "$TMP/c/m1.ev" '"event":"cluster-lookup-failed".*"peer":"bob".*"reason":"redis unavailable' ||
    fail "member 1 did not give the reason"
ok "Redis stopped: carol at member 1 reached, bob at member 2 refused ($(grep -o '"reason":"redis unavailable[^"]*"' "$TMP/c/m1.ev" | tail -1))"

ups=$(grep -c '"state":"up"' "$TMP/c/m2.ev")
redis_start
until_grep "$TMP/c/m2.ev" '"state":"up"' "$ups" || fail "member 2 did not rejoin"
for ((i = 0; i < 400; i++)); do
    [ "$(lab exec server -- redis-cli exists punch:member:"$(grep -o '"member":"[0-9a-f]*"' "$TMP/c/m1.ev" | head -1 | cut -d'"' -f4)")" = 1 ] && break
    sleep 0.025
done
across bob direct
ok "Redis back: alice at member 1 reaches bob at member 2 again"
lab down >/dev/null

up different-nats --nat-a symmetric-random --nat-b symmetric-random --delay 5ms
across bob relay
r1=$(grep '"event":"relay-opened"' "$TMP/c/m1.ev" | tail -1 | grep -o '"session":"[0-9a-f]*"')
r2=$(grep '"event":"relay-opened"' "$TMP/c/m2.ev" | tail -1 | grep -o '"session":"[0-9a-f]*"')
[ -n "$r1" ] && [ "$r1" = "$r2" ] || fail "the members did not relay one session: '$r1' / '$r2'"
ok "symmetric NATs: alice at member 1 and bob at member 2 on the relay through both members ($r1)"
lab down >/dev/null

# A NAT rebinding mid-session across members: alice (member 1) and bob
# (member 2) talk directly, each sending a numbered line every 100 ms; alice's
# NAT (punch-nat, random ports) forgets its mappings (SIGHUP), so her packets
# leave from a new public port. She re-registers at member 1, which tells
# member 2 again of their session (cluster-moved), and member 2 tells bob
# where she is now, as one server tells both: data flows both ways again,
# direct, within REBIND_BOUND_MS (without that news, only when their paths
# die and alice asks again: about 10 s). Twice: members relaying, and
# members with --no-relay (no relay half: the news goes all the same).
REBIND_BOUND_MS=${REBIND_BOUND_MS:-7000}
# rebinding LABEL: the case above, with the members of MEMBER_ARGS.
rebinding() {
    up different-nats --backend punch-nat --nat-a port-restricted-cone,ports=random --nat-b port-restricted-cone
    # numbered SIDE: SIDE1, SIDE2... every 100 ms (the last in SIDE.sent)
    numbered() {
        local i=0
        while [ -d "$TMP" ] && [ ! -e "$TMP/c/stop" ]; do i=$((i + 1)); echo "$1$i"; record "$TMP/c/$1.sent" "$i"; sleep 0.1; done
    }
    numbered b | lab exec bob -- env XDG_CONFIG_HOME="$TMP/c/bob" "$PUNCH" --server "$M2" --name bob \
        --events "$TMP/c/bob.ev" listen --datagram >"$TMP/c/bob.out" 2>"$TMP/c/bob.err" &
    until_grep "$TMP/c/bob.ev" '"event":"registered"' || fail "bob did not register: $(cat "$TMP/c/bob.err")"
    numbered a | lab exec alice -- env XDG_CONFIG_HOME="$TMP/c/alice" "$PUNCH" --server "$M1" --name alice \
        --events "$TMP/c/alice.ev" connect bob --datagram --timeout 60 >"$TMP/c/alice.out" 2>"$TMP/c/alice.err" &
    until_grep "$TMP/c/alice.ev" '"event":"path".*"kind":"direct"' && until_grep "$TMP/c/bob.ev" '"event":"path".*"kind":"direct"' ||
        fail "alice and bob found no direct path: $(cat "$TMP/c/alice.err")"
    until_grep "$TMP/c/alice.out" '^b3$' && until_grep "$TMP/c/bob.out" '^a3$' || fail "no data both ways before the rebinding"
    public() { grep '"event":"registered"' "$TMP/c/alice.ev" | tail -1 | grep -o '"public":"[^"]*"' | cut -d'"' -f4; }
    before=$(public)
    # newer FILE TAG N: FILE has a line TAGk with k > N.
    newer() { grep "^$2[0-9]*\$" "$1" | tr -d "$2" | sort -n | tail -1 | { read -r k; [ "${k:-0}" -gt "$3" ]; }; }
    t0=$(($(date +%s%N) / 1000000))
    sent_a=$(cat "$TMP/c/a.sent") sent_b=$(cat "$TMP/c/b.sent")
    kill -HUP "$(cat "/run/punch-lab/$TEST_PREFIX/pids/punch-nat-nat-a.pid")"
    for ((i = 0; i < 1500; i++)); do
        newer "$TMP/c/alice.out" b "$sent_b" && newer "$TMP/c/bob.out" a "$sent_a" && break; sleep 0.01
    done
    took=$(($(date +%s%N) / 1000000 - t0))
    newer "$TMP/c/alice.out" b "$sent_b" && newer "$TMP/c/bob.out" a "$sent_a" ||
        fail "no data both ways 15 s after alice's NAT rebound: $(grep -h '"event":"path"\|attempt' "$TMP/c/alice.ev" "$TMP/c/bob.ev" | tail -6)"
    [ "$took" -le "$REBIND_BOUND_MS" ] || fail "data both ways again only after $took ms (bound $REBIND_BOUND_MS)"
    after=$(public)
    [ -n "$after" ] && [ "$after" != "$before" ] || fail "alice's public endpoint did not change ($before, $after)"
    grep -q '"event":"cluster-moved".*"name":"alice"' "$TMP/c/m1.ev" || fail "member 1 did not tell member 2 that alice moved"
    grep '"event":"path"' "$TMP/c/bob.ev" | tail -1 | grep -q "\"kind\":\"direct\".*\"remote\":\"$after\"" ||
        fail "bob is not on a direct path to alice's new endpoint $after: $(grep '"event":"path"' "$TMP/c/bob.ev" | tail -1)"
    touch "$TMP/c/stop"
    ok "$1: alice's NAT rebound ($before -> $after): member 1 told member 2, bob moved to her new endpoint, data both ways again, direct, in $took ms"
    lab down >/dev/null
}
rebinding "members relaying"
MEMBER_ARGS=(--no-relay)
rebinding "members with --no-relay"
