#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# punchd --cluster (issue 15): two punchd members sharing names through a
# real redis-server, all on loopback of a network namespace of the test's
# own. A peer listening at member 2 is reached by a connect at member 1
# (data both ways on a direct path); with Redis stopped each member still
# introduces its own peers, says it is down, and refuses a lookup across
# members with a clear reason; with Redis back, both recover.
. "$(dirname "$0")/netns.sh"

. "$(dirname "$0")/cluster_lib.sh"

start_redis
member 1 3478
member 2 3488
wait_grep "$TMP/m1.ev" "$UP" && wait_grep "$TMP/m2.ev" "$UP" ||
    fail "members did not join: $(cat "$TMP/m1.err" "$TMP/m2.err")"
curl -fsS http://127.0.0.1:9471/metrics | grep -qx 'punchd_cluster_up 1' ||
    fail "member 1's /metrics does not say it is up"
pass "two members connected to Redis"

# bob at member 2, alice at member 1; the INTRO member 1 sends to member
# 2 is captured off Redis as it goes, to be replayed below.
listen bob 127.0.0.1:3488
wait_grep "$TMP/m2.ev" '"event":"registered".*"name":"bob"' || fail "member 2 did not register bob"
python3 "$TOOL" capture 6379 "punch:3:member:$(member_id 2)" "$TMP/intro" & CAPTURE=$!
for _ in $(seq 400); do [ -e "$TMP/intro.ready" ] && break; sleep 0.025; done
[ -e "$TMP/intro.ready" ] || fail "could not subscribe to member 2's channel"
connect bob 127.0.0.1:3478 --timeout 20 || { cat "$TMP/alice.err"; fail "connect across members failed"; }
stop_listen
[ "$(sort -u "$TMP/bob.out")" = "hello bob" ] || fail "bob got '$(cat "$TMP/bob.out")'"
[ "$(sort -u "$TMP/alice.out")" = "hello from bob" ] || fail "alice got '$(cat "$TMP/alice.out")'"
grep -q '"event":"path".*"peer":"bob","kind":"direct"' "$TMP/alice.ev" ||
    fail "no direct path: $(cat "$TMP/alice.ev")"
s1=$(grep -o '"event":"cluster-introduced","t_ms":[0-9]*,"name":"alice","peer":"bob".*"initiator":true' "$TMP/m1.ev" | grep -o '"session":"[0-9a-f]*"' | sort -u)
s2=$(grep -o '"event":"cluster-introduced","t_ms":[0-9]*,"name":"bob","peer":"alice".*"initiator":false' "$TMP/m2.ev" | grep -o '"session":"[0-9a-f]*"' | sort -u)
[ -n "$s1" ] && [ "$s1" = "$s2" ] || fail "members did not introduce one session: '$s1' / '$s2'"
pass "alice at member 1 reached bob at member 2: data both ways on a direct path, session $s1"

# A relayed session across members: both take only the relay. Each
# member holds one half (each peer sends to its own member, the members
# forward to each other), and both open it with the same session.
LISTEN_ARGS=--relay-only listen bob 127.0.0.1:3488
rm -f "$TMP/alice.ev"
connect bob 127.0.0.1:3478 --relay-only --timeout 20 ||
    { cat "$TMP/alice.err"; fail "relayed connect across members failed"; }
stop_listen
[ "$(sort -u "$TMP/bob.out")" = "hello bob" ] || fail "bob got '$(cat "$TMP/bob.out")' on the relay"
[ "$(sort -u "$TMP/alice.out")" = "hello from bob" ] || fail "alice got '$(cat "$TMP/alice.out")' on the relay"
for side in alice bob; do
    ! grep '"event":"path"' "$TMP/$side.ev" | grep -qv '"kind":"relay"' &&
        grep -q '"event":"path".*"kind":"relay"' "$TMP/$side.ev" ||
        fail "$side's paths were not the relay only: $(grep '"event":"path"' "$TMP/$side.ev")"
done
r1=$(grep '"event":"relay-opened"' "$TMP/m1.ev" | tail -1 | grep -o '"session":"[0-9a-f]*"')
r2=$(grep '"event":"relay-opened"' "$TMP/m2.ev" | tail -1 | grep -o '"session":"[0-9a-f]*"')
[ -n "$r1" ] && [ "$r1" = "$r2" ] || fail "the members did not relay one session: '$r1' / '$r2'"
relayed() { curl -fsS "http://127.0.0.1:947$1/metrics" | grep '^punchd_relayed_datagrams_total ' | cut -d' ' -f2; }
[ "$(relayed 1)" -gt 0 ] && [ "$(relayed 2)" -gt 0 ] || fail "a member relayed nothing"
pass "a relayed session across members: data both ways on the relay, $r1 at both members ($(relayed 1) and $(relayed 2) datagrams)"

# Redis holds nothing a member trusts without the cluster's MAC: a record
# planted for mallory and an INTRO published on member 2's channel are
# dropped and counted.
head -c 300 /dev/urandom >"$TMP/planted"
intros2=$(count "$TMP/m2.ev" '"event":"cluster-introduced"')
moved1=$(count "$TMP/m1.ev" '"event":"cluster-moved"')
redis-cli -n 3 -x set punch:name:mallory <"$TMP/planted" >/dev/null
{ printf 'PC\002\002'; head -c 300 /dev/urandom; } >"$TMP/forged"
[ "$(redis-cli -x publish "punch:3:member:$(member_id 2)" <"$TMP/forged")" = 1 ] ||
    fail "member 2 is not subscribed to its channel"
connect mallory 127.0.0.1:3478 --timeout 5 && fail "a planted record was trusted"
wait_more "$TMP/m1.ev" '"event":"cluster-lookup-failed".*"peer":"mallory".*"reason":"record failed the cluster' 0 ||
    fail "member 1 did not report the planted record: $(tail -3 "$TMP/m1.ev")"
# alice came back from a new port, so member 1 told member 2 again of her
# last session, with bob (cluster-moved): bob is introduced to her anew,
# as one server would; that INTRO is a true one.
intros2=$((intros2 + $(count "$TMP/m1.ev" '"event":"cluster-moved"') - moved1))
wait_more "$TMP/m2.ev" '"event":"cluster-introduced"' $((intros2 - 1)) ||
    fail "member 2 did not take member 1's news of alice"
kill -USR1 "$M1" "$M2"
wait_grep "$TMP/m1.ev" '"event":"counters"' && wait_grep "$TMP/m2.ev" '"event":"counters"' || fail "no counters"
c1=$(grep '"event":"counters"' "$TMP/m1.ev" | tail -1); c2=$(grep '"event":"counters"' "$TMP/m2.ev" | tail -1)
[ "$(json_field "$c1" cluster_malformed)" -ge 1 ] || fail "member 1 did not count the planted record: $c1"
[ "$(json_field "$c2" cluster_bad_mac)" = 1 ] || fail "member 2 did not count the forged INTRO: $c2"
[ "$(json_field "$c2" cluster_introduced)" = "$intros2" ] &&
    [ "$(count "$TMP/m2.ev" '"event":"cluster-introduced"')" = "$intros2" ] ||
    fail "member 2 acted on the forged INTRO: $c2"
pass "a planted record and a forged INTRO are dropped and counted (member 1 malformed $(json_field "$c1" cluster_malformed), member 2 bad_mac $(json_field "$c2" cluster_bad_mac))"

# A true INTRO, signed by member 1, published again: refused as a replay.
wait "$CAPTURE"; CAPTURE=
[ -s "$TMP/intro" ] || fail "no INTRO was captured on member 2's channel"
[ "$(redis-cli -x publish "punch:3:member:$(member_id 2)" <"$TMP/intro")" = 1 ] ||
    fail "member 2 did not get the replayed INTRO"
counters2() {
    local n; n=$(count "$TMP/m2.ev" '"event":"counters"')
    kill -USR1 "$M2"; wait_more "$TMP/m2.ev" '"event":"counters"' "$n" || fail "no counters"
    grep '"event":"counters"' "$TMP/m2.ev" | tail -1
}
c2=$(counters2)
[ "$(json_field "$c2" cluster_replayed)" = 1 ] || fail "member 2 did not refuse the replayed INTRO: $c2"
[ "$(json_field "$c2" cluster_introduced)" = "$intros2" ] || fail "member 2 acted on the replay: $c2"
curl -fsS http://127.0.0.1:9472/metrics | grep -qx 'punchd_cluster_drops_total{reason="replayed"} 1' ||
    fail "member 2's /metrics does not count the replay"
pass "a captured INTRO published again is refused and counted (cluster_replayed 1)"

# A Redis that takes the connection and the commands but answers nothing
# (here: stopped with SIGSTOP, so the kernel still accepts): a lookup is
# refused after the 2 s command timeout with the reason, not left waiting.
downs1=$(count "$TMP/m1.ev" "$DOWN"); ups1=$(count "$TMP/m1.ev" "$UP")
listen bob 127.0.0.1:3488
stopped=$(date +%s%N)
kill -STOP "$REDIS_PID"
connect bob 127.0.0.1:3478 --timeout 10 && fail "connect across members worked with Redis wedged"
refused_ms=$(( ($(date +%s%N) - stopped) / 1000000 ))
stop_listen
grep -q "no such peer" "$TMP/alice.err" || fail "alice was not told: $(cat "$TMP/alice.err")"
wait_more "$TMP/m1.ev" '"event":"cluster-lookup-failed".*"peer":"bob".*"reason":"redis unavailable: redis did not answer within 2000 ms"' 0 ||
    fail "member 1 did not give the timeout as the reason: $(tail -3 "$TMP/m1.ev")"
wait_more "$TMP/m1.ev" "$DOWN.*did not answer" "$downs1" || fail "member 1 did not say Redis is down"
curl -fsS http://127.0.0.1:9471/metrics | grep -q '^punchd_cluster_timeouts_total [1-9]' ||
    fail "member 1's /metrics does not count the timeout"
# The 2 s run from the first command Redis leaves unanswered: not before
# it stopped (so alice cannot be refused sooner than 2 s after that), and
# not after her name's claim (a heartbeat may go between the two, so the
# refusal may come under 2 s after her registration, in member 1's time).
t_ms() { grep -o "$1" "$TMP/m1.ev" | tail -1 | grep -o '"t_ms":[0-9]*' | cut -d: -f2; }
took=$(( $(t_ms '"event":"cluster-lookup-failed","t_ms":[0-9]*') - $(t_ms '"event":"registered","t_ms":[0-9]*,"name":"alice"') ))
[ "$refused_ms" -ge 2000 ] || fail "alice was refused $refused_ms ms after Redis stopped, before the 2 s timeout"
[ "$took" -lt 4000 ] || fail "the refusal came $took ms after alice registered, not within the 2 s timeout"
kill -CONT "$REDIS_PID"
wait_more "$TMP/m1.ev" "$UP" "$ups1" || fail "member 1 did not rejoin Redis after it answered again"
pass "a wedged Redis: alice refused $refused_ms ms after it stopped ($took ms after she registered), member 1 says 'redis did not answer within 2000 ms' and counts it; back up when Redis answers"

# No Redis at all behind the port, just a socket that never answers: the
# member says so and refuses lookups at once, without waiting on it.
python3 "$TOOL" silent 6390 "$TMP/silent.ready" & SILENT=$!
for _ in $(seq 400); do [ -e "$TMP/silent.ready" ] && break; sleep 0.025; done
member 3 3498 redis://127.0.0.1:6390/3
wait_grep "$TMP/m3.ev" "$DOWN.*did not answer within 2000 ms" ||
    fail "member 3 did not give up on the silent server: $(cat "$TMP/m3.ev")"
grep -q "$UP" "$TMP/m3.ev" && fail "member 3 said up with a server that never answered"
connect bob 127.0.0.1:3498 --timeout 5 && fail "member 3 introduced without Redis"
grep -q '"event":"cluster-lookup-failed".*"reason":"redis unavailable: redis did not answer' "$TMP/m3.ev" ||
    fail "member 3 did not refuse with the reason: $(tail -3 "$TMP/m3.ev")"
kill "$M3" "$SILENT"; wait "$M3" "$SILENT" 2>/dev/null; M3=; SILENT=
pass "a server that never answers: member 3 says 'redis did not answer within 2000 ms' and refuses lookups"

# Redis goes away.
downs1=$(count "$TMP/m1.ev" "$DOWN"); downs2=$(count "$TMP/m2.ev" "$DOWN")
ups1=$(count "$TMP/m1.ev" "$UP"); ups2=$(count "$TMP/m2.ev" "$UP")
stop_redis
wait_more "$TMP/m1.ev" "$DOWN" "$downs1" && wait_more "$TMP/m2.ev" "$DOWN" "$downs2" ||
    fail "members did not say Redis went away"
curl -fsS http://127.0.0.1:9471/metrics | grep -qx 'punchd_cluster_up 0' ||
    fail "member 1's /metrics does not say Redis is down"
pass "both members said Redis is down: $(grep -o '"reason":"[^"]*"' "$TMP/m1.ev" | tail -1)"

# carol at member 1 is still reached from member 1...
listen carol 127.0.0.1:3478
connect carol 127.0.0.1:3478 --timeout 20 || { cat "$TMP/alice.err"; fail "same-member connect failed without Redis"; }
stop_listen
[ "$(sort -u "$TMP/alice.out")" = "hello from carol" ] || fail "alice got '$(cat "$TMP/alice.out")' from carol"
pass "same-member connect works without Redis"
# ...but bob at member 2 is not, and both sides say why.
listen bob 127.0.0.1:3488
connect bob 127.0.0.1:3478 --timeout 5 && fail "connect across members worked without Redis"
grep -q "no such peer" "$TMP/alice.err" || fail "alice was not told: $(cat "$TMP/alice.err")"
wait_more "$TMP/m1.ev" '"event":"cluster-lookup-failed".*"peer":"bob".*"reason":"redis unavailable: ' 0 ||
    fail "member 1 did not report the failed lookup: $(tail -3 "$TMP/m1.ev")"
pass "cross-member connect refused without Redis (alice: $(grep -o 'no such peer[^"]*' "$TMP/alice.err" | head -1); member 1: redis unavailable)"

# Redis is back (empty: it kept nothing): both members rejoin and publish
# their peers again, so bob, registered at member 2 while Redis was away,
# is reached from member 1 at once, well before his next keepalive (25 s).
start_redis
wait_more "$TMP/m1.ev" "$UP" "$ups1" && wait_more "$TMP/m2.ev" "$UP" "$ups2" ||
    fail "members did not rejoin Redis"
published() { redis-cli -n 3 exists punch:name:bob | grep -q 1; }
for _ in $(seq 400); do published && break; sleep 0.025; done
published || fail "member 2 did not publish bob again"
connect bob 127.0.0.1:3478 --timeout 20 || { cat "$TMP/alice.err"; fail "connect across members failed after Redis came back"; }
stop_listen
[ "$(sort -u "$TMP/alice.out")" = "hello from bob" ] || fail "alice got '$(cat "$TMP/alice.out")' after recovery"
pass "Redis back: both members rejoined, republished, and alice reaches bob across members again"

# A member listening on wildcards only knows no address to give the other
# members for relays: it says so, and offers none...
"$PUNCHD" --listen 0.0.0.0:3508 --no-tcp --events "$TMP/m3.ev" "${CLUSTER[@]}" 2>"$TMP/m3.err" &
M3=$!
wait_grep "$TMP/m3.ev" "$UP" || fail "the wildcard member did not join: $(cat "$TMP/m3.err")"
grep -q "offers no relay across members" "$TMP/m3.err" || fail "the wildcard member did not say it offers no relay: $(cat "$TMP/m3.err")"
kill "$M3"; wait "$M3" 2>/dev/null; M3=
# ...an address that is not this host's is refused at start...
"$PUNCHD" --listen 0.0.0.0:3508 --no-tcp --cluster-address 192.0.2.1 "${CLUSTER[@]}" 2>"$TMP/m3.err" &&
    fail "punchd took a --cluster-address that is not the host's"
grep -q "cluster-address 192.0.2.1:.*not an address of this host" "$TMP/m3.err" ||
    fail "no clear reason for a foreign --cluster-address: $(cat "$TMP/m3.err")"
# ...and with --cluster-address it relays across members from there. alice
# talks to it at 127.0.0.1, not at the address it names (127.0.0.3): what
# it forwards to member 2 still leaves from 127.0.0.3, the source member 2
# takes.
rm -f "$TMP/m3.ev"
"$PUNCHD" --listen 0.0.0.0:3508 --no-tcp --cluster-address 127.0.0.3 --events "$TMP/m3.ev" \
    "${CLUSTER[@]}" 2>"$TMP/m3.err" &
M3=$!
wait_grep "$TMP/m3.ev" "$UP" || fail "the wildcard member did not join: $(cat "$TMP/m3.err")"
LISTEN_ARGS=--relay-only listen bob 127.0.0.1:3488
rm -f "$TMP/alice.ev"
connect bob 127.0.0.1:3508 --relay-only --timeout 20 ||
    { cat "$TMP/alice.err"; fail "relayed connect from the wildcard member failed"; }
stop_listen
[ "$(sort -u "$TMP/bob.out")" = "hello bob" ] || fail "bob got '$(cat "$TMP/bob.out")' on the relay"
[ "$(sort -u "$TMP/alice.out")" = "hello from bob" ] || fail "alice got '$(cat "$TMP/alice.out")' on the relay"
r3=$(grep '"event":"relay-opened"' "$TMP/m3.ev" | tail -1 | grep -o '"session":"[0-9a-f]*"')
r2=$(grep '"event":"relay-opened"' "$TMP/m2.ev" | tail -1 | grep -o '"session":"[0-9a-f]*"')
[ -n "$r3" ] && [ "$r3" = "$r2" ] || fail "the wildcard member and member 2 did not relay one session: '$r3' / '$r2'"
pass "a member on 0.0.0.0 with --cluster-address 127.0.0.3 relays across members ($r3 at both)"
