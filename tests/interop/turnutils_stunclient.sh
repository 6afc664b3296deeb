#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# coturn's turnutils_stunclient (RFC 5389/5780) against punchd, IPv4 and IPv6.
. "$(dirname "$0")/lib.sh"
command -v turnutils_stunclient >/dev/null || fail "turnutils_stunclient is not installed (apt-get install coturn)"

start_punchd --listen 127.0.0.1:0 --listen '[::1]:0' --alt 127.0.0.2
port=$(port_of 1) alt_port=$(port_of 2) port6=$(port_of 5)

out=$(timeout 30 turnutils_stunclient -p "$port" 127.0.0.1 2>&1) || { echo "$out"; fail "IPv4 request failed"; }
grep -qE "UDP reflexive addr: 127\.0\.0\.1:[0-9]+" <<<"$out" || { echo "$out"; fail "no IPv4 reflexive address"; }
pass "IPv4 reflexive address: $(grep -oE 'UDP reflexive addr: [0-9.:]+' <<<"$out" | head -1)"

# RFC 5780 mode: CHANGE-REQUEST answered from the other IP and port.
out=$(timeout 30 turnutils_stunclient -f -p "$port" 127.0.0.1 2>&1) || { echo "$out"; fail "RFC 5780 requests failed"; }
grep -q "Response origin: : 127.0.0.1:$port" <<<"$out" || { echo "$out"; fail "no RESPONSE-ORIGIN 127.0.0.1:$port"; }
grep -q "Response origin: : 127.0.0.2:$alt_port" <<<"$out" || { echo "$out"; fail "no answer from 127.0.0.2:$alt_port"; }
grep -q "Other addr: : 127.0.0.2:$alt_port" <<<"$out" || { echo "$out"; fail "OTHER-ADDRESS is not 127.0.0.2:$alt_port"; }
pass "RFC 5780: answers from 127.0.0.1:$port and 127.0.0.2:$alt_port, OTHER-ADDRESS right"

if [ -n "$port6" ]; then
    out=$(timeout 30 turnutils_stunclient -p "$port6" ::1 2>&1) || { echo "$out"; fail "IPv6 request failed"; }
    grep -qE "UDP reflexive addr: \[?::1\]?:[0-9]+" <<<"$out" || { echo "$out"; fail "no IPv6 reflexive address"; }
    pass "IPv6 reflexive address: $(grep -oE 'UDP reflexive addr: .*' <<<"$out" | head -1)"
fi

kill -TERM "$PUNCHD_PID"
stopped=$(next_event stopped) || fail "no stopped event on SIGTERM"
wait "$PUNCHD_PID"; rc=$?; PUNCHD_PID=
[ "$rc" = 0 ] || fail "punchd exited $rc on SIGTERM"
[ "$(json_field "$stopped" answered)" -ge 4 ] || fail "answers not counted: $stopped"
pass "clean stop on SIGTERM: $stopped"
