#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Relaying through a standard TURN server (issue 15): coturn (Debian's
# turnserver, long-term credentials) on the server's second address,
# punchd --no-relay beside it, alice and bob behind port-restricted cones
# with punch --turn, and r1 dropping every datagram between alice's side
# and bob's, so no direct path can open and punchd relays nothing.
#  1. Both tell punchd their relayed addresses (TURN_ADDR, "offered");
#     the session comes up on a relay path of technique turn on both sides,
#     and numbered datagrams cross each way byte-identical, none twice.
#  2. The block is lifted: hole punching, which went on beside the TURN
#     path, opens a direct path and both sides move to it; datagrams keep
#     crossing, now direct.
#  3. Only bob has --turn (block on again): alice sends straight to his
#     relayed address, he answers through his allocation; datagrams cross.
#  4. A stream (punch connect without --datagram) of 256 KiB of random
#     bytes, 64 KiB back, crosses through coturn alone, byte-identical.
#  5. An older punchd (emulated: r3 drops TURN_ADDR): with the block off,
#     both connect directly as before and each says punchd took no
#     TURN_ADDR (an attempt of technique turn, after 16 tries).
#  6. Two members of a punchd cluster (Redis, --no-relay, on 198.51.100.3
#     and .4), alice at one and bob at the other, the block on: their
#     relayed addresses cross between the members (a TURN cluster message
#     each way), and datagrams cross through coturn, byte-identical, as
#     with one punchd. (Before members passed them: no path at all.)
#     With TURN_RESTART=1 (by hand: TURN_CASES=across_members TURN_RESTART=1),
#     coturn is then restarted: both allocate anew, the new relayed
#     addresses cross between the members, and datagrams flow again
#     within 10 s of both being offered.
# Without TURN candidates in the wire and the agent, nothing connects here.
. "$(dirname "$0")/turn_lib.sh"
B=${PUNCH_BUILD_DIR:?}
PUNCH=$B/apps/punch PUNCHD=$B/apps/punchd
command -v turnserver >/dev/null || { echo "SKIP: no turnserver (scripts/setup installs coturn)"; exit 77; }
LABX=("$PUNCH_LAB" --prefix "$TEST_PREFIX")
# TURN_DEBUG=DIR keeps the run's files (events, outputs, coturn's log) there.
[ -z "${TURN_DEBUG:-}" ] || trap 'rc=$?; cp -r "$TMP/." "$TURN_DEBUG/"; cleanup' EXIT
TURN_URL=turn://alice:secret@198.51.100.2:3478

# start_coturn LOG: coturn on the server's second address; its PID in turn.pid.
start_coturn() {
    "${LABX[@]}" exec server -- turnserver -n --listening-ip=198.51.100.2 --listening-port=3478 \
        --relay-ip=198.51.100.2 --lt-cred-mech --user=alice:secret --realm=punch.test \
        --no-cli --no-tls --no-dtls --pidfile="$TMP/turn.pid" --userdb="$TMP/turndb" \
        --log-file=stdout --simple-log >"$1" 2>&1 </dev/null &
    wait_grep "$1" "Total General servers" 10 || fail "coturn did not start: $(tail -3 "$1")"
}

# The servers: punchd without its relay, coturn on the second address.
start_servers() {
    lab up different-nats --nat-a port-restricted-cone --nat-b port-restricted-cone \
        --delay 5ms >/dev/null
    start_coturn "$TMP/turn.log"
    "${LABX[@]}" exec server -- "$PUNCHD" --listen 198.51.100.1:3478 --no-relay \
        --key "$TMP/server.key" --events "$TMP/punchd.ev" 2>"$TMP/punchd.err" </dev/null &
    wait_grep "$TMP/punchd.ev" '"event":"started"' 5 || fail "punchd did not start: $(cat "$TMP/punchd.err")"
}

# listen DIR [OPTIONS...] <INPUT: bob listens with --turn (stdin passed on:
# a background job's is /dev/null otherwise); waits until punchd passes his
# relayed address on ("offered").
listen() {
    local dir=$1; shift
    "${LABX[@]}" exec bob -- env XDG_CONFIG_HOME="$TMP/bob" "$PUNCH" --server 198.51.100.1 \
        --name bob --turn "$TURN_URL" --events "$dir/bob.ev" listen "$@" >"$dir/bob.out" 2>"$dir/bob.err" <&0 &
    BOB=$!
    wait_grep "$dir/bob.ev" '"event":"turn".*"offered":true' 10 ||
        fail "bob's relayed address was not offered: $(grep -h 'turn\|attempt' "$dir/bob.ev" "$dir/bob.err" | tail -5)"
}

# ---- 1 and 2: datagrams through coturn, then direct ----
datagrams() {
    local D=$TMP/d t0 t n_turn_a n_turn_b a b
    mkdir -p "$D"
    block on
    listen "$D" --datagram < <(feed bob "$D")
    t0=$(now_us)
    "${LABX[@]}" exec alice -- env XDG_CONFIG_HOME="$TMP/alice" timeout --foreground 60 \
        "$PUNCH" --server 198.51.100.1 --name alice --turn "$TURN_URL" --events "$D/alice.ev" \
        connect bob --datagram --timeout 30 >"$D/alice.out" 2>"$D/alice.err" < <(feed alice "$D") &
    ALICE=$!
    for side in alice bob; do
        wait_grep "$D/$side.ev" '"event":"path".*"kind":"relay","technique":"turn"' 10 ||
            fail "$side: no path through coturn: $(grep -h 'path\|attempt\|closed\|turn' "$D/$side.ev" | tail -6)"
    done
    ! grep -q '"kind":"direct"' "$D/alice.ev" "$D/bob.ev" || fail "a direct path through the block"
    wait_more "$D/alice.out" bob 20 10 && wait_more "$D/bob.out" alice 20 10 ||
        fail "datagrams through coturn: $(received "$D/alice.out" bob) from bob, $(received "$D/bob.out" alice) from alice"
    n_turn_a=$(received "$D/alice.out" bob) n_turn_b=$(received "$D/bob.out" alice)
    [ "$(dropped)" -gt 0 ] || fail "the block dropped nothing: hole punching never tried?"
    ! grep -q '"kind":"direct"' "$D/alice.ev" "$D/bob.ev" || fail "a direct path through the block"
    ok "through coturn after $(ms_since "$t0") ms: $(grep -m1 '"technique":"turn"' "$D/alice.ev" | grep -o '"remote":"[^"]*"') (alice), $n_turn_a datagrams from bob, $n_turn_b from alice; r1 dropped $(dropped) direct probes"
    block off
    t=$(now_us)
    for side in alice bob; do
        wait_grep "$D/$side.ev" '"event":"path".*"kind":"direct"' 25 ||
            fail "$side did not move to a direct path once unblocked: $(grep -h 'path\|attempt' "$D/$side.ev" | tail -5)"
    done
    local up_ms; up_ms=$(ms_since "$t")
    wait_more "$D/alice.out" bob $((n_turn_a + 20)) 10 && wait_more "$D/bob.out" alice $((n_turn_b + 20)) 10 ||
        fail "no datagrams after the move to direct"
    touch "$D/stop"
    wait "$ALICE" 2>/dev/null || true
    kill -TERM "$BOB" 2>/dev/null || true
    wait "$BOB" 2>/dev/null || true
    a=$(last_path "$D/alice.ev") b=$(last_path "$D/bob.ev")
    [[ $a == direct/* && $b == direct/* ]] || fail "ended on $a / $b"
    na=$(intact "$D/alice.out" bob) nb=$(intact "$D/bob.out" alice)
    ok "unblocked: direct ($a / $b) after $up_ms ms; in all alice got $na datagrams from bob, bob $nb from alice, all intact, none twice"
}

# ---- 4: only bob has a TURN server ----
# alice (no --turn) sends straight to bob's relayed address; bob answers
# through his allocation to where her datagrams came from.
one_sided() {
    local D=$TMP/o side
    mkdir -p "$D"
    block on
    listen "$D" --datagram < <(feed bob "$D")
    "${LABX[@]}" exec alice -- env XDG_CONFIG_HOME="$TMP/alice" timeout --foreground 60 \
        "$PUNCH" --server 198.51.100.1 --name alice --events "$D/alice.ev" \
        connect bob --datagram --timeout 30 >"$D/alice.out" 2>"$D/alice.err" < <(feed alice "$D") &
    ALICE=$!
    for side in alice bob; do
        wait_grep "$D/$side.ev" '"event":"path".*"kind":"relay","technique":"turn"' 10 ||
            fail "one-sided: $side has no path through coturn: $(grep -h 'path\|attempt\|closed' "$D/$side.ev" | tail -5)"
    done
    wait_more "$D/alice.out" bob 10 10 && wait_more "$D/bob.out" alice 10 10 ||
        fail "one-sided: $(received "$D/alice.out" bob) datagrams from bob, $(received "$D/bob.out" alice) from alice"
    touch "$D/stop"
    wait "$ALICE" 2>/dev/null || true
    kill -TERM "$BOB" 2>/dev/null || true
    wait "$BOB" 2>/dev/null || true
    ! grep -q '"kind":"direct"' "$D/alice.ev" "$D/bob.ev" || fail "one-sided: a direct path through the block"
    local na nb
    na=$(intact "$D/alice.out" bob) nb=$(intact "$D/bob.out" alice)
    ok "only bob with --turn: alice straight to $(grep -m1 '"technique":"turn"' "$D/alice.ev" | grep -o '"remote":"[^"]*"'), $na datagrams from bob, $nb from alice, intact"
    block off
}

# ---- 5: an older punchd, emulated ----
# r3 drops every TURN_ADDR on its way to punchd (UDP payload 0x70 0x09), as
# an older punchd drops the unknown type: the peers go on as before (a
# direct path here, no block), and each says punchd took no TURN_ADDR.
old_punchd() {
    local D=$TMP/old side
    mkdir -p "$D"
    lab exec r3 -- nft -f - <<'EOF'
table inet oldpunchd {
    chain to_punchd {
        type filter hook forward priority -10; policy accept;
        ip daddr 198.51.100.1 udp dport 3478 @th,64,16 0x7009 counter drop
    }
}
EOF
    "${LABX[@]}" exec bob -- env XDG_CONFIG_HOME="$TMP/bob" "$PUNCH" --server 198.51.100.1 \
        --name bob --turn "$TURN_URL" --events "$D/bob.ev" listen --datagram \
        >"$D/bob.out" 2>"$D/bob.err" < <(feed bob "$D") &
    BOB=$!
    wait_grep "$D/bob.ev" '"event":"registered"' 10 || fail "old punchd: bob did not register"
    "${LABX[@]}" exec alice -- env XDG_CONFIG_HOME="$TMP/alice" timeout --foreground 60 \
        "$PUNCH" --server 198.51.100.1 --name alice --turn "$TURN_URL" --events "$D/alice.ev" \
        connect bob --datagram --timeout 30 >"$D/alice.out" 2>"$D/alice.err" < <(feed alice "$D") &
    ALICE=$!
    for side in alice bob; do
        wait_grep "$D/$side.ev" '"event":"path".*"kind":"direct"' 10 ||
            fail "old punchd: $side found no direct path: $(grep -h 'path\|attempt' "$D/$side.ev" | tail -5)"
    done
    wait_more "$D/alice.out" bob 10 10 && wait_more "$D/bob.out" alice 10 10 || fail "old punchd: no datagrams"
    for side in alice bob; do
        wait_grep "$D/$side.ev" '"technique":"turn".*"why":"the server took no TURN_ADDR' 20 ||
            fail "old punchd: $side did not say punchd took no TURN_ADDR: $(grep -h 'turn' "$D/$side.ev" | tail -3)"
    done
    touch "$D/stop"
    wait "$ALICE" 2>/dev/null || true
    kill -TERM "$BOB" 2>/dev/null || true
    wait "$BOB" 2>/dev/null || true
    ! grep -q '"offered":true' "$D/alice.ev" "$D/bob.ev" || fail "old punchd: a relayed address offered"
    local n; n=$(lab exec r3 -- nft list table inet oldpunchd | grep -o 'packets [0-9]*' | cut -d' ' -f2)
    lab exec r3 -- nft delete table inet oldpunchd
    ok "older punchd (r3 dropped $n TURN_ADDR): direct as before ($(last_path "$D/alice.ev")), datagrams intact ($(intact "$D/alice.out" bob) / $(intact "$D/bob.out" alice)), each side told: $(grep -o '"why":"the server took no TURN_ADDR[^(]*' "$D/alice.ev" | head -1)"
}

# ---- 3: a stream through coturn alone ----
stream() {
    local D=$TMP/s rc=0 brc=0
    mkdir -p "$D"
    head -c 262144 /dev/urandom >"$D/a.bin"
    head -c 65536 /dev/urandom >"$D/b.bin"
    block on
    listen "$D" <"$D/b.bin"
    "${LABX[@]}" exec alice -- env XDG_CONFIG_HOME="$TMP/alice" timeout --foreground 60 \
        "$PUNCH" --server 198.51.100.1 --name alice --turn "$TURN_URL" --events "$D/alice.ev" \
        connect bob --timeout 30 <"$D/a.bin" >"$D/alice.out" 2>"$D/alice.err" || rc=$?
    wait "$BOB" || brc=$?
    [ "$rc" = 0 ] && [ "$brc" = 0 ] ||
        fail "stream: connect exited $rc, listen $brc: $(tail -2 "$D/alice.err" "$D/bob.err")"
    cmp -s "$D/a.bin" "$D/bob.out" || fail "stream: bob got $(stat -c %s "$D/bob.out") bytes, not alice's 262144"
    cmp -s "$D/b.bin" "$D/alice.out" || fail "stream: alice got $(stat -c %s "$D/alice.out") bytes, not bob's 65536"
    [ "$(last_path "$D/alice.ev")" = relay/turn ] && [ "$(last_path "$D/bob.ev")" = relay/turn ] ||
        fail "stream: ended on $(last_path "$D/alice.ev") / $(last_path "$D/bob.ev")"
    ! grep -q '"kind":"direct"' "$D/alice.ev" "$D/bob.ev" || fail "stream: a direct path through the block"
    ok "stream: 256 KiB alice to bob and 64 KiB back, through coturn alone, byte-identical"
    block off
}

# ---- 6: peers at two members of a cluster ----
# member N ADDR: punchd --no-relay in the cluster of the Redis on the
# server node's loopback.
member() {
    "${LABX[@]}" exec server -- "$PUNCHD" --listen "$2" --no-relay --no-tcp --key "$TMP/m$1.key" \
        --events "$TMP/m$1.ev" --cluster redis://127.0.0.1:6379/0 \
        --cluster-secret-file "$TMP/secret" 2>"$TMP/m$1.err" </dev/null &
    wait_grep "$TMP/m$1.ev" '"event":"cluster".*"state":"up"' 10 ||
        fail "member $1 did not join: $(cat "$TMP/m$1.err")"
}
across_members() {
    local D=$TMP/x side i
    command -v redis-server >/dev/null || { echo "skipped: no redis-server for the cluster case"; return 0; }
    mkdir -p "$D"
    lab exec server -- ip addr add 198.51.100.3/24 dev eth0
    lab exec server -- ip addr add 198.51.100.4/24 dev eth0
    head -c 32 /dev/urandom >"$TMP/secret"
    lab exec server -- redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no \
        </dev/null >"$TMP/redis.log" 2>&1 &
    for ((i = 0; i < 400; i++)); do
        lab exec server -- redis-cli ping 2>/dev/null | grep -q PONG && break; sleep 0.025
    done
    member 1 198.51.100.3:3478
    member 2 198.51.100.4:3478
    block on
    "${LABX[@]}" exec bob -- env XDG_CONFIG_HOME="$TMP/bob" "$PUNCH" --server 198.51.100.4 \
        --name bob --turn "$TURN_URL" --events "$D/bob.ev" listen --datagram \
        >"$D/bob.out" 2>"$D/bob.err" < <(feed bob "$D") &
    BOB=$!
    wait_grep "$D/bob.ev" '"event":"turn".*"offered":true' 10 ||
        fail "across members: bob's relayed address was not offered: $(grep -h 'turn\|attempt' "$D/bob.ev" "$D/bob.err" | tail -5)"
    "${LABX[@]}" exec alice -- env XDG_CONFIG_HOME="$TMP/alice" timeout --foreground 60 \
        "$PUNCH" --server 198.51.100.3 --name alice --turn "$TURN_URL" --events "$D/alice.ev" \
        connect bob --datagram --timeout 30 >"$D/alice.out" 2>"$D/alice.err" < <(feed alice "$D") &
    ALICE=$!
    for side in alice bob; do
        wait_grep "$D/$side.ev" '"event":"path".*"kind":"relay","technique":"turn"' 15 ||
            fail "across members: $side has no path through coturn: $(grep -h 'path\|attempt\|closed\|turn' "$D/$side.ev" | tail -6)"
    done
    grep -q '"event":"cluster-introduced".*"name":"alice","peer":"bob"' "$TMP/m1.ev" ||
        fail "across members: member 1 did not introduce alice across: $(grep cluster "$TMP/m1.ev")"
    wait_more "$D/alice.out" bob 20 10 && wait_more "$D/bob.out" alice 20 10 ||
        fail "across members: $(received "$D/alice.out" bob) datagrams from bob, $(received "$D/bob.out" alice) from alice"
    [ "${TURN_RESTART:-0}" = 0 ] || restart_coturn_across "$D"
    touch "$D/stop"
    wait "$ALICE" 2>/dev/null || true
    kill -TERM "$BOB" 2>/dev/null || true
    wait "$BOB" 2>/dev/null || true
    ! grep -q '"kind":"direct"' "$D/alice.ev" "$D/bob.ev" || fail "across members: a direct path through the block"
    local na nb
    na=$(intact "$D/alice.out" bob) nb=$(intact "$D/bob.out" alice)
    ok "across two members (--no-relay): through coturn ($(grep -m1 '"technique":"turn"' "$D/alice.ev" | grep -o '"remote":"[^"]*"') at alice), $na datagrams from bob, $nb from alice, intact, none twice"
    block off
}

# coturn restarted under the session across members (D: its files): both
# allocations are gone; each side allocates anew and tells its member the
# new relayed address, which sends the other member a TURN message, which
# tells its peer in a TURN_ADDR of the session: datagrams cross again
# within RESTART_BOUND_MS of both new addresses being offered. This does
# not tell the punchd before that news from this one: coturn's restart is
# noticed about 29 s after it, long after the path died, and alice asking
# again brings the new addresses too (3.6 s there, 2.9 s here, one run
# each, load average 17); unit.test_turn_sim's
# new_allocation_told_to_the_other_side does.
RESTART_BOUND_MS=${RESTART_BOUND_MS:-10000}
offered_relayed() { grep '"event":"turn".*"offered":true' "$1" | tail -1 | grep -o '"relayed":"[^"]*"'; }
restart_coturn_across() {
    local D=$1 side i t na nb old_alice old_bob after ref offered_ms again_ms
    old_alice=$(offered_relayed "$D/alice.ev") old_bob=$(offered_relayed "$D/bob.ev")
    kill -TERM "$(cat "$TMP/turn.pid")"
    for ((i = 0; i < 200; i++)); do kill -0 "$(cat "$TMP/turn.pid")" 2>/dev/null || break; sleep 0.05; done
    t=$(now_us)
    start_coturn "$D/turn.log"
    for side in alice bob; do
        ref=old_$side
        for ((i = 0; i < 600; i++)); do
            after=$(offered_relayed "$D/$side.ev")
            [ "$after" != "${!ref}" ] && break
            sleep 0.05
        done
        [ "$after" != "${!ref}" ] ||
            fail "restart: $side offered no new relayed address: $(grep -h 'turn' "$D/$side.ev" | tail -3)"
    done
    offered_ms=$(ms_since "$t")
    t=$(now_us)
    na=$(received "$D/alice.out" bob) nb=$(received "$D/bob.out" alice)
    wait_more "$D/alice.out" bob $((na + 5)) 15 && wait_more "$D/bob.out" alice $((nb + 5)) 15 ||
        fail "restart: no datagrams through the new allocations: $(grep -h 'path\|attempt\|closed' "$D/alice.ev" "$D/bob.ev" | tail -6)"
    again_ms=$(ms_since "$t")
    [ "$again_ms" -le "$RESTART_BOUND_MS" ] ||
        fail "restart: datagrams crossed again $again_ms ms after both new relayed addresses were offered (bound $RESTART_BOUND_MS)"
    ok "coturn restarted under the session across members: new relayed addresses offered $offered_ms ms after the restart ($(offered_relayed "$D/alice.ev"), $(offered_relayed "$D/bob.ev")), datagrams both ways again $again_ms ms later"
}

start_servers
# TURN_CASES: the cases to run (the cluster case alone with TURN_RESTART=1:
# a recovery check by hand, docs/cluster.md).
for case in ${TURN_CASES:-datagrams one_sided stream old_punchd across_members}; do "$case"; done
