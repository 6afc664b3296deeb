#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Issue 5, TCP as the last resort: in udp-blocked (alice's network drops
# all UDP, TCP to the outside works) alice registers with punchd over TCP,
# connects to bob through punchd's relay (alice's side of it over TCP,
# bob's over UDP), and data crosses both ways intact. Then: a punchd
# restart drops the TCP connection and alice registers again over a new
# one; once alice's network lets UDP through again she goes back to UDP.
. "$(dirname "$0")/lib.sh"
B=${PUNCH_BUILD_DIR:?}
PUNCH=$B/apps/punch PUNCHD=$B/apps/punchd
D=$TMP/c
mkdir -p "$D"

lab up udp-blocked >/dev/null
# start_punchd EVENTS: punchd on the server; sets pd to its own PID (lab
# exec runs it under a wrapper), for signals.
start_punchd() {
    lab exec server -- sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$D/punchd.pid" \
        "$PUNCHD" --listen 198.51.100.1:3478 --key "$D/server.key" \
        --events "$1" 2>>"$D/punchd.err" </dev/null &
    wait_for "$1"
    pd=$(cat "$D/punchd.pid")
}
start_punchd "$D/punchd.ev"
grep -q '"tcp":\["198.51.100.1:3478"\]' "$D/punchd.ev" || fail "punchd does not listen on TCP: $(cat "$D/punchd.ev")"

# Each side writes 100 numbered lines at once; punch reads stdin only once
# it has a path, so nothing is sent before the relay is up.
lines() { for ((n = 0; n < 100; n++)); do echo "$1 $n"; done; }
: >"$D/alice.out"
(lines from-bob; while [ ! -e "$D/stop" ]; do sleep 0.05; done) |
    lab exec bob -- env XDG_CONFIG_HOME="$D/bob" "$PUNCH" --server 198.51.100.1 --name bob \
        --events "$D/bob.ev" listen --datagram >"$D/bob.out" 2>"$D/bob.err" &
bob=$!
for ((i = 0; i < 400; i++)); do grep -q registered "$D/bob.ev" 2>/dev/null && break; sleep 0.025; done
grep -q '"transport":"udp"' "$D/bob.ev" || fail "bob did not register over UDP: $(cat "$D/bob.ev" "$D/bob.err")"

rc=0
(lines from-alice
 for ((i = 0; i < 600; i++)); do
     [ "$(grep -c '^from-alice' "$D/bob.out")" = 100 ] && [ "$(grep -c '^from-bob' "$D/alice.out")" = 100 ] && break
     sleep 0.05
 done) |
    lab exec alice -- env XDG_CONFIG_HOME="$D/alice" timeout --foreground 40 "$PUNCH" --server 198.51.100.1 \
        --name alice --events "$D/alice.ev" connect bob --datagram --timeout 30 \
        >"$D/alice.out" 2>"$D/alice.err" || rc=$?
touch "$D/stop"
kill -TERM "$bob" 2>/dev/null || true
wait "$bob" 2>/dev/null || true
kill -USR1 "$pd"
for ((i = 0; i < 200; i++)); do grep -q '"event":"counters"' "$D/punchd.ev" && break; sleep 0.025; done

[ "$rc" = 0 ] || fail "connect exited $rc: $(cat "$D/alice.err")"
want_a=$(lines from-bob) want_b=$(lines from-alice)
[ "$(cat "$D/alice.out")" = "$want_a" ] || fail "alice got $(wc -l <"$D/alice.out") lines, not bob's 100 in order: $(head -3 "$D/alice.out")"
[ "$(cat "$D/bob.out")" = "$want_b" ] || fail "bob got $(wc -l <"$D/bob.out") lines, not alice's 100 in order: $(head -3 "$D/bob.out")"
grep -q '"event":"registered".*"transport":"tcp"' "$D/alice.ev" ||
    fail "alice did not register over TCP: $(cat "$D/alice.ev")"
for side in alice bob; do
    last=$(grep '"event":"path"' "$D/$side.ev" | tail -1)
    grep -q '"kind":"relay","technique":"relay"' <<<"$last" || fail "$side ends on $last, want relay"
done
c=$(grep '"event":"counters"' "$D/punchd.ev" | tail -1)
grep -q '"tcp_accepted":[1-9]' <<<"$c" && grep -q '"relayed":[1-9]' <<<"$c" ||
    fail "punchd's counters show no TCP relay: $c"
t=$(grep '"event":"registered"' "$D/alice.ev" | head -1 | grep -o '"t_ms":[0-9]*' | cut -d: -f2)
ok "udp-blocked: alice registered over TCP at $t ms, relay both ways, 100 datagrams each way intact"

# A punchd restart: alice's connection drops, she reconnects (backoff from
# 0.5 s) and registers again over a new TCP connection.
(while [ ! -e "$D/stop2" ]; do sleep 0.05; done) |
    lab exec alice -- env XDG_CONFIG_HOME="$D/alice" "$PUNCH" --server 198.51.100.1 --name alice \
        --events "$D/alice2.ev" listen --datagram >/dev/null 2>"$D/alice2.err" &
alice=$!
registrations() { local n; n=$(grep -c '"event":"registered"' "$D/alice2.ev" 2>/dev/null) || true; echo "${n:-0}"; }
for ((i = 0; i < 200; i++)); do [ "$(registrations)" -ge 1 ] && break; sleep 0.025; done
grep -q '"transport":"tcp"' "$D/alice2.ev" || fail "alice's listen did not register over TCP: $(cat "$D/alice2.ev")"
kill -TERM "$pd"
for ((i = 0; i < 200; i++)); do kill -0 "$pd" 2>/dev/null || break; sleep 0.025; done
t0=$(date +%s%N)
start_punchd "$D/punchd2.ev"
for ((i = 0; i < 400; i++)); do [ "$(registrations)" -ge 2 ] && break; sleep 0.025; done
[ "$(registrations)" -ge 2 ] && [ "$(grep -c '"transport":"tcp"' "$D/alice2.ev")" -ge 2 ] ||
    fail "alice did not register again over TCP after punchd restarted: $(cat "$D/alice2.ev")"
t1=$(( ($(date +%s%N) - t0) / 1000000 ))
ok "punchd restarted: alice reconnected over TCP and registered again within $t1 ms"

# A registered connection outlives the 10 s punchd gives one that never
# registers (issue 12, finding 6): 12 s on, the same connection, no new
# registration forced, nothing closed as idle.
n=$(registrations)
sleep 12  # the time itself is what is tested
kill -USR1 "$pd"
for ((i = 0; i < 200; i++)); do grep -q '"event":"counters"' "$D/punchd2.ev" && break; sleep 0.025; done
c=$(grep '"event":"counters"' "$D/punchd2.ev" | tail -1)
grep -q '"tcp_idle_closed":0,' <<<"$c" && grep -q '"tcp_accepted":1,' <<<"$c" ||
    fail "alice's registered TCP connection did not last 12 s: $c"
[ "$(registrations)" = "$n" ] || fail "alice registered again within 12 s: $(cat "$D/alice2.ev")"
ok "a registered TCP connection is kept past 12 s (unregistered ones get 10 s)"

# Alice's network lets UDP through again (the drop rule at nat-a goes): a
# STUN probe over UDP is answered and alice registers over UDP.
rule=$(lab exec nat-a -- nft -a list ruleset | awk '/^table/ {t = $2 " " $3} /chain/ {c = $2}
    /l4proto udp drop/ {print t, c, $NF}')
[ -n "$rule" ] || fail "no UDP drop rule at nat-a"
read -r fam tbl chain handle <<<"$rule"
lab exec nat-a -- nft delete rule "$fam" "$tbl" "$chain" handle "$handle"
for ((i = 0; i < 400; i++)); do grep -q '"transport":"udp"' "$D/alice2.ev" && break; sleep 0.025; done
grep -q '"transport":"udp"' "$D/alice2.ev" || fail "alice did not go back to UDP: $(cat "$D/alice2.ev")"
ok "UDP unblocked: alice registered over UDP again ($(grep '"transport":"udp"' "$D/alice2.ev" | grep -o '"t_ms":[0-9]*'))"
touch "$D/stop2"
kill -TERM "$alice" "$pd" 2>/dev/null || true
wait "$alice" 2>/dev/null || true
