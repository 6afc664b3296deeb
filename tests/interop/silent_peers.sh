#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Issue 12, findings 2 and 3, with the real programs: silent strangers do
# not lock `punch listen --keep-open`, and it does not reflect traffic at
# the private endpoints they claim (draft §6.2). In a network namespace of
# its own where loopback is the only interface: punchd, bob listening, the
# attacker (tests/interop/silent_peers.c) registering 20 keys from one
# socket that claim eight ports of a "victim" (127.0.0.66, where a counter
# listens) and CONNECT to bob once each, then alice connecting.
# SILENT_KEYS=N SILENT_SOURCES=S (interop.silent_peers_1000: 1000 keys from
# 100 addresses, 10 each, so punchd's limits per source let all through,
# within about 0.3 s): alice connects right after, while the last of them
# still hold bob's stranger slots. SILENT_MID=1 (interop.silent_peers_mid):
# alice asks in the middle of the burst, once half the keys asked, and
# must have a path within 2 s of the burst's first CONNECT. Bob holds each
# stranger's slot for its answer window (docs/security.md), so he is
# introduced to at least 8 of the keys, not to all.
if [ -z "${PUNCH_IN_NETNS:-}" ]; then
    [ "$(id -u)" = 0 ] || { echo "SKIP: needs root for a network namespace"; exit 77; }
    exec unshare --net env PUNCH_IN_NETNS=1 bash "$0" "$@"
fi
ip link set lo up
. "$(dirname "$0")/lib.sh"
PUNCH=${PUNCH:?set PUNCH to the punch binary}
SILENT=${SILENT_PEERS:?set SILENT_PEERS to the attacker binary}
KEYS=${SILENT_KEYS:-20} SOURCES=${SILENT_SOURCES:-1}
# punchd introduces one source to one target 10 times at once, then once a
# second (issue 12, finding 5): of 20 keys from one socket, 10 reach bob.
PER_SOURCE=$(( (KEYS + SOURCES - 1) / SOURCES ))
INTRODUCED=$(( PER_SOURCE < 10 ? KEYS : 10 * SOURCES ))
ATTACKER=
VICTIM= BOB=
# Everything this test started goes, whatever happens.
cleanup() {
    touch "$TMP/victim.stop" "$TMP/stop"
    [ -n "$ATTACKER" ] && kill -TERM "$ATTACKER" 2>/dev/null && wait "$ATTACKER" 2>/dev/null
    [ -n "${ALICE:-}" ] && kill -TERM "$ALICE" 2>/dev/null && wait "$ALICE" 2>/dev/null
    [ -n "$BOB" ] && kill -TERM "$BOB" 2>/dev/null
    [ -n "$VICTIM" ] && wait "$VICTIM" 2>/dev/null
    [ -n "$BOB" ] && wait "$BOB" 2>/dev/null
    stop_punchd
    rm -rf "$TMP"
}
trap cleanup EXIT

start_punchd --listen 127.0.0.1:0 --key "$TMP/server.key"
server=127.0.0.1:$(port_of 1)

# The victim: counts what reaches 127.0.0.66:5000-5007 until victim.stop.
cat >"$TMP/victim.py" <<'PY'
import os, select, socket, sys
socks = []
for port in range(5000, 5008):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.66", port))
    socks.append(s)
open(sys.argv[1] + ".ready", "w").close()
n = b = 0
while not os.path.exists(sys.argv[1] + ".stop"):
    for s in select.select(socks, [], [], 0.05)[0]:
        b += len(s.recv(2048))
        n += 1
open(sys.argv[1], "w").write("%d %d\n" % (n, b))
PY
python3 "$TMP/victim.py" "$TMP/victim" &
VICTIM=$!
for _ in $(seq 400); do [ -e "$TMP/victim.ready" ] && break; sleep 0.025; done
[ -e "$TMP/victim.ready" ] || fail "the victim's counter did not start"

# wait_for FILE PATTERN COUNT: until FILE has COUNT lines matching (20 s bound).
wait_for() {
    for _ in $(seq 800); do
        [ "$(grep -c -- "$2" "$1" 2>/dev/null)" -ge "$3" ] && return 0
        sleep 0.025
    done
    return 1
}

(while [ ! -e "$TMP/stop" ]; do sleep 0.05; done) |
    XDG_CONFIG_HOME="$TMP/bob" "$PUNCH" --server "$server" --name bob --events "$TMP/bob.ev" \
        listen --keep-open --datagram >"$TMP/bob.out" 2>"$TMP/bob.err" &
BOB=$!
wait_for "$TMP/bob.ev" '"event":"registered"' 1 || { cat "$TMP/bob.err"; fail "bob did not register"; }

victims=$(for p in $(seq 5000 5007); do echo "127.0.0.66:$p"; done)
# alice_connects: alice sends "hello bob" and waits for bob to have it.
alice_connects() {
    (echo "hello bob"; for _ in $(seq 200); do [ -s "$TMP/bob.out" ] && break; sleep 0.05; done) |
        XDG_CONFIG_HOME="$TMP/alice" timeout --foreground 30 "$PUNCH" --server "$server" --name alice \
            --events "$TMP/alice.ev" connect bob --datagram --timeout 20 >"$TMP/alice.out" 2>"$TMP/alice.err"
}
# shellcheck disable=SC2086
SILENT_HALFWAY="$TMP/halfway" "$SILENT" "$server" bob "$KEYS/$SOURCES" $victims \
    >"$TMP/attacker.out" 2>"$TMP/attacker.err" &
ATTACKER=$!
ALICE=
if [ -n "${SILENT_MID:-}" ]; then
    # Alice, in the middle of the burst.
    for _ in $(seq 4000); do [ -e "$TMP/halfway" ] && break; sleep 0.005; done
    [ -e "$TMP/halfway" ] || fail "the attacker did not get half way: $(cat "$TMP/attacker.err")"
    alice_start=$(date +%s%3N)
    alice_connects &
    ALICE=$!
fi
wait "$ATTACKER" || fail "the attacker failed: $(cat "$TMP/attacker.out" "$TMP/attacker.err")"
ATTACKER=
slots=$(( INTRODUCED < 8 ? INTRODUCED : 8 ))
wait_for "$TMP/bob.ev" '"event":"introduced","t_ms":[0-9]*,"peer":"silent' "$slots" ||
    fail "bob was not introduced to $slots strangers: $(grep -c introduced "$TMP/bob.ev")"

if [ -n "$ALICE" ]; then
    wait "$ALICE" || { cat "$TMP/alice.err" "$TMP/bob.err"; fail "alice could not connect in the middle of $KEYS silent strangers"; }
else
    # Alice, while the strangers are there.
    alice_connects || { cat "$TMP/alice.err" "$TMP/bob.err"; fail "alice could not connect past $KEYS silent strangers"; }
fi
wait_for "$TMP/bob.out" "hello bob" 1 || fail "bob got '$(cat "$TMP/bob.out")'"
out=$(cat "$TMP/attacker.out")
grep -q "for $KEYS keys" <<<"$out" || fail "the attacker did not get its $KEYS keys in: $out"
spent=$(sed -E 's/sent ([0-9]+) bytes.*/\1/' <<<"$out")
path_ms=$(grep -m1 '"event":"path"' "$TMP/alice.ev" | grep -o '"t_ms":[0-9]*' | cut -d: -f2)
if [ -n "${SILENT_MID:-}" ]; then
    first=$(sed -n 's/^first CONNECT at //p' "$TMP/attacker.err")
    # From alice's start (her events count from there) to the burst's start.
    took=$(( alice_start + path_ms - first ))
    [ "$took" -le 2000 ] || fail "alice's first path came ${took} ms after the burst started (bound 2000)"
    pass "alice asked $(( alice_start - first )) ms into the burst of $KEYS silent strangers and had a path ${path_ms} ms later, ${took} ms after the burst started; data crossed"
else
    pass "alice connected (first path at t=${path_ms} ms) past $KEYS silent strangers ($INTRODUCED introduced to bob just before); data crossed"
fi

# Every stranger is forgotten: at the deadline, or pushed out.
n=$(grep -c '"event":"introduced","t_ms":[0-9]*,"peer":"silent' "$TMP/bob.ev")
[ "$n" -le "$INTRODUCED" ] || fail "punchd introduced $n of the $KEYS keys from one socket to bob, more than $INTRODUCED"
wait_for "$TMP/bob.ev" '"reason":"\(no handshake within\|pushed out\)' "$n" ||
    fail "bob still holds strangers: $(grep -c '"event":"closed"' "$TMP/bob.ev") closed of $n"
grep '"event":"closed"' "$TMP/bob.ev" | grep '"peer":"alice"' | grep -q 'no handshake\|pushed out' &&
    fail "bob took alice for a stranger"
pass "bob forgot all $n strangers he took of $INTRODUCED introduced ($(grep -c 'no handshake within' "$TMP/bob.ev") at the deadline, $(grep -c 'pushed out' "$TMP/bob.ev") pushed out), never alice"

touch "$TMP/victim.stop"
wait "$VICTIM"
read -r datagrams bytes <"$TMP/victim"
echo "the victim got $datagrams datagrams, $bytes bytes; the attacker sent $spent bytes" \
     "($(awk -v a="$bytes" -v b="$spent" 'BEGIN { printf "%.2f", a / b }')x)"
# Draft §6.2 as issue 12 puts it: never more towards an unverified address
# than the introduction made us spend; at most four probes per key.
[ "$bytes" -le "$spent" ] || fail "the victim got $bytes bytes for the attacker's $spent"
[ "$datagrams" -le $((4 * n)) ] ||
    fail "the victim got $datagrams datagrams from $n keys bob took"
pass "the victim got at most what the attack cost ($bytes <= $spent bytes)"
