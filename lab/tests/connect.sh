#!/usr/bin/env bash
# punch listen / punch connect across the lab's NATs, real packets: each
# case asserts the path kind and technique both sides end on, and that a
# datagram crossed each way (issue 4's grid, on both NAT backends).
. "$(dirname "$0")/lib.sh"
B=${PUNCH_BUILD_DIR:?}
PUNCH=$B/apps/punch PUNCHD=$B/apps/punchd

# case TOPOLOGY-ARGS... -- WANT_KIND WANT_TECHNIQUE
case_() {
    local args=() want_kind want_tech
    while [ "$1" != -- ]; do args+=("$1"); shift; done
    want_kind=$2 want_tech=$3
    rm -rf "$TMP/c" && mkdir -p "$TMP/c"
    lab up "${args[@]}" >/dev/null
    lab exec server -- "$PUNCHD" --listen 198.51.100.1:3478 --key "$TMP/c/server.key" \
        --events "$TMP/c/punchd.ev" 2>/dev/null </dev/null &
    wait_for "$TMP/c/punchd.ev"
    # Datagrams may be lost (20% loss case): each side repeats its line until
    # the other side has it, as a datagram application would.
    (while [ ! -e "$TMP/c/stop" ]; do [ -s "$TMP/c/alice.out" ] || echo "hello alice"; sleep 0.3; done) |
        lab exec bob -- env XDG_CONFIG_HOME="$TMP/c/bob" "$PUNCH" --server 198.51.100.1 \
            --name bob --events "$TMP/c/bob.ev" listen --datagram >"$TMP/c/bob.out" 2>"$TMP/c/bob.err" &
    local bob=$! i
    for ((i = 0; i < 400; i++)); do grep -q registered "$TMP/c/bob.ev" 2>/dev/null && break; sleep 0.025; done
    # Alice talks once the answer is in, then waits 3 s more for upgrades.
    local rc=0
    (for ((i = 0; i < 100; i++)); do [ -s "$TMP/c/alice.out" ] && [ -s "$TMP/c/bob.out" ] && break
         echo "hello bob"; sleep 0.3; done; sleep 3) |
        lab exec alice -- env XDG_CONFIG_HOME="$TMP/c/alice" timeout 40 "$PUNCH" \
            --server 198.51.100.1 --name alice --events "$TMP/c/alice.ev" connect bob --datagram --timeout 30 \
            >"$TMP/c/alice.out" 2>"$TMP/c/alice.err" || rc=$?
    touch "$TMP/c/stop"
    kill -TERM "$bob" 2>/dev/null || true
    wait "$bob" 2>/dev/null || true
    lab down >/dev/null
    local what="${args[*]}"
    [ "$rc" = 0 ] || fail "$what: connect exited $rc: $(cat "$TMP/c/alice.err")"
    [ "$(sort -u "$TMP/c/bob.out")" = "hello bob" ] || fail "$what: bob got '$(cat "$TMP/c/bob.out")'"
    [ "$(sort -u "$TMP/c/alice.out")" = "hello alice" ] || fail "$what: alice got '$(cat "$TMP/c/alice.out")'"
    local side last kind tech
    for side in alice bob; do
        last=$(grep '"event":"path"' "$TMP/c/$side.ev" | tail -1)
        kind=$(grep -o '"kind":"[^"]*"' <<<"$last" | cut -d'"' -f4)
        tech=$(grep -o '"technique":"[^"]*"' <<<"$last" | cut -d'"' -f4)
        # A NAT that picks a new port shows up as peer-reflexive: hole punching too.
        [ "$tech" = peer-reflexive ] && [ "$want_tech" = hole-punch ] && tech=hole-punch
        [ "$kind/$tech" = "$want_kind/$want_tech" ] ||
            fail "$what: $side ends on $kind/$tech, want $want_kind/$want_tech ($(grep path "$TMP/c/$side.ev"))"
    done
    local t; t=$(grep '"event":"path"' "$TMP/c/alice.ev" | grep "\"kind\":\"$want_kind\"" | head -1 | grep -o '"t_ms":[0-9]*' | cut -d: -f2)
    ok "$what: $want_kind via $want_tech (alice's first $want_kind path at $t ms)"
}

case_ different-nats --nat-a port-restricted-cone --nat-b port-restricted-cone --delay 10ms -- direct hole-punch
case_ different-nats --nat-a port-restricted-cone --nat-b port-restricted-cone --loss 20% -- direct hole-punch
case_ same-nat --hairpin off -- direct private
case_ multi-level --nat-x cgnat --hairpin on -- direct hairpin
case_ multi-level --nat-x cgnat --hairpin off -- relay relay
case_ different-nats --nat-a symmetric-random --nat-b symmetric-random -- relay relay
case_ public -- direct hole-punch
case_ reversal -- direct hole-punch
case_ different-nats --backend punch-nat --nat-a full-cone --nat-b restricted-cone -- direct hole-punch
case_ different-nats --backend punch-nat --nat-a symmetric-sequential --nat-b full-cone -- direct hole-punch
case_ different-nats --backend punch-nat --nat-a symmetric-random --nat-b port-restricted-cone -- relay relay
