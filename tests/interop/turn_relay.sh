#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The core's TURN client (src/core/turn.c) against a real coturn with
# long-term credentials, in a network namespace of its own (loopback
# only): two clients allocate, permit each other's relayed address, and a
# datagram crosses each way relay to relay, by Send indication before the
# channels are bound and by ChannelData after; a wrong password is refused
# with coturn's 401. (punch --turn and the agent's use of it: not yet.)
. "$(dirname "$0")/netns.sh"
TURN_RELAY=${TURN_RELAY:?set TURN_RELAY to the turn_relay test program}
command -v turnserver >/dev/null || fail "turnserver is not installed (apt-get install coturn)"

port=$(free_udp_port)
turnserver -n --listening-ip=127.0.0.1 --listening-port="$port" --relay-ip=127.0.0.1 \
    --lt-cred-mech --user=alice:secret --realm=punch.test --allow-loopback-peers \
    --no-cli --no-tls --no-dtls --pidfile="$TMP/turn.pid" --userdb="$TMP/turndb" \
    --log-file=stdout --simple-log >"$TMP/turn.log" 2>&1 &
TURN=$!
trap 'kill "$TURN" 2>/dev/null; wait "$TURN" 2>/dev/null; rm -rf "$TMP"' EXIT
wait_grep "$TMP/turn.log" "Total General servers" || { cat "$TMP/turn.log"; fail "coturn did not start"; }

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
