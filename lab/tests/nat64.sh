#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# NAT64 (issue 16): alice is IPv6-only behind a NAT64 (punch-lab --stack-a
# nat64: tayga in front of nat-a's IPv4 NAT, prefix 2001:db8:64::/96, no
# DNS64), bob IPv4-only behind his NAT. Alice is given the server's IPv4
# address and the prefix (--nat64-prefix), and reaches the server at
# 2001:db8:64::198.51.100.1. Then:
#   1. alice and bob end direct (hole punching through the NAT64 as through
#      any NAT): alice's remote is bob's public address under the prefix,
#      bob's the NAT64's public IPv4 mapping; datagrams arrive both ways;
#   2. with --nat64-prefix off alice reaches nothing: she never registers
#      (what punch did before issue 16's NAT64 work);
#   3. punch natcheck through the NAT64: a NAT (tayga's pool address mapped
#      by nat-a's port-restricted cone: eim), seen at 203.0.113.1;
#   4. bob dual-stack: both ways work (alice's native IPv6 through nat-a's
#      firewall, and the NAT64 to bob's IPv4); both end on native IPv6.
#   5. the NAT64's prefix a network-specific /64 (punch-lab
#      --nat64-prefix 2001:db8:64::/64; --nat64-prefix the same): as 1.
. "$(dirname "$0")/lib.sh"
command -v tayga >/dev/null || { echo "SKIP: no tayga (scripts/setup installs it)"; exit 77; }
B=${PUNCH_BUILD_DIR:?}
PUNCH=$B/apps/punch PUNCHD=$B/apps/punchd
S4=198.51.100.1 PREFIX=2001:db8:64::/96
C=$TMP
wait_grep() { local i; for ((i = 0; i < $3 * 40; i++)); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.025; done; return 1; }
last_path() { grep '"event":"path"' "$C/$1.ev" | tail -1; }

lab up different-nats --stack-a nat64 --stack-b v4 >/dev/null
lab exec server -- "$PUNCHD" --listen "$S4:3478" --listen "[2001:db8:5::1]:3478" --key "$C/server.key" \
    --events "$C/punchd.ev" 2>"$C/punchd.err" </dev/null &
wait_for "$C/punchd.ev"

(while [ ! -e "$C/stop" ]; do [ -s "$C/alice.out" ] || echo "hello alice"; sleep 0.3; done) |
    lab exec bob -- env XDG_CONFIG_HOME="$C/bob" "$PUNCH" --server "$S4" --name bob \
        --events "$C/bob.ev" listen --datagram >"$C/bob.out" 2>"$C/bob.err" &
bob=$!
wait_grep "$C/bob.ev" registered 10 || fail "bob did not register: $(cat "$C/bob.err")"
rc=0
(for ((i = 0; i < 100; i++)); do [ -s "$C/alice.out" ] && [ -s "$C/bob.out" ] && break
     echo "hello bob"; sleep 0.3; done; sleep 2) |
    lab exec alice -- env XDG_CONFIG_HOME="$C/alice" timeout --foreground 40 "$PUNCH" \
        --server "$S4" --nat64-prefix "$PREFIX" --name alice --events "$C/alice.ev" \
        connect bob --datagram --timeout 30 >"$C/alice.out" 2>"$C/alice.err" || rc=$?
touch "$C/stop"
[ "$rc" = 0 ] || fail "connect exited $rc: $(cat "$C/alice.err")"
[ "$(sort -u "$C/bob.out")" = "hello bob" ] || fail "bob got '$(cat "$C/bob.out")'"
[ "$(sort -u "$C/alice.out")" = "hello alice" ] || fail "alice got '$(cat "$C/alice.out")'"
grep -q '"server":"\[2001:db8:64::c633:6401\]:3478"' "$C/alice.ev" ||
    fail "alice did not register through the NAT64: $(grep registered "$C/alice.ev")"
last_path alice | grep -q '"kind":"direct".*"remote":"\[2001:db8:64::c000:201\]:' ||
    fail "alice is not direct to bob's public address under the prefix: $(last_path alice)"
last_path bob | grep -q '"kind":"direct".*"remote":"203.0.113.1:' ||
    fail "bob is not direct to the NAT64's mapping: $(last_path bob)"
ok "IPv6-only behind NAT64 x IPv4-only: direct through the NAT64 at $(last_path alice | grep -o '"t_ms":[0-9]*' | cut -d: -f2) ms ($(last_path alice | grep -o '"remote":"[^"]*"'))"

rc=0
lab exec alice -- env XDG_CONFIG_HOME="$C/alice" timeout --foreground 20 "$PUNCH" \
    --server "$S4" --nat64-prefix off --name alice2 --events "$C/alice2.ev" \
    connect bob --datagram --timeout 6 </dev/null >/dev/null 2>"$C/alice2.err" || rc=$?
[ "$rc" != 0 ] && ! grep -q '"event":"registered"' "$C/alice2.ev" ||
    fail "with --nat64-prefix off alice still got somewhere (exit $rc): $(cat "$C/alice2.ev")"
ok "--nat64-prefix off: no IPv4 route, no registration (exit $rc)"

nc=$(lab exec alice -- env XDG_CONFIG_HOME="$C/alice" "$PUNCH" --server "$S4" --nat64-prefix "$PREFIX" \
    --portmap off natcheck --json --wait 500)
grep -q '"server":"\[2001:db8:64::c633:6401\]:3478".*"public":"203.0.113.1:[0-9]*","nat":true' <<<"$nc" &&
    grep -q '"mapping":"eim"' <<<"$nc" || fail "natcheck through the NAT64: $nc"
ok "natcheck through the NAT64: $(grep -o '"mapping":"[a-z]*","filtering":"[a-z]*"' <<<"$nc")"
kill -TERM "$bob" 2>/dev/null || true
wait "$bob" 2>/dev/null || true
lab down >/dev/null

# 4. nat64 x dual
C=$TMP/dual
mkdir -p "$C"
lab up different-nats --stack-a nat64 --stack-b dual >/dev/null
lab exec server -- "$PUNCHD" --listen "$S4:3478" --listen "[2001:db8:5::1]:3478" --key "$C/server.key" \
    --events "$C/punchd.ev" 2>"$C/punchd.err" </dev/null &
wait_for "$C/punchd.ev"
lab exec bob -- env XDG_CONFIG_HOME="$C/bob" timeout --foreground 40 "$PUNCH" --server "$S4" \
    --name bob --events "$C/bob.ev" listen --datagram </dev/null >/dev/null 2>"$C/bob.err" &
bob=$!
wait_grep "$C/bob.ev" registered 10 || fail "dual: bob did not register: $(cat "$C/bob.err")"
rc=0
(echo hello; sleep 6) | lab exec alice -- env XDG_CONFIG_HOME="$C/alice" timeout --foreground 40 \
    "$PUNCH" --server "$S4" --nat64-prefix "$PREFIX" --name alice --events "$C/alice.ev" \
    connect bob --datagram --timeout 30 >/dev/null 2>"$C/alice.err" || rc=$?
kill -TERM "$bob" 2>/dev/null || true
wait "$bob" 2>/dev/null || true
[ "$rc" = 0 ] || fail "dual: connect exited $rc: $(cat "$C/alice.err")"
last_path alice | grep -q '"kind":"direct".*"remote":"\[2001:db8:b:1::10\]:' ||
    fail "dual: alice does not end on bob's native IPv6: $(grep '"event":"path"' "$C/alice.ev")"
last_path bob | grep -q '"kind":"direct".*"remote":"\[2001:db8:a:1::10\]:' ||
    fail "dual: bob does not end on alice's native IPv6: $(grep '"event":"path"' "$C/bob.ev")"
ok "IPv6-only behind NAT64 x dual: direct over native IPv6 ($(grep -c '"event":"path"' "$C/alice.ev") path events at alice)"
lab down >/dev/null

# 5. a network-specific /64 prefix (RFC 6052 §2.2): tayga puts the IPv4
# address in bits 72-103, around the u-octet; punch must do the same, or
# alice reaches neither the server nor bob
C=$TMP/p64
mkdir -p "$C"
lab up different-nats --stack-a nat64 --stack-b v4 --nat64-prefix 2001:db8:64::/64 >/dev/null
lab exec server -- "$PUNCHD" --listen "$S4:3478" --key "$C/server.key" \
    --events "$C/punchd.ev" 2>"$C/punchd.err" </dev/null &
wait_for "$C/punchd.ev"
lab exec bob -- env XDG_CONFIG_HOME="$C/bob" timeout --foreground 40 "$PUNCH" --server "$S4" \
    --name bob --events "$C/bob.ev" listen --datagram </dev/null >"$C/bob.out" 2>"$C/bob.err" &
bob=$!
wait_grep "$C/bob.ev" registered 10 || fail "/64: bob did not register: $(cat "$C/bob.err")"
rc=0
(echo "hello bob"; for ((i = 0; i < 200; i++)); do [ -s "$C/bob.out" ] && break; sleep 0.05; done) |
    lab exec alice -- env XDG_CONFIG_HOME="$C/alice" timeout --foreground 40 "$PUNCH" \
        --server "$S4" --nat64-prefix 2001:db8:64::/64 --name alice --events "$C/alice.ev" \
        connect bob --datagram --timeout 30 >/dev/null 2>"$C/alice.err" || rc=$?
kill -TERM "$bob" 2>/dev/null || true
wait "$bob" 2>/dev/null || true
[ "$rc" = 0 ] || fail "/64: connect exited $rc: $(cat "$C/alice.err")"
[ "$(cat "$C/bob.out")" = "hello bob" ] || fail "/64: bob got '$(cat "$C/bob.out")'"
grep -q '"server":"\[2001:db8:64:0:c6:3364:100:0\]:3478"' "$C/alice.ev" ||
    fail "/64: alice did not register through the NAT64: $(grep registered "$C/alice.ev")"
last_path alice | grep -q '"kind":"direct".*"remote":"\[2001:db8:64:0:c0:2:100:0\]:' ||
    fail "/64: alice is not direct to bob's public address under the prefix: $(last_path alice)"
last_path bob | grep -q '"kind":"direct".*"remote":"203.0.113.1:' ||
    fail "/64: bob is not direct to the NAT64's mapping: $(last_path bob)"
ok "NAT64 prefix 2001:db8:64::/64 (tayga): direct ($(last_path alice | grep -o '"remote":"[^"]*"'))"
