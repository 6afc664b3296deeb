#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# punchd --cluster (issue 15), names across three members sharing a real
# redis-server: a name registered at one member cannot be taken by another
# key at another member (refused with one server's hint); the owner moving
# to another member takes its record along at once; the records of a
# member that stops are ignored within its 3 s heartbeat, not their 90 s.
. "$(dirname "$0")/netns.sh"
. "$(dirname "$0")/cluster_lib.sh"

start_redis
member 1 3478; member 2 3488; member 3 3498
for n in 1 2 3; do
    wait_grep "$TMP/m$n.ev" "$UP" || fail "member $n did not join: $(cat "$TMP/m$n.err")"
done
pass "three members connected to Redis"
# owner NAME: the member id in NAME's record in Redis.
owner() { redis-cli -n 3 --raw getrange "punch:name:$1" 4 11 | head -c 8 | od -An -tx1 | tr -d ' \n'; }

# bob (his own key) at member 2; "bob" with mallory's key at member 1.
listen bob 127.0.0.1:3488
[ "$(owner bob)" = "$(member_id 2)" ] || fail "bob's record does not name member 2"
XDG_CONFIG_HOME="$TMP/mallory" timeout --foreground 10 "$PUNCH" --server 127.0.0.1:3478 \
    --name bob --events "$TMP/mallory.ev" listen --datagram </dev/null \
    >"$TMP/mallory.out" 2>"$TMP/mallory.err" && fail "a second key took bob's name"
grep -q "the name belongs to another key; punchd frees it 90 s after that key's last keepalive" \
    "$TMP/mallory.err" || fail "mallory was not given one server's hint: $(cat "$TMP/mallory.err")"
wait_grep "$TMP/m1.ev" '"event":"cluster-name-taken".*"name":"bob"' ||
    fail "member 1 did not report the taken name"
curl -fsS http://127.0.0.1:9471/metrics | grep -q '^punchd_refused_total{reason="name_taken"} [1-9]' ||
    fail "member 1 did not count the refusal as one server does: $(curl -fsS http://127.0.0.1:9471/metrics | grep refused)"
[ "$(owner bob)" = "$(member_id 2)" ] || fail "mallory's registration overwrote bob's record"
connect bob 127.0.0.1:3498 --timeout 20 || { cat "$TMP/alice.err"; fail "alice at member 3 did not reach bob"; }
stop_listen
[ "$(sort -u "$TMP/alice.out")" = "hello from bob" ] || fail "alice got '$(cat "$TMP/alice.out")', not bob"
pass "bob's name is his key's cluster-wide: mallory refused at member 1 ($(grep -o 'the name belongs[^;]*' "$TMP/mallory.err")), alice at member 3 still reaches bob"

# bob (proof: his key's REGISTER) moves to member 1: his record follows at once.
listen bob 127.0.0.1:3478
[ "$(owner bob)" = "$(member_id 1)" ] || fail "bob's record still names $(owner bob), not member 1"
connect bob 127.0.0.1:3498 --timeout 20 || { cat "$TMP/alice.err"; fail "alice did not reach bob at member 1"; }
stop_listen
pass "bob re-registered at member 1 owns his record there at once; alice at member 3 reaches him"

# carol at member 2; member 2 is killed (no goodbye). Its heartbeat lapses
# within 3 s; carol's record, still in Redis, is then ignored.
listen carol 127.0.0.1:3488
start=$(date +%s%N)
kill -KILL "$M2"; wait "$M2" 2>/dev/null; M2=
for _ in $(seq 400); do [ "$(redis-cli -n 3 exists "punch:member:$(member_id 2)")" = 0 ] && break; sleep 0.025; done
gone_ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$(redis-cli -n 3 exists "punch:member:$(member_id 2)")" = 0 ] || fail "member 2's heartbeat outlived it"
[ "$(redis-cli -n 3 exists punch:name:carol)" = 1 ] || fail "carol's record is gone already: nothing tested"
refused_connect carol 127.0.0.1:3478 || fail "alice reached carol through a dead member"
wait_grep "$TMP/m1.ev" '"event":"cluster-lookup-failed".*"peer":"carol".*"reason":"the member it was registered at is gone"' ||
    fail "member 1 did not say carol's member is gone: $(tail -2 "$TMP/m1.ev")"
[ "$gone_ms" -le 4000 ] || fail "member 2's records lingered $gone_ms ms"
stop_listen
pass "member 2 killed: its records ignored after $gone_ms ms (heartbeat TTL 3 s; record TTL 90 s)"

# carol comes back at member 3: her record is hers again at once.
listen carol 127.0.0.1:3498
[ "$(owner carol)" = "$(member_id 3)" ] || fail "carol's record still names $(owner carol)"
connect carol 127.0.0.1:3478 --timeout 20 || { cat "$TMP/alice.err"; fail "alice did not reach carol at member 3"; }
stop_listen
pass "carol re-registered at member 3 and is reached from member 1"
