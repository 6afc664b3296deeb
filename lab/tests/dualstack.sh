#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Dual stack (issue 16): punch listen / punch connect across the lab's
# NATs and IPv6 firewalls (punch-lab --stack-a/-b, lab/ipv6.sh), with
# punchd listening on both families:
#   1. dual x dual: both end direct over IPv6 (hole punching through two
#      stateful firewalls), although IPv4 goes direct too; and with --tcp
#      on a TCP path over IPv6 by simultaneous open through the two
#      firewalls (before, TCP paths were IPv4 only: through the NATs);
#   2. both sites translating their IPv6 prefix (NPTv6), punch given the
#      server's IPv4 and IPv6 addresses: direct over IPv6 to the translated
#      addresses, which neither host has on an interface (a STUN Binding
#      request to the server's other family's address tells each its own);
#      dual x IPv4-only: direct over IPv4;
#   3. IPv6-only x IPv4-only: both on the relay, which bridges the families
#      (alice's remote is the server's IPv6 address, bob's its IPv4 one);
#   4. punch natcheck --other-family reports both families (IPv4 translated,
#      IPv6 not); the IPv6 path dies mid-stream (nat-a's firewall starts dropping all
#      IPv6 once bob has the first 1 MiB, and only then alice reads the
#      rest): the session moves to IPv4 direct and the 4 MiB arrive byte
#      for byte.
. "$(dirname "$0")/lib.sh"
B=${PUNCH_BUILD_DIR:?}
PUNCH=$B/apps/punch PUNCHD=$B/apps/punchd
S4=198.51.100.1 S6='[2001:db8:5::1]'

wait_grep() { local i; for ((i = 0; i < $3 * 40; i++)); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.025; done; return 1; }
size() { stat -c %s "$1" 2>/dev/null || echo 0; }
# last_family SIDE: "kind/family" of SIDE's last path event
last_family() {
    local last
    last=$(grep '"event":"path"' "$C/$1.ev" | tail -1)
    echo "$(grep -o '"kind":"[^"]*"' <<<"$last" | cut -d'"' -f4)/$(grep -o '"family":"[^"]*"' <<<"$last" | cut -d'"' -f4)"
}

start_punchd() {
    lab exec server -- "$PUNCHD" --listen "$S4:3478" --listen "$S6:3478" --key "$C/server.key" \
        --events "$C/punchd.ev" 2>"$C/punchd.err" </dev/null &
    wait_for "$C/punchd.ev"
}

# pair NAME STACK_A STACK_B SERVER_A SERVER_B [SERVER2]: datagrams both ways,
# as lib.sh's run_pair; SERVER2: a second --server for both; CONNECT_OPTS:
# more options for alice's connect
pair() {
    C=$TMP/$1
    mkdir -p "$C"
    local t0=$EPOCHREALTIME
    lab up different-nats --stack-a "$2" --stack-b "$3" >/dev/null
    start_punchd
    (while [ ! -e "$C/stop" ]; do [ -s "$C/alice.out" ] || echo "hello alice"; sleep 0.3; done) |
        lab exec bob -- env XDG_CONFIG_HOME="$C/bob" "$PUNCH" --server "$5" ${6:+--server "$6"} --name bob \
            --events "$C/bob.ev" listen --datagram >"$C/bob.out" 2>"$C/bob.err" &
    local bob=$! rc=0 i
    wait_grep "$C/bob.ev" registered 10 || fail "$1: bob did not register: $(cat "$C/bob.err")"
    (for ((i = 0; i < 100; i++)); do [ -s "$C/alice.out" ] && [ -s "$C/bob.out" ] && break
         echo "hello bob"; sleep 0.3; done; sleep 3) |
        lab exec alice -- env XDG_CONFIG_HOME="$C/alice" timeout --foreground 40 "$PUNCH" \
            --server "$4" ${6:+--server "$6"} --name alice --events "$C/alice.ev" connect bob --datagram \
            ${CONNECT_OPTS:-} --timeout 30 >"$C/alice.out" 2>"$C/alice.err" || rc=$?
    touch "$C/stop"
    kill -TERM "$bob" 2>/dev/null || true
    wait "$bob" 2>/dev/null || true
    lab down >/dev/null
    [ "$rc" = 0 ] || fail "$1: connect exited $rc: $(cat "$C/alice.err")"
    [ "$(sort -u "$C/bob.out")" = "hello bob" ] || fail "$1: bob got '$(cat "$C/bob.out")'"
    [ "$(sort -u "$C/alice.out")" = "hello alice" ] || fail "$1: alice got '$(cat "$C/alice.out")'"
    echo "($1 took $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s)"
}

# expect NAME SIDE KIND/FAMILY
expect() {
    local got
    got=$(last_family "$2")
    [ "$got" = "$3" ] || fail "$1: $2 ends on $got, want $3 ($(grep '"event":"path"' "$C/$2.ev"))"
}

pair dual-dual dual dual "$S4" "$S4"
expect dual-dual alice direct/ipv6
expect dual-dual bob direct/ipv6
grep '"event":"path"' "$C/alice.ev" | tail -1 | grep -q '"remote":"\[2001:db8:b:1::10\]:' ||
    fail "dual-dual: alice's IPv6 path is not to bob's address: $(grep '"event":"path"' "$C/alice.ev" | tail -1)"
ok "dual x dual: direct over IPv6 through two firewalls (alice's first ipv6 path at $(grep '"family":"ipv6"' "$C/alice.ev" | head -1 | grep -o '"t_ms":[0-9]*' | cut -d: -f2) ms)"

# last_technique SIDE: the technique of SIDE's last path event
last_technique() { grep '"event":"path"' "$C/$1.ev" | tail -1 | grep -o '"technique":"[^"]*"' | cut -d'"' -f4; }
CONNECT_OPTS=--tcp pair dual-dual-tcp dual dual "$S4" "$S4"
for side in alice bob; do
    expect dual-dual-tcp "$side" direct/ipv6
    [ "$(last_technique "$side")" = tcp-simultaneous-open ] ||
        fail "dual-dual --tcp: $side ends on $(last_technique "$side"), want tcp-simultaneous-open ($(grep -E '"(path|attempt)"' "$C/$side.ev"))"
done
ok "dual x dual --tcp: a TCP path over IPv6 through two firewalls by simultaneous open at $(grep '"technique":"tcp-simultaneous-open"' "$C/alice.ev" | head -1 | grep -o '"t_ms":[0-9]*' | cut -d: -f2) ms ($(grep '"event":"path"' "$C/alice.ev" | tail -1 | grep -o '"local":"[^"]*","remote":"[^"]*"'))"

pair nptv6 nptv6 nptv6 "$S4" "$S4" "$S6"
expect nptv6 alice direct/ipv6
expect nptv6 bob direct/ipv6
grep '"event":"path"' "$C/alice.ev" | tail -1 | grep -q '"remote":"\[2001:db8:b:100::10\]:' ||
    fail "nptv6: alice's IPv6 path is not to bob's translated address: $(grep '"event":"path"' "$C/alice.ev" | tail -1)"
grep '"event":"registered"' "$C/alice.ev" | head -1 | grep -q '"nat":"eim".*"other_family":{"family":"ipv6","nat":"eim"' ||
    grep '"event":"registered"' "$C/alice.ev" | head -1 | grep -q '"other_family":{"family":"ipv4","nat":"eim"' ||
    fail "nptv6: alice's registered event lacks the other family's NAT: $(grep registered "$C/alice.ev")"
ok "nptv6 x nptv6: direct over IPv6 to the translated addresses (registered over $(grep -o '"server":"[^"]*"' "$C/alice.ev" | head -1); $(grep '"event":"registered"' "$C/alice.ev" | head -1 | grep -o '"other_family":{[^}]*}'))"

pair dual-v4 dual v4 "$S4" "$S4"
expect dual-v4 alice direct/ipv4
expect dual-v4 bob direct/ipv4
ok "dual x IPv4-only: direct over IPv4"

pair v6-v4 v6 v4 "$S6" "$S4"
expect v6-v4 alice relay/ipv6
expect v6-v4 bob relay/ipv4
grep '"event":"relay-opened"' "$C/punchd.ev" >/dev/null || fail "v6-v4: punchd opened no relay"
ok "IPv6-only x IPv4-only: relayed by punchd across the families"

# 4. the IPv6 path dies mid-stream
SIZE=4194304
head -c "$SIZE" /dev/urandom >"$TMP/a.bin"
want=$(sha256sum <"$TMP/a.bin")
C=$TMP/cut
mkdir -p "$C"
lab up different-nats --stack-a dual --stack-b dual >/dev/null
start_punchd
# natcheck on both families: IPv4 behind nat-a's NAT, IPv6 with no translation
nc=$(lab exec alice -- env XDG_CONFIG_HOME="$C/alice" "$PUNCH" --server "$S4" --portmap off natcheck \
    --json --wait 500 --other-family "$S6")
grep -q '^{"family":"ipv4",.*"public":"203.0.113.1:[0-9]*","nat":true,' <<<"$nc" &&
    grep -q '"other_family":{"reachable":true,"family":"ipv6",.*"public":"\[2001:db8:a:1::10\]:[0-9]*","nat":false' <<<"$nc" ||
    fail "natcheck on both families: $nc"
ok "natcheck: ipv4 behind a NAT, ipv6 without translation"
lab exec bob -- env XDG_CONFIG_HOME="$C/bob" timeout --foreground 90 "$PUNCH" --server "$S4" \
    --name bob --events "$C/bob.ev" listen </dev/null >"$C/bob.out" 2>"$C/bob.err" &
bob=$!
wait_grep "$C/bob.ev" registered 10 || fail "cut: bob did not register: $(cat "$C/bob.err")"
# the first 1 MiB, then the rest once IPv6 is cut: the rest has to go after it
{ head -c 1048576 "$TMP/a.bin"
  for ((i = 0; i < 1200; i++)); do [ -e "$C/cut" ] && break; sleep 0.025; done
  tail -c +1048577 "$TMP/a.bin"; } |
    lab exec alice -- env XDG_CONFIG_HOME="$C/alice" timeout --foreground 90 "$PUNCH" --server "$S4" \
        --name alice --events "$C/alice.ev" connect bob >"$C/alice.out" 2>"$C/alice.err" &
alice=$!
for ((i = 0; i < 1200; i++)); do [ "$(size "$C/bob.out")" -ge 1048576 ] && break; sleep 0.025; done
[ "$(size "$C/bob.out")" -ge 1048576 ] || fail "cut: the first 1 MiB never arrived"
[ "$(last_family alice)" = direct/ipv6 ] || fail "cut: alice on $(last_family alice) before the cut, want direct/ipv6"
lab exec nat-a -- nft insert rule ip6 punchlab6 filter_fwd drop
cut_at=$(size "$C/bob.out") t_cut=$EPOCHREALTIME
touch "$C/cut"
rc=0 brc=0
wait "$alice" || rc=$?
rest_s=$(awk -v a="$t_cut" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
wait "$bob" || brc=$?
[ "$rc" = 0 ] && [ "$brc" = 0 ] || fail "cut: exit codes alice $rc bob $brc: $(tail -3 "$C/alice.err") / $(tail -3 "$C/bob.err")"
[ "$(sha256sum <"$C/bob.out")" = "$want" ] || fail "cut: bob's copy differs ($(size "$C/bob.out") bytes)"
[ "$(last_family alice)" = direct/ipv4 ] || fail "cut: alice ends on $(last_family alice), want direct/ipv4 ($(grep '"event":"path"' "$C/alice.ev"))"
awk -v r="$rest_s" 'BEGIN { exit !(r < 15) }' ||
    fail "cut: the rest took $rest_s s (bound 15 s: the keepalive finds a dead path in 2-4 s)"
lab down >/dev/null
ok "IPv6 path cut after $cut_at bytes: alice moved to IPv4 direct, $SIZE bytes arrived (sha256 equal), the rest in $rest_s s"
