#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# punch listen / punch connect across the lab's NATs, real packets: each
# case asserts the path kind and technique both sides end on, and that a
# datagram crossed each way (issue 4's grid, on both NAT backends, and
# issue 5's port prediction: punchd runs with --alt so peers can learn
# their NAT's allocation step).
. "$(dirname "$0")/lib.sh"
B=${PUNCH_BUILD_DIR:?}
PUNCH=$B/apps/punch PUNCHD=$B/apps/punchd

# case TOPOLOGY-ARGS... -- WANT_KIND WANT_TECHNIQUE
case_() {
    local args=() want_kind want_tech
    while [ "$1" != -- ]; do args+=("$1"); shift; done
    want_kind=$2 want_tech=$3
    run_pair "${args[@]}"
    local what="${args[*]}"
    [ "$PAIR_RC" = 0 ] || fail "$what: connect exited $PAIR_RC: $(cat "$TMP/c/alice.err")"
    [ "$(sort -u "$TMP/c/bob.out")" = "hello bob" ] || fail "$what: bob got '$(cat "$TMP/c/bob.out")'"
    [ "$(sort -u "$TMP/c/alice.out")" = "hello alice" ] || fail "$what: alice got '$(cat "$TMP/c/alice.out")'"
    local side path
    for side in alice bob; do
        path=$(last_path "$side")
        # A NAT that picks a new port shows up as peer-reflexive: hole punching too.
        [ "$path" = direct/peer-reflexive ] && [ "$want_tech" = hole-punch ] && path=direct/hole-punch
        [ "$path" = "$want_kind/$want_tech" ] ||
            fail "$what: $side ends on $path, want $want_kind/$want_tech ($(grep path "$TMP/c/$side.ev"))"
        # The path's local end is the interface address, not the wildcard.
        ! grep '"event":"path"' "$TMP/c/$side.ev" | grep -q '"local":"0\.0\.0\.0:' ||
            fail "$what: $side's path event names the wildcard as its local end"
    done
    ok "$what: $want_kind via $want_tech (alice's first $want_kind path at $(first_path_ms alice "$want_kind") ms)"
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
case_ different-nats --backend punch-nat --nat-a symmetric-sequential --nat-b full-cone -- direct port-prediction
case_ different-nats --backend punch-nat --nat-a symmetric-sequential --nat-b port-restricted-cone -- direct port-prediction
case_ different-nats --backend punch-nat --nat-a port-restricted-cone --nat-b symmetric-sequential -- direct port-prediction
case_ different-nats --backend punch-nat --nat-a symmetric-sequential --nat-b symmetric-sequential -- direct port-prediction
