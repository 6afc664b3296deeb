#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The core's TURN client (src/core/turn.c) against a real coturn with
# long-term credentials, in a network namespace of its own (loopback
# only): two clients allocate, permit each other's relayed address, and a
# datagram crosses each way relay to relay, by Send indication before the
# channels are bound and by ChannelData after; a wrong password is refused
# with coturn's 401. Then punch --turn: the agent allocates at coturn and
# tells its relayed address (a "turn" event), or, with a wrong password,
# why not (an "attempt" event of technique turn). The same over TCP
# (?transport=tcp) and TLS (turns://localhost, coturn's certificate made
# here and signed by a test CA given with --turn-ca); with another CA, one line
# names the server and the failed verification, and no relayed address;
# when coturn stops, the dropped TLS connection is told the same way, and
# punch connects again and allocates anew once coturn is back.
# Peers relaying through coturn, and the move to a direct path: lab.turn,
# over TCP and TLS: lab.turn_tls.
. "$(dirname "$0")/netns.sh"
TURN_RELAY=${TURN_RELAY:?set TURN_RELAY to the turn_relay test program}
PUNCH=${PUNCH:?set PUNCH to the punch binary}
command -v turnserver >/dev/null || fail "turnserver is not installed (apt-get install coturn)"

port=$(free_udp_port) tls_port=$(($(free_udp_port) + 1))
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -keyout "$TMP/ca.key" -out "$TMP/ca.pem" -days 1 -subj "/CN=test CA" 2>/dev/null
openssl req -x509 "${ec[@]}" -keyout "$TMP/other.key" -out "$TMP/other.pem" -days 1 -subj "/CN=other CA" 2>/dev/null
openssl req "${ec[@]}" -keyout "$TMP/turn.key" -out "$TMP/turn.csr" -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$TMP/ext"
openssl x509 -req -in "$TMP/turn.csr" -CA "$TMP/ca.pem" -CAkey "$TMP/ca.key" -CAcreateserial \
    -out "$TMP/turn.pem" -days 1 -extfile "$TMP/ext" 2>/dev/null || fail "openssl could not sign a certificate"
# start_turn LOG: coturn on $port (UDP, TCP) and $tls_port (TLS), logging to LOG.
start_turn() {
    turnserver -n --listening-ip=127.0.0.1 --listening-port="$port" --relay-ip=127.0.0.1 \
        --tls-listening-port="$tls_port" --cert="$TMP/turn.pem" --pkey="$TMP/turn.key" \
        --lt-cred-mech --user=alice:secret --realm=punch.test --allow-loopback-peers \
        --no-cli --no-dtls --pidfile="$TMP/turn.pid" --userdb="$TMP/turndb" \
        --log-file=stdout --simple-log >"$1" 2>&1 &
    TURN=$!
    wait_grep "$1" "Total General servers" || { cat "$1"; fail "coturn did not start"; }
}
TURN= BOB=
# (stop: bob's stdin loop ends too)
trap 'touch "$TMP/stop"; kill $BOB $TURN 2>/dev/null; wait $BOB $TURN 2>/dev/null; stop_punchd; rm -rf "$TMP"' EXIT
start_turn "$TMP/turn.log"

out=$(timeout --foreground 30 "$TURN_RELAY" "127.0.0.1:$port" alice secret) || { echo "$out"; fail "relay through coturn"; }
echo "$out"
grep -q "^send-indication: bob got 'from alice by send-indication', alice got 'from bob by send-indication'" <<<"$out" ||
    fail "no datagrams by Send indication"
grep -q "^channeldata: bob got 'from alice by channeldata', alice got 'from bob by channeldata'" <<<"$out" ||
    fail "no datagrams by ChannelData"
pass "allocated at coturn; data both ways relay to relay, by Send indication and by ChannelData"

out=$(timeout --foreground 30 "$TURN_RELAY" "127.0.0.1:$port" alice wrong --expect-refusal) ||
    { echo "$out"; fail "a wrong password was not refused"; }
grep -q "credentials are incorrect" "$TMP/turn.log" || fail "coturn did not see wrong credentials"
pass "a wrong password: $out"

start_punchd --listen 127.0.0.1:0 --key "$TMP/server.key"
server=127.0.0.1:$(port_of 1)
# turn_listen PASSWORD [URL [OPTIONS...]]: bob listens with --turn (URL, by
# default UDP to coturn) until $TMP/stop appears.
turn_listen() {
    local url=${2:-turn://alice:$1@127.0.0.1:$port}
    rm -f "$TMP/stop" "$TMP/bob.ev"
    (while [ ! -e "$TMP/stop" ]; do sleep 0.05; done) |
        XDG_CONFIG_HOME="$TMP/bob" timeout --foreground 30 "$PUNCH" --server "$server" --name bob \
            --turn "$url" "${@:3}" --events "$TMP/bob.ev" listen \
            >/dev/null 2>"$TMP/bob.err" &
    BOB=$!
}
stop_bob() { touch "$TMP/stop"; kill "$BOB" 2>/dev/null; wait "$BOB" 2>/dev/null; BOB=; }

turn_listen secret
wait_grep "$TMP/bob.ev" '"event":"turn"' || { cat "$TMP/bob.err"; fail "punch --turn: no turn event"; }
line=$(grep '"event":"turn"' "$TMP/bob.ev")
stop_bob
grep -qE "\"relayed\":\"127\.0\.0\.1:[0-9]+\".*\"server\":\"127\.0\.0\.1:$port\"" <<<"$line" ||
    fail "punch --turn: the turn event is not a relayed address at coturn: $line"
relayed=$(grep -oE '"relayed":"[^"]+"' <<<"$line")
[ "$relayed" != "\"relayed\":\"127.0.0.1:$port\"" ] || fail "the relayed address is coturn's own"
pass "punch --turn allocated at coturn: $relayed"

turn_listen wrong
wait_grep "$TMP/bob.ev" '"technique":"turn"' || { cat "$TMP/bob.err"; fail "punch --turn: a wrong password not told"; }
line=$(grep '"technique":"turn"' "$TMP/bob.ev")
stop_bob
grep -q '"event":"attempt".*"why":"the TURN server refused .*401' <<<"$line" ||
    fail "punch --turn, wrong password: $line"
! grep -q '"event":"turn"' "$TMP/bob.ev" || fail "punch --turn: a relayed address with a wrong password"
pass "punch --turn with a wrong password: $(grep -o '"why":"[^"]*"' <<<"$line")"

# Over TCP and TLS: the same allocation; coturn saw a TCP connection.
# The TLS one by name (checked as a DNS name, sent as SNI).
for url in "turn://alice:secret@127.0.0.1:$port?transport=tcp" "turns://alice:secret@localhost:$tls_port"; do
    turn_listen secret "$url" $([[ $url == turns://* ]] && echo "--turn-ca=$TMP/ca.pem")
    wait_grep "$TMP/bob.ev" '"event":"turn"' || { cat "$TMP/bob.err"; fail "$url: no turn event"; }
    line=$(grep '"event":"turn"' "$TMP/bob.ev" | head -1)
    stop_bob
    grep -qE "\"relayed\":\"127\.0\.0\.1:[0-9]+\".*\"server\":\"127\.0\.0\.1:($port|$tls_port)\"" <<<"$line" ||
        fail "$url: the turn event is not a relayed address at coturn: $line"
    pass "punch --turn over $([[ $url == turns://* ]] && echo TLS || echo TCP): $(grep -oE '"relayed":"[^"]+"' <<<"$line")"
done

# Another CA: verification fails, said once naming the server; no relayed address.
turn_listen secret "turns://alice:secret@127.0.0.1:$tls_port" --turn-ca="$TMP/other.pem"
wait_grep "$TMP/bob.ev" '"technique":"turn"' || { cat "$TMP/bob.err"; fail "turns:// with another CA: nothing told"; }
stop_bob
grep -q '"event":"attempt".*"why":"TLS: certificate verification failed' "$TMP/bob.ev" ||
    fail "turns:// with another CA: $(grep turn "$TMP/bob.ev")"
[ "$(grep -c "^punch: the TURN server 127.0.0.1:$tls_port over TLS: certificate verification failed" "$TMP/bob.err")" = 1 ] ||
    fail "turns:// with another CA: not one line naming the server: $(cat "$TMP/bob.err")"
! grep -q '"event":"turn"' "$TMP/bob.ev" || fail "turns:// with another CA: a relayed address"
pass "turns:// with another CA: $(grep 'certificate verification' "$TMP/bob.err")"

# The TLS connection drops (coturn stops): said once naming the server, and
# as an attempt of technique turn; punch goes on and connects again, 1 s
# later, then 2, 4 s...: coturn refusing is said once, not per try. Once
# coturn is back, a new TLS connection and a new allocation: an attempt
# saying so, then a turn event with the new relayed address.
turn_listen secret "turns://alice:secret@localhost:$tls_port" --turn-ca="$TMP/ca.pem"
wait_grep "$TMP/bob.ev" '"event":"turn"' || { cat "$TMP/bob.err"; fail "turns://: no turn event before the drop"; }
kill "$TURN"
wait "$TURN" 2>/dev/null || true
TURN=
wait_grep "$TMP/bob.ev" '"event":"attempt".*"technique":"turn".*"why":"TLS: ' ||
    { cat "$TMP/bob.err"; fail "turns://: the dropped connection was not told"; }
wait_grep "$TMP/bob.err" "over TLS: cannot connect" ||
    { cat "$TMP/bob.err"; fail "turns://: no new connection tried after the drop"; }
kill -0 "$BOB" 2>/dev/null || fail "punch ended when the TURN server went away"
start_turn "$TMP/turn2.log"
wait_grep "$TMP/bob.ev" '"why":"the connection to the TURN server is back: allocating anew"' ||
    { cat "$TMP/bob.err"; fail "turns://: coturn back, no new allocation"; }
# the turn events since then (the relayed address, then its "offered")
since_back() { sed -n '/back: allocating anew/,$p' "$TMP/bob.ev" | grep '"event":"turn"'; }
for _ in $(seq 400); do since_back >/dev/null && break; sleep 0.025; done
again=$(since_back | head -1)
[ -n "$again" ] || { cat "$TMP/bob.err"; fail "turns://: coturn back, no new relayed address told"; }
stop_bob
grep -qE "\"relayed\":\"127\.0\.0\.1:[0-9]+\".*\"server\":\"127\.0\.0\.1:$tls_port\"" <<<"$again" ||
    fail "turns://, back: the turn event is not a relayed address at coturn: $again"
[ "$(grep -c "^punch: the TURN server 127.0.0.1:$tls_port over TLS: cannot connect" "$TMP/bob.err")" = 1 ] ||
    fail "turns://, refused: not said once: $(cat "$TMP/bob.err")"
[ "$(grep -c "^punch: the TURN server 127.0.0.1:$tls_port over TLS: " "$TMP/bob.err")" = 2 ] ||
    fail "turns://, dropped: not one line for the drop and one for the refusals: $(cat "$TMP/bob.err")"
pass "the TLS connection dropped: $(grep "^punch: the TURN server" "$TMP/bob.err" | head -1)"
pass "coturn back: $(grep "connected again" "$TMP/bob.err"), $(grep -oE '"relayed":"[^"]+"' <<<"$again")"
