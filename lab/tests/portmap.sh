#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Port mapping (technique portmap, issue 10): alice and bob behind NATs that
# give every destination a random port (kernel masquerade fully-random), so
# no hole punching can work between them. With miniupnpd on either NAT
# offering UPnP IGD, NAT-PMP or PCP (one at a time), the peer behind it asks
# for a mapping (punch's default --portmap auto: PCP, NAT-PMP, then UPnP),
# offers it, and both sides go direct by portmap, the data through; the
# mapping is gone from the NAT when punch exits. Without miniupnpd (and
# with --portmap off) they stay on the relay and say why.
. "$(dirname "$0")/lib.sh"
command -v miniupnpd >/dev/null || { echo "SKIP: no miniupnpd (scripts/setup installs miniupnpd-nftables)"; exit 77; }
B=${PUNCH_BUILD_DIR:?}
PUNCH=$B/apps/punch PUNCHD=$B/apps/punchd

# portmap_ms SIDE: took_ms of SIDE's portmap event ("" when none)
portmap_ms() { grep '"event":"portmap"' "$TMP/c/$1.ev" | head -1 | grep -o '"took_ms":[0-9]*' | cut -d: -f2; }

# check_direct PROTOCOL SIDE(alice|bob): SIDE's NAT ran miniupnpd with PROTOCOL
check_direct() {
    local proto=$1 side=$2
    [ "$PAIR_RC" = 0 ] || fail "$proto at $side: connect exited $PAIR_RC: $(tail -3 "$TMP/c/alice.err")"
    [ "$(sort -u "$TMP/c/bob.out")" = "hello bob" ] || fail "$proto at $side: bob got '$(cat "$TMP/c/bob.out")'"
    [ "$(sort -u "$TMP/c/alice.out")" = "hello alice" ] || fail "$proto at $side: alice got '$(cat "$TMP/c/alice.out")'"
    grep -q "\"event\":\"portmap\",.*\"protocol\":\"$proto\",\"external\":\"192.0.3" "$TMP/c/$side.ev" ||
        fail "$proto at $side: no portmap event by $proto: $(grep -h '"portmap\|technique":"portmap' "$TMP/c/$side.ev")"
    local a b; a=$(last_path alice) b=$(last_path bob)
    [ "$a $b" = "direct/portmap direct/portmap" ] || fail "$proto at $side: ended $a / $b, want direct/portmap on both"
    ok "$proto on $side's NAT: direct by portmap on both sides; mapping obtained in $(portmap_ms "$side") ms, alice's first direct path at $(first_path_ms alice direct) ms"
}

for proto in ${PORTMAP_ONLY:-upnp natpmp pcp}; do
    run_pair symmetric --portmap-a "$proto"
    check_direct "$proto" alice
done
run_pair symmetric --portmap-b pcp
check_direct pcp bob

# No mapping on offer: relay, and the attempt says why.
run_pair symmetric
[ "$(last_path alice) $(last_path bob)" = "relay/relay relay/relay" ] ||
    fail "no miniupnpd: ended $(last_path alice) / $(last_path bob), want the relay"
grep -q '"technique":"portmap","result":"failed",.*"why":"no UPnP/NAT-PMP/PCP on the gateway' "$TMP/c/alice.ev" ||
    fail "no miniupnpd: no attempt event saying so: $(grep portmap "$TMP/c/alice.ev")"
ok "no miniupnpd: both on the relay; $(grep -o '"why":"no UPnP[^"]*"' "$TMP/c/alice.ev" | head -1)"

# Exit is prompt while a request is under way (issue 10: it waited up to
# 1.75 s for the worker thread): no miniupnpd, so right after registering
# punch is still asking the gateway (UPnP's discovery alone takes 1 s);
# SIGTERM then, and punch is gone within 300 ms, its own part <= 100 ms
# (EXIT_WAIT_MS + EXIT_RELEASE_MS in src/driver/portmap.c), the rest
# being the signal's and the processes' way through a loaded machine.
lab up symmetric >/dev/null
lab exec server -- "$PUNCHD" --listen 198.51.100.1:3478 --alt 198.51.100.2 \
    --key "$TMP/server.key" --events "$TMP/punchd-exit.ev" 2>/dev/null </dev/null &
wait_for "$TMP/punchd-exit.ev"
rm -f "$TMP/in" && mkfifo "$TMP/in"
(exec "$PUNCH_LAB" --prefix "$TEST_PREFIX" exec alice -- env XDG_CONFIG_HOME="$TMP/alice" \
    "$PUNCH" --server 198.51.100.1 --name alice --events "$TMP/exit-busy.ev" \
    listen --datagram <"$TMP/in" >/dev/null 2>&1) &
listener=$!
exec 9>"$TMP/in"
for ((i = 0; i < 400; i++)); do grep -q '"event":"registered"' "$TMP/exit-busy.ev" 2>/dev/null && break; sleep 0.01; done
grep -q '"event":"registered"' "$TMP/exit-busy.ev" || fail "exit: alice did not register"
! grep -q '"event":"attempt".*"technique":"portmap"' "$TMP/exit-busy.ev" ||
    fail "exit: the gateway was done with before SIGTERM; nothing under way to test"
t0=$(date +%s%N)
kill -TERM "$listener"
wait "$listener" 2>/dev/null || true
exit_ms=$((($(date +%s%N) - t0) / 1000000))
exec 9>&-
[ "$exit_ms" -le 300 ] || fail "exit: punch took $exit_ms ms to exit on SIGTERM with a gateway request under way"
ok "exit: SIGTERM with a gateway request under way, punch gone in $exit_ms ms"
lab down >/dev/null

# --portmap off: miniupnpd is there, but nobody asks it.
run_pair symmetric --portmap-a pcp -- --portmap off
[ "$(last_path alice) $(last_path bob)" = "relay/relay relay/relay" ] ||
    fail "--portmap off: ended $(last_path alice) / $(last_path bob), want the relay"
! grep -q portmap "$TMP/c/alice.ev" || fail "--portmap off: $(grep portmap "$TMP/c/alice.ev")"
ok "--portmap off: both on the relay, no mapping asked for"

# The mapping is deleted when punch exits: miniupnpd's DNAT rule for it is
# there while `punch listen` runs and gone once it ended on SIGTERM.
rules() { lab exec nat-a -- nft list chain inet miniupnpd prerouting_miniupnpd | grep -c dnat || true; }
for proto in pcp natpmp upnp; do
    lab up symmetric --portmap-a "$proto" >/dev/null 2>&1
    lab exec server -- "$PUNCHD" --listen 198.51.100.1:3478 --alt 198.51.100.2 \
        --key "$TMP/server.key" --events "$TMP/punchd-$proto.ev" 2>/dev/null </dev/null &
    wait_for "$TMP/punchd-$proto.ev"
    # punch natcheck tells what the gateway offers: this protocol only.
    nc=$(lab exec alice -- env XDG_CONFIG_HOME="$TMP/alice" "$PUNCH" --server 198.51.100.1 \
        natcheck --json) || fail "$proto: natcheck failed"
    offer=$(grep -o '"portmap":{[^}]*}' <<<"$nc")
    for p in pcp natpmp upnp; do
        want=false; [ "$p" = "$proto" ] && want=true
        grep -q "\"$p\":$want" <<<"$offer" || fail "$proto: natcheck says $offer"
    done
    ok "natcheck with miniupnpd offering $proto: $offer"
    rm -f "$TMP/in" && mkfifo "$TMP/in"
    (exec "$PUNCH_LAB" --prefix "$TEST_PREFIX" exec alice -- env XDG_CONFIG_HOME="$TMP/alice" \
        "$PUNCH" --server 198.51.100.1 --name alice --events "$TMP/exit-$proto.ev" \
        listen --datagram <"$TMP/in" >/dev/null 2>&1) &
    listener=$!  # punch itself: the subshell, punch-lab, ip netns exec and env exec it
    exec 9>"$TMP/in"  # its stdin stays open
    for ((i = 0; i < 400; i++)); do grep -q '"event":"portmap"' "$TMP/exit-$proto.ev" 2>/dev/null && break; sleep 0.01; done
    [ "$(rules)" = 1 ] || fail "$proto: no mapping on nat-a while punch runs: $(cat "$TMP/exit-$proto.ev")"
    kill -TERM "$listener"
    wait "$listener" 2>/dev/null || true
    exec 9>&-
    [ "$(rules)" = 0 ] || fail "$proto: the mapping outlived punch"
    ok "$proto: the mapping is on nat-a while punch runs and deleted when it exits"
    lab down >/dev/null
done
