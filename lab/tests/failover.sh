#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Peers with two servers (issue 15), behind two port-restricted-cone NATs:
# punchd A on 198.51.100.1 and punchd B on 198.51.100.2 (one server node,
# two processes); every punch is given `--server A --server B`. Alice talks
# to bob directly, a numbered datagram every 50 ms; dave listens beside
# bob. A is stopped (SIGKILL: it says nothing): alice, bob and dave must be
# registered at B within 10 s, every datagram alice sent must reach bob on
# the unchanged direct path, and a new peer on alice's site (carol) must
# register at B and reach dave directly there.
. "$(dirname "$0")/lib.sh"
B=${PUNCH_BUILD_DIR:?}
PUNCH=$B/apps/punch PUNCHD=$B/apps/punchd
FAILOVER_BOUND_MS=${FAILOVER_BOUND_MS:-10000}
A_ADDR=198.51.100.1:3478 B_ADDR=198.51.100.2:3478
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# wait_line FILE REGEX SECONDS: poll (bounded) until FILE has a line matching
wait_line() {
    local i
    for ((i = 0; i < $3 * 100; i++)); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.01; done
    return 1
}
# at NAME SERVER: NAME's latest registered event names SERVER
at() { grep '"event":"registered"' "$TMP/$1.ev" 2>/dev/null | tail -1 | grep -q "\"server\":\"$2\""; }
wait_at() {
    local i
    for ((i = 0; i < $3 * 100; i++)); do at "$1" "$2" && return 0; sleep 0.01; done
    return 1
}
# side NODE NAME ARGS...: punch as NAME on NODE knowing A then B; its PID
# (punch's own) in $TMP/NAME.pid, events in $TMP/NAME.ev
side() {
    local node=$1 name=$2; shift 2
    lab exec "$node" -- sh -c 'echo $$ >"$0"; exec "$@"' "$TMP/$name.pid" \
        env XDG_CONFIG_HOME="$TMP/$name" "$PUNCH" --server "$A_ADDR" --server "$B_ADDR" \
        --name "$name" --events "$TMP/$name.ev" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
}

lab up different-nats --nat-a port-restricted-cone --nat-b port-restricted-cone >/dev/null
lab exec server -- sh -c 'echo $$ >"$0"; exec "$@"' "$TMP/a.pid" "$PUNCHD" --listen "$A_ADDR" \
    --key "$TMP/a.key" --events "$TMP/a.ev" 2>/dev/null </dev/null &
lab exec server -- "$PUNCHD" --listen "$B_ADDR" --key "$TMP/b.key" --events "$TMP/b.ev" \
    2>/dev/null </dev/null &
wait_for "$TMP/a.ev"
wait_for "$TMP/b.ev"
for name in bob dave; do
    (while [ -d "$TMP" ] && [ ! -e "$TMP/stop" ]; do sleep 0.05; done) | side bob "$name" listen --datagram &
    wait_at "$name" "$A_ADDR" 10 || fail "$name did not register at A: $(cat "$TMP/$name.err")"
done
(i=0; while [ -d "$TMP" ] && [ ! -e "$TMP/stop_alice" ]; do i=$((i + 1)); echo "#$i"; record "$TMP/alice.sent" "$i"; sleep 0.05; done) |
    side alice alice connect bob --datagram --timeout 60 &
wait_line "$TMP/alice.ev" '"event":"path".*"kind":"direct"' 10 || fail "no direct path: $(cat "$TMP/alice.err")"
wait_line "$TMP/bob.out" '^#3$' 5 || fail "bob hears nothing from alice"
paths_alice=$(grep -c '"event":"path"' "$TMP/alice.ev")
paths_bob=$(grep -c '"event":"path"' "$TMP/bob.ev")

t0=$(now_ms)
kill -KILL "$(cat "$TMP/a.pid")"
for name in alice bob dave; do
    wait_at "$name" "$B_ADDR" 15 || fail "$name not registered at B 15 s after A died: $(tail -3 "$TMP/$name.err")"
done
moved=$(($(now_ms) - t0))
[ "$moved" -le "$FAILOVER_BOUND_MS" ] || fail "failover took $moved ms (bound $FAILOVER_BOUND_MS)"
ok "A killed: alice, bob and dave registered at B within $moved ms"

grep -q '"event":"closed"' "$TMP/alice.ev" "$TMP/bob.ev" && fail "a session closed: $(grep -h closed "$TMP"/*.ev)"
[ "$(grep -c '"event":"path"' "$TMP/alice.ev")" = "$paths_alice" ] || fail "alice's path changed"
[ "$(grep -c '"event":"path"' "$TMP/bob.ev")" = "$paths_bob" ] || fail "bob's path changed"
touch "$TMP/stop_alice"
sent=$(cat "$TMP/alice.sent")
wait_line "$TMP/bob.out" "^#$sent\$" 5 || fail "bob did not get alice's last datagram #$sent"
got=$(sort -u "$TMP/bob.out" | grep -c '^#')
[ "$got" -ge "$sent" ] || fail "bob got $got of alice's $sent datagrams across the failover"
ok "the direct session went on: $got of $sent datagrams, no path change, nothing closed"

(echo "hello dave"; while [ -d "$TMP" ] && [ ! -e "$TMP/stop" ]; do sleep 0.05; done) |
    side alice carol connect dave --datagram --timeout 20 &
wait_line "$TMP/dave.out" '^hello dave$' 20 || fail "dave did not hear carol: $(cat "$TMP/carol.err")"
at carol "$B_ADDR" || fail "carol is not registered at B"
wait_line "$TMP/carol.ev" '"event":"path".*"peer":"dave","kind":"direct"' 5 ||
    fail "carol has no direct path to dave: $(grep -h '"event":"path"' "$TMP/carol.ev")"
touch "$TMP/stop"
for name in bob dave carol; do kill -TERM "$(cat "$TMP/$name.pid")" 2>/dev/null || true; done
ok "carol, A listed first and dead, registered at B and reached dave directly"
