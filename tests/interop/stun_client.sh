#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Debian's `stun` client (RFC 3489, classic messages without the magic
# cookie) against punchd, with and without an alternate address.
. "$(dirname "$0")/lib.sh"
command -v stun >/dev/null || fail "the stun client is not installed (apt-get install stun-client)"

start_punchd --listen 127.0.0.1:0 --alt 127.0.0.2
port=$(port_of 1) alt_port=$(port_of 2)
src=$(free_udp_port)
out=$(timeout 60 stun "127.0.0.1:$port" -v -p "$src" 2>&1)
grep -q "MappedAddress = 127.0.0.1:$src\$" <<<"$out" || { echo "$out"; fail "mapped address is not 127.0.0.1:$src"; }
grep -q "ChangedAddress = 127.0.0.2:$alt_port\$" <<<"$out" || { echo "$out"; fail "CHANGED-ADDRESS is not 127.0.0.2:$alt_port"; }
# Tests II (change IP and port) and III (change port) get answers from the
# other sockets; with no NAT on loopback the client must call it open.
for t in "test I = 1" "test II = 1" "test III = 1" "Primary: Open"; do
    grep -q "$t" <<<"$out" || { echo "$out"; fail "expected '$t'"; }
done
# Its CHANGE-REQUESTs ask for the other IP, then the other port.
for from in "127.0.0.2:$port" "127.0.0.1:$alt_port"; do
    grep -q "SourceAddress = $from\$" <<<"$out" || { echo "$out"; fail "no answer came from $from"; }
done
pass "stun client with --alt: mapped 127.0.0.1:$src, open, answers from the changed IP and port"
stop_punchd

# Without --alt the client still learns its address; its CHANGE-REQUESTs
# (which cannot be honoured) get no answer rather than a misleading one.
start_punchd --listen 127.0.0.1:0
port=$(port_of 1)
src=$(free_udp_port)
out=$(timeout 60 stun "127.0.0.1:$port" -v -p "$src" 2>&1)
grep -q "MappedAddress = 127.0.0.1:$src\$" <<<"$out" || { echo "$out"; fail "mapped address is not 127.0.0.1:$src"; }
grep -q "test II = 0" <<<"$out" || { echo "$out"; fail "test II should get no answer without --alt"; }
kill -USR1 "$PUNCHD_PID"
counters=$(next_event counters) || fail "no counters event"
[ "$(json_field "$counters" unsupported)" -ge 1 ] || fail "unanswerable CHANGE-REQUESTs not counted: $counters"
pass "stun client without --alt: mapped 127.0.0.1:$src, change requests counted and unanswered"
