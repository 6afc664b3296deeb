#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# TURN over TLS and TCP (punch --turn turns://..., turn://...?transport=tcp;
# issue 15): the networks that pass only TCP. coturn (Debian's turnserver,
# long-term credentials) listens for TLS on 198.51.100.2:5349 with a
# certificate for that address, made here by `openssl req` and signed by a
# test CA, and for TCP (and UDP) on :3478; punchd --no-relay beside it;
# alice and bob behind port-restricted cones. r1 drops every datagram
# between the two sides (no direct path, and punchd relays nothing) and r3
# every datagram to and from coturn's address: TURN over UDP is blocked,
# TCP and TLS pass.
#  1. turns:// on both sides (--turn-ca the test CA, default port 5349):
#     the session comes up on a relay path of technique turn on both;
#     numbered datagrams
#     cross each way byte-identical, none twice. Meanwhile carol, with a
#     turn:// (UDP) server, gets no relayed address (r3 drops her Allocates).
#  2. A stream (256 KiB one way, 64 KiB back, random bytes) through
#     turns:// alone, byte-identical: messages of every length, so
#     ChannelData's padding on the stream (RFC 8656 §12.5) is exercised.
#  3. turn://...?transport=tcp on both sides: datagrams cross the same way.
#  4. A CA that did not sign coturn's certificate: bob says, in one line
#     naming the server, that verification failed (an attempt event of
#     technique turn too), gets no relayed address, and alice cannot
#     reach him (connect exits 1 at its timeout).
. "$(dirname "$0")/turn_lib.sh"
B=${PUNCH_BUILD_DIR:?}
PUNCH=$B/apps/punch PUNCHD=$B/apps/punchd
command -v turnserver >/dev/null || { echo "SKIP: no turnserver (scripts/setup installs coturn)"; exit 77; }
command -v openssl >/dev/null || { echo "SKIP: no openssl (scripts/setup installs it)"; exit 77; }
LABX=("$PUNCH_LAB" --prefix "$TEST_PREFIX")
# TURN_DEBUG=DIR keeps the run's files (events, outputs, coturn's log) there.
[ -z "${TURN_DEBUG:-}" ] || trap 'rc=$?; cp -r "$TMP/." "$TURN_DEBUG/"; cleanup' EXIT
TLS_URL=turns://alice:secret@198.51.100.2
TCP_URL=turn://alice:secret@198.51.100.2?transport=tcp
UDP_URL=turn://alice:secret@198.51.100.2

# A test CA, coturn's certificate for 198.51.100.2 signed by it, and
# another CA that signed nothing of coturn's.
make_certs() {
    local c=$TMP/certs
    mkdir -p "$c"
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${ec[@]}" -keyout "$c/ca.key" -out "$c/ca.pem" -days 1 \
        -subj "/CN=punch lab test CA" 2>/dev/null
    openssl req -x509 "${ec[@]}" -keyout "$c/other.key" -out "$c/other.pem" -days 1 \
        -subj "/CN=another CA" 2>/dev/null
    openssl req "${ec[@]}" -keyout "$c/turn.key" -out "$c/turn.csr" -subj "/CN=198.51.100.2" 2>/dev/null
    printf 'subjectAltName=IP:198.51.100.2\n' >"$c/ext"
    openssl x509 -req -in "$c/turn.csr" -CA "$c/ca.pem" -CAkey "$c/ca.key" -CAcreateserial \
        -out "$c/turn.pem" -days 1 -extfile "$c/ext" 2>/dev/null || fail "openssl could not sign coturn's certificate"
}

start_servers() {
    lab up different-nats --nat-a port-restricted-cone --nat-b port-restricted-cone \
        --delay 5ms >/dev/null
    "${LABX[@]}" exec server -- turnserver -n --listening-ip=198.51.100.2 --listening-port=3478 \
        --tls-listening-port=5349 --cert="$TMP/certs/turn.pem" --pkey="$TMP/certs/turn.key" \
        --relay-ip=198.51.100.2 --lt-cred-mech --user=alice:secret --realm=punch.test \
        --no-cli --no-dtls --pidfile="$TMP/turn.pid" --userdb="$TMP/turndb" \
        --log-file=stdout --simple-log >"$TMP/turn.log" 2>&1 </dev/null &
    wait_grep "$TMP/turn.log" "Total General servers" 10 || fail "coturn did not start: $(tail -3 "$TMP/turn.log")"
    "${LABX[@]}" exec server -- "$PUNCHD" --listen 198.51.100.1:3478 --no-relay \
        --key "$TMP/server.key" --events "$TMP/punchd.ev" 2>"$TMP/punchd.err" </dev/null &
    wait_grep "$TMP/punchd.ev" '"event":"started"' 5 || fail "punchd did not start: $(cat "$TMP/punchd.err")"
}

# r3 drops every datagram to or from coturn's address (TCP passes, counted).
udp_to_turn_blocked() {
    lab exec r3 -- nft -f - <<'EOF'
table inet onlytcp {
    chain to_turn {
        type filter hook forward priority -10; policy accept;
        ip daddr 198.51.100.2 meta l4proto udp counter drop
        ip saddr 198.51.100.2 meta l4proto udp counter drop
        ip daddr 198.51.100.2 tcp dport { 3478, 5349 } counter accept
    }
}
EOF
}
# udp_dropped / tcp_passed: r3's counters
udp_dropped() { lab exec r3 -- nft list table inet onlytcp | grep 'udp counter' | grep -o 'packets [0-9]*' | awk '{ n += $2 } END { print n + 0 }'; }
tcp_passed() { lab exec r3 -- nft list table inet onlytcp | grep 'tcp dport' | grep -o 'packets [0-9]*' | awk '{ n += $2 } END { print n + 0 }'; }

# listen DIR URL [OPTIONS...] <INPUT: bob listens with --turn URL; waits
# until punchd passes his relayed address on ("offered").
listen() {
    local dir=$1 url=$2; shift 2
    "${LABX[@]}" exec bob -- env XDG_CONFIG_HOME="$TMP/bob" "$PUNCH" --server 198.51.100.1 \
        --name bob --turn "$url" $(ca_opt "$url") --events "$dir/bob.ev" listen "$@" \
        >"$dir/bob.out" 2>"$dir/bob.err" <&0 &
    BOB=$!
    wait_grep "$dir/bob.ev" '"event":"turn".*"offered":true' 10 ||
        fail "bob's relayed address was not offered: $(grep -h 'turn\|attempt' "$dir/bob.ev" "$dir/bob.err" | tail -5)"
}
# ca_opt URL: --turn-ca for a turns:// URL
ca_opt() { [[ $1 == turns://* ]] && echo "--turn-ca=$TMP/certs/ca.pem" || true; }

# datagrams NAME URL: numbered datagrams both ways through coturn over URL.
datagrams() {
    local D=$TMP/$1 url=$2 t0 side na nb
    mkdir -p "$D"
    listen "$D" "$url" --datagram < <(feed bob "$D")
    t0=$(now_us)
    "${LABX[@]}" exec alice -- env XDG_CONFIG_HOME="$TMP/alice" timeout --foreground 60 \
        "$PUNCH" --server 198.51.100.1 --name alice --turn "$url" $(ca_opt "$url") --events "$D/alice.ev" \
        connect bob --datagram --timeout 30 >"$D/alice.out" 2>"$D/alice.err" < <(feed alice "$D") &
    ALICE=$!
    for side in alice bob; do
        wait_grep "$D/$side.ev" '"event":"path".*"kind":"relay","technique":"turn"' 10 ||
            fail "$1: $side has no path through coturn: $(grep -h 'path\|attempt\|closed\|turn' "$D/$side.ev" | tail -6)"
    done
    wait_more "$D/alice.out" bob 20 10 && wait_more "$D/bob.out" alice 20 10 ||
        fail "$1: datagrams through coturn: $(received "$D/alice.out" bob) from bob, $(received "$D/bob.out" alice) from alice"
    local ms; ms=$(ms_since "$t0")
    touch "$D/stop"
    wait "$ALICE" 2>/dev/null || true
    kill -TERM "$BOB" 2>/dev/null || true
    wait "$BOB" 2>/dev/null || true
    ! grep -q '"kind":"direct"' "$D/alice.ev" "$D/bob.ev" || fail "$1: a direct path through the block"
    [ "$(last_path "$D/alice.ev")" = relay/turn ] && [ "$(last_path "$D/bob.ev")" = relay/turn ] ||
        fail "$1: ended on $(last_path "$D/alice.ev") / $(last_path "$D/bob.ev")"
    # coturn saw alice's NAT (over TCP: UDP to it is dropped).
    grep -q '"event":"turn".*"mapped":"203\.0\.113\.' "$D/alice.ev" ||
        fail "$1: alice's mapped address is not her NAT's: $(grep -m1 '"event":"turn"' "$D/alice.ev")"
    na=$(intact "$D/alice.out" bob) nb=$(intact "$D/bob.out" alice)
    ok "$1: relay/turn on both in $ms ms, alice got $na datagrams from bob and bob $nb from alice, all intact, none twice"
}

# ---- 1: turns://, while UDP to coturn goes nowhere ----
tls_and_no_udp() {
    local C=$TMP/carol
    mkdir -p "$C"
    # carol asks for an allocation over UDP: r3 drops it.
    (while [ ! -e "$C/stop" ]; do sleep 0.1; done) |
        "${LABX[@]}" exec alice -- env XDG_CONFIG_HOME="$TMP/carol" timeout --foreground 60 "$PUNCH" \
            --server 198.51.100.1 --name carol --turn "$UDP_URL" --events "$C/carol.ev" listen \
            >/dev/null 2>"$C/carol.err" &
    local carol=$! tcp0; tcp0=$(tcp_passed)
    datagrams tls "$TLS_URL"
    [ "$(tcp_passed)" -gt "$tcp0" ] || fail "tls: no TCP packet to coturn counted at r3"
    grep -q '"event":"registered"' "$C/carol.ev" || fail "carol did not register"
    ! grep -q '"event":"turn"' "$C/carol.ev" || fail "carol got a relayed address over blocked UDP: $(grep turn "$C/carol.ev")"
    [ "$(udp_dropped)" -gt 0 ] || fail "r3 dropped no datagram to coturn: carol never asked?"
    touch "$C/stop"
    kill -TERM "$carol" 2>/dev/null || true
    wait "$carol" 2>/dev/null || true
    ok "UDP to coturn blocked (r3 dropped $(udp_dropped) datagrams, carol over UDP got no relayed address); TLS and TCP passed ($(tcp_passed) packets)"
}

# ---- 2: a stream through turns:// alone ----
stream() {
    local D=$TMP/s rc=0 brc=0
    mkdir -p "$D"
    head -c 262144 /dev/urandom >"$D/a.bin"
    head -c 65536 /dev/urandom >"$D/b.bin"
    listen "$D" "$TLS_URL" <"$D/b.bin"
    "${LABX[@]}" exec alice -- env XDG_CONFIG_HOME="$TMP/alice" timeout --foreground 60 \
        "$PUNCH" --server 198.51.100.1 --name alice --turn "$TLS_URL" --turn-ca "$TMP/certs/ca.pem" \
        --events "$D/alice.ev" connect bob --timeout 30 <"$D/a.bin" >"$D/alice.out" 2>"$D/alice.err" || rc=$?
    wait "$BOB" || brc=$?
    [ "$rc" = 0 ] && [ "$brc" = 0 ] ||
        fail "stream: connect exited $rc, listen $brc: $(tail -2 "$D/alice.err" "$D/bob.err")"
    cmp -s "$D/a.bin" "$D/bob.out" || fail "stream: bob got $(stat -c %s "$D/bob.out") bytes, not alice's 262144"
    cmp -s "$D/b.bin" "$D/alice.out" || fail "stream: alice got $(stat -c %s "$D/alice.out") bytes, not bob's 65536"
    [ "$(last_path "$D/alice.ev")" = relay/turn ] && [ "$(last_path "$D/bob.ev")" = relay/turn ] ||
        fail "stream: ended on $(last_path "$D/alice.ev") / $(last_path "$D/bob.ev")"
    ok "stream: 256 KiB alice to bob and 64 KiB back through coturn over TLS, byte-identical"
}

# ---- 4: a CA that did not sign coturn's certificate ----
wrong_ca() {
    local D=$TMP/w rc=0
    mkdir -p "$D"
    (while [ ! -e "$D/stop" ]; do sleep 0.1; done) |
        "${LABX[@]}" exec bob -- env XDG_CONFIG_HOME="$TMP/bob" "$PUNCH" --server 198.51.100.1 \
            --name bob --turn "$TLS_URL" --turn-ca "$TMP/certs/other.pem" --events "$D/bob.ev" \
            listen --datagram >"$D/bob.out" 2>"$D/bob.err" &
    BOB=$!
    wait_grep "$D/bob.err" "certificate verification failed" 10 ||
        fail "wrong CA: bob did not say verification failed: $(cat "$D/bob.err")"
    wait_grep "$D/bob.ev" '"event":"registered"' 10 || fail "wrong CA: bob did not register"
    "${LABX[@]}" exec alice -- env XDG_CONFIG_HOME="$TMP/alice" timeout --foreground 30 \
        "$PUNCH" --server 198.51.100.1 --name alice --events "$D/alice.ev" \
        connect bob --datagram --timeout 3 </dev/null >"$D/alice.out" 2>"$D/alice.err" || rc=$?
    touch "$D/stop"
    kill -TERM "$BOB" 2>/dev/null || true
    wait "$BOB" 2>/dev/null || true
    local line; line=$(grep "certificate verification failed" "$D/bob.err")
    [ "$(wc -l <<<"$line")" = 1 ] && grep -q "the TURN server 198.51.100.2:5349 over TLS" <<<"$line" ||
        fail "wrong CA: not one line naming the server: $line"
    grep -q '"event":"attempt".*"technique":"turn".*"why":"TLS: certificate verification failed' "$D/bob.ev" ||
        fail "wrong CA: no attempt event of technique turn: $(grep turn "$D/bob.ev")"
    ! grep -q '"event":"turn"' "$D/bob.ev" || fail "wrong CA: bob got a relayed address"
    [ "$rc" = 1 ] || fail "wrong CA: alice's connect exited $rc, not 1"
    ! grep -q '"event":"path"' "$D/alice.ev" "$D/bob.ev" || fail "wrong CA: a path opened"
    ok "wrong CA: '$line'; no relayed address, alice's connect exited 1 with no path"
}

make_certs
start_servers
block on
udp_to_turn_blocked
tls_and_no_udp
stream
datagrams tcp "$TCP_URL"
wrong_ca
