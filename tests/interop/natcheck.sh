#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# punch natcheck against punchd on loopback: no NAT there, so the answer is
# known exactly. (The lab's grid tests name every NAT preset.)
. "$(dirname "$0")/lib.sh"
PUNCH=${PUNCH:?set PUNCH to the punch binary}

start_punchd --listen 127.0.0.1:0 --alt 127.0.0.2
port=$(port_of 1) alt_port=$(port_of 2)
out=$("$PUNCH" --server "127.0.0.1:$port" natcheck --json) || fail "natcheck failed"
want="\"server\":\"127.0.0.1:$port\",\"other\":\"127.0.0.2:$alt_port\""
grep -q "$want" <<<"$out" || fail "natcheck: $out lacks $want"
for kv in '"nat":false' '"mapping":"eim"' '"filtering":"eif"' '"hairpin":true' \
          '"port_allocation":"preserve"'; do
    grep -q "$kv" <<<"$out" || fail "natcheck: $out lacks $kv"
done
local_addr=$(grep -o '"local":"[^"]*"' <<<"$out" | cut -d'"' -f4)
public_addr=$(grep -o '"public":"[^"]*"' <<<"$out" | cut -d'"' -f4)
[ "$local_addr" = "$public_addr" ] || fail "no NAT, yet public $public_addr != local $local_addr"
pass "natcheck --json: $out"

table=$(PUNCH_SERVER="127.0.0.1:$port" "$PUNCH" natcheck) || fail "natcheck (table) failed"
grep -qE '^mapping +eim$' <<<"$table" || { echo "$table"; fail "table lacks mapping eim"; }
pass "natcheck table with \$PUNCH_SERVER"

out=$("$PUNCH" --server "127.0.0.1:$port" natcheck --json --lifetime --max-wait 1 2>/dev/null) ||
    fail "natcheck --lifetime failed"
grep -q '"lifetime_s":1,"lifetime_at_least":true' <<<"$out" || fail "lifetime: $out"
pass "natcheck --lifetime --max-wait 1: binding alive at 1 s"
stop_punchd

# punchd on one address with its second port (PORT+1 by default; another
# free port here, as its listen port is): the mapping from the two ports,
# filtering unknown.
start_punchd --listen 127.0.0.1:0
port=$(port_of 1)
out=$("$PUNCH" --server "127.0.0.1:$port" natcheck --json) || fail "one address: natcheck failed"
for kv in '"other":""' '"nat":false' '"mapping":"eim"' '"filtering":"unknown"' '"hairpin":true' \
          '"port_allocation":"preserve"'; do
    grep -q "$kv" <<<"$out" || fail "one address: $out lacks $kv"
done
second=$(grep -o '"second_port":[0-9]*' <<<"$out" | cut -d: -f2)
[ -n "$second" ] && [ "$second" != "$port" ] || fail "one address: second port '$second' (port $port)"
pass "natcheck --json against punchd on one address: $out"
stop_punchd

# Errors a user meets: no server, a server without --alt, nobody answering.
out=$("$PUNCH" natcheck 2>&1 </dev/null); rc=$?
[ "$rc" = 2 ] && grep -q "no server" <<<"$out" || fail "no server: rc $rc, '$out'"
out=$("$PUNCH" --server 'nope:x' natcheck 2>&1); rc=$?
[ "$rc" = 2 ] && grep -q "'nope:x' is not HOST\[:PORT\]" <<<"$out" || fail "bad server: rc $rc, '$out'"
start_punchd --listen 127.0.0.1:0 --second-port off
port=$(port_of 1)
out=$("$PUNCH" --server "127.0.0.1:$port" natcheck 2>&1); rc=$?
[ "$rc" = 1 ] && grep -q "gives no OTHER-ADDRESS and names no second port" <<<"$out" ||
    fail "no --alt, no second port: rc $rc, '$out'"
stop_punchd
out=$("$PUNCH" --server "127.0.0.1:$port" natcheck --wait 300 2>&1); rc=$?
[ "$rc" = 1 ] && grep -q "no answer from 127.0.0.1:$port in 300 ms" <<<"$out" || fail "silent server: rc $rc, '$out'"
pass "natcheck errors: no server (2), bad server (2), no --alt nor second port (1), no answer (1)"
