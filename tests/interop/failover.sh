#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Peers with two servers (issue 15: `punch --server A --server B`, or a
# name with both addresses), with two real punchd on loopback (127.0.0.1
# and 127.0.0.2) in a network namespace of their own: alice, bob and dave
# (who is given cluster.punch.test, both addresses in an /etc/hosts of his
# own mount namespace) register at A (the first to answer); alice and bob talk
# directly, alice sending a numbered datagram every 50 ms. A is stopped:
# all three are registered at B within 10 s (their `registered` events name
# B), every datagram alice sent reaches bob with no new path or close, frank
# and erin's session on A's relay (--relay-only) moves to B's relay, and
# carol, who also lists A first, registers at B and reaches dave there.
. "$(dirname "$0")/netns.sh"
PUNCH=${PUNCH:?set PUNCH to the punch binary}

start_punchd --listen 127.0.0.1:0 --key "$TMP/a.key"
port=$(port_of 1)
a=127.0.0.1:$port b=127.0.0.2:$port
"$PUNCHD" --listen "$b" --key "$TMP/b.key" --events "$TMP/b.ev" 2>"$TMP/b.err" &
PUNCHD_B=$!
PIDS="$PUNCHD_B"
trap 'touch "$TMP/stop" "$TMP/stop_alice"; kill -TERM $PIDS 2>/dev/null; wait; stop_punchd; rm -rf "$TMP"' EXIT
wait_grep "$TMP/b.ev" '"event":"started"' || { cat "$TMP/b.err"; fail "punchd B did not start"; }

# peer NAME ARGS...: punch as NAME knowing A then B, events in NAME.ev
# (exec: in the background, $! is the process that takes a TERM).
peer() {
    local name=$1; shift
    exec env XDG_CONFIG_HOME="$TMP/$name" timeout --foreground 60 "$PUNCH" --server "$a" --server "$b" \
        --name "$name" --events "$TMP/$name.ev" "$@"
}
# dave's servers are one name with both addresses, in an /etc/hosts of his own.
printf '127.0.0.1 cluster.punch.test\n127.0.0.2 cluster.punch.test\n' >"$TMP/hosts"
dave() {
    exec unshare --mount sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$TMP/hosts" \
        env XDG_CONFIG_HOME="$TMP/dave" timeout --foreground 60 "$PUNCH" \
        --server cluster.punch.test:"$port" --name dave --events "$TMP/dave.ev" "$@"
}
# registered_at NAME SERVER: NAME's latest registered event names SERVER.
registered_at() { grep '"event":"registered"' "$TMP/$1.ev" 2>/dev/null | tail -1 | grep -q "\"server\":\"$2\""; }
wait_registered_at() {
    for _ in $(seq 400); do registered_at "$1" "$2" && return 0; sleep 0.025; done
    return 1
}

(while [ -d "$TMP" ] && [ ! -e "$TMP/stop" ]; do sleep 0.05; done) | peer bob listen --datagram >"$TMP/bob.out" 2>"$TMP/bob.err" &
PIDS="$PIDS $!"
(while [ -d "$TMP" ] && [ ! -e "$TMP/stop" ]; do sleep 0.05; done) | dave listen --datagram >"$TMP/dave.out" 2>"$TMP/dave.err" &
PIDS="$PIDS $!"
for n in bob dave; do
    wait_registered_at $n "$a" || { cat "$TMP/$n.err"; fail "$n did not register at A ($a)"; }
done
pass "bob and dave (one name, two addresses) registered at A, the first of their servers"

# alice: numbered datagrams to bob, one every 50 ms, until told to stop.
(i=0; while [ -d "$TMP" ] && [ ! -e "$TMP/stop_alice" ]; do i=$((i + 1)); echo "#$i"; record "$TMP/alice.sent" "$i"; sleep 0.05; done) |
    peer alice connect --datagram bob --timeout 50 >"$TMP/alice.out" 2>"$TMP/alice.err" &
PIDS="$PIDS $!"
wait_grep "$TMP/alice.ev" '"event":"path".*"kind":"direct"' || { cat "$TMP/alice.err"; fail "no direct path"; }
wait_grep "$TMP/bob.out" '^#3$' || fail "bob hears nothing from alice"
paths_before=$(grep -c '"event":"path"' "$TMP/alice.ev")
bob_paths_before=$(grep -c '"event":"path"' "$TMP/bob.ev")

# frank: datagrams to erin on A's relay (both --relay-only), every 100 ms.
(while [ -d "$TMP" ] && [ ! -e "$TMP/stop" ]; do sleep 0.05; done) | peer erin listen --datagram --relay-only >"$TMP/erin.out" 2>"$TMP/erin.err" &
PIDS="$PIDS $!"
wait_registered_at erin "$a" || { cat "$TMP/erin.err"; fail "erin did not register at A"; }
(i=0; while [ -d "$TMP" ] && [ ! -e "$TMP/stop" ]; do i=$((i + 1)); echo "@$i"; sleep 0.1; done) |
    peer frank connect --datagram --relay-only erin --timeout 50 >"$TMP/frank.out" 2>"$TMP/frank.err" &
PIDS="$PIDS $!"
wait_grep "$TMP/frank.ev" "\"event\":\"path\".*\"kind\":\"relay\".*\"remote\":\"$a\"" ||
    { cat "$TMP/frank.err"; fail "frank is not on A's relay"; }
wait_grep "$TMP/erin.out" '^@3$' || fail "erin hears nothing from frank"

stopped=$(date +%s%N)
stop_punchd
for n in alice bob dave erin frank; do
    wait_registered_at $n "$b" || { cat "$TMP/$n.err"; fail "$n not registered at B within 10 s of A stopping"; }
done
moved_ms=$((($(date +%s%N) - stopped) / 1000000))
[ "$moved_ms" -le 10000 ] || fail "failover took $moved_ms ms"
pass "A stopped: alice, bob, dave, erin and frank registered at B ($b) within $moved_ms ms"

# frank and erin's session moves to B's relay and carries datagrams again.
wait_grep "$TMP/frank.ev" "\"event\":\"path\".*\"kind\":\"relay\".*\"remote\":\"$b\"" ||
    { cat "$TMP/frank.err" "$TMP/frank.ev" "$TMP/erin.ev"; fail "frank's session did not move to B's relay"; }
: >"$TMP/erin.out"
wait_grep "$TMP/erin.out" '^@' || fail "erin hears nothing from frank through B's relay"
relay_ms=$((($(date +%s%N) - stopped) / 1000000))
pass "the relayed session moved to B's relay, datagrams again $relay_ms ms after A stopped"

# One more second of datagrams, then every one alice sent must be at bob.
until_n=$(( $(cat "$TMP/alice.sent") + 20 ))
for _ in $(seq 400); do [ "$(cat "$TMP/alice.sent")" -ge "$until_n" ] && break; sleep 0.025; done
grep -q '"event":"closed"' "$TMP/alice.ev" "$TMP/bob.ev" && fail "a session closed: $(grep closed "$TMP"/*.ev)"
[ "$(grep -c '"event":"path"' "$TMP/alice.ev")" = "$paths_before" ] || fail "alice's path changed: $(grep path "$TMP/alice.ev")"
[ "$(grep -c '"event":"path"' "$TMP/bob.ev")" = "$bob_paths_before" ] || fail "bob's path changed"
touch "$TMP/stop_alice"
sent=$(cat "$TMP/alice.sent")
wait_grep "$TMP/bob.out" "^#$sent\$" || fail "bob did not get alice's last datagram #$sent"
got=$(sort -u "$TMP/bob.out" | grep -c '^#')
[ "$got" -ge "$sent" ] || fail "bob got $got of alice's $sent datagrams across the failover"
pass "the direct session went on: $got of $sent datagrams, no path change, nothing closed"

# carol lists A (dead) first: she registers at B and reaches dave there.
echo "hello dave" | peer carol connect --datagram dave --timeout 20 >"$TMP/carol.out" 2>"$TMP/carol.err" &
PIDS="$PIDS $!"
wait_grep "$TMP/dave.out" '^hello dave$' || { cat "$TMP/carol.err"; fail "dave did not hear carol"; }
registered_at carol "$b" || fail "carol is not registered at B: $(grep registered "$TMP/carol.ev")"
grep -q '"event":"path".*"peer":"dave"' "$TMP/carol.ev" || fail "carol has no path to dave"
pass "carol, with A down, registered at B and reached dave through it"
