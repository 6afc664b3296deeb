#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# punchd on one address, as on a rented server (issue 10): no --alt. Alice
# behind the kernel's NAT with a random port per 5-tuple (masquerade
# fully-random), bob behind a port-restricted cone (masquerade). punchd's
# second port (PORT+1, its default) lets each side tell its NAT's mapping
# from the two ports' answers: alice registers "apdm", bob "eim", and
# many-port probing makes the path direct. Each run can miss (about 2 %),
# so five runs, of which at least four must end direct by birthday with
# the data through. With --second-port off both register "unknown", and
# once hole punching has found nothing for a second each says it tries
# birthday anyway; the side asked (bob, put behind the random NAT here)
# opens the many sockets, and the path ends direct by birthday.
. "$(dirname "$0")/lib.sh"
B=${PUNCH_BUILD_DIR:?}
PUNCH=$B/apps/punch PUNCHD=$B/apps/punchd
topo=(different-nats --nat-a symmetric-random --nat-b port-restricted-cone)
PAIR_PUNCHD_ARGS=(--listen 198.51.100.1:3478)
nat_of() { grep -o '"event":"registered".*' "$TMP/c/$1.ev" | head -1 | grep -o '"nat":"[^"]*"' | cut -d'"' -f4; }

direct=0 times=()
for ((r = 0; r < 5; r++)); do
    run_pair "${topo[@]}"
    [ "$PAIR_RC" = 0 ] || fail "run $r: connect exited $PAIR_RC: $(cat "$TMP/c/alice.err")"
    [ "$(nat_of alice)/$(nat_of bob)" = apdm/eim ] ||
        fail "run $r: registered as $(nat_of alice) / $(nat_of bob), want apdm / eim"
    [ "$(sort -u "$TMP/c/bob.out")" = "hello bob" ] || fail "run $r: bob got '$(cat "$TMP/c/bob.out")'"
    [ "$(sort -u "$TMP/c/alice.out")" = "hello alice" ] || fail "run $r: alice got '$(cat "$TMP/c/alice.out")'"
    a=$(last_path alice) b=$(last_path bob)
    if [ "$a" = direct/birthday ] && [ "$b" = direct/birthday ]; then
        direct=$((direct + 1)) times+=("$(first_path_ms alice direct)")
    elif [ "$a" != relay/relay ] || [ "$b" != relay/relay ]; then
        fail "run $r: ended $a / $b: neither birthday nor relay"
    fi
done
[ "$direct" -ge 4 ] || fail "only $direct of 5 runs direct by birthday"
ok "one-address punchd, symmetric-random (kernel) x port-restricted-cone: $direct/5 direct by birthday (alice's first direct path at ${times[*]} ms)"

PAIR_PUNCHD_ARGS=(--listen 198.51.100.1:3478 --second-port off)
for ((r = 0; r < 2; r++)); do  # a run may miss (about 2 %): one more try
    run_pair different-nats --nat-a port-restricted-cone --nat-b symmetric-random
    [ "$(nat_of alice)/$(nat_of bob)" = unknown/unknown ] ||
        fail "--second-port off: registered as $(nat_of alice) / $(nat_of bob), want unknown / unknown"
    for side in alice bob; do
        grep -q '"why":"nat behaviour unknown: trying birthday anyway"' "$TMP/c/$side.ev" ||
            fail "--second-port off: $side did not try birthday anyway"
    done
    [ "$(last_path alice) $(last_path bob)" = "direct/birthday direct/birthday" ] && break
done
[ "$(last_path alice) $(last_path bob)" = "direct/birthday direct/birthday" ] ||
    fail "--second-port off: ended $(last_path alice) / $(last_path bob), want birthday"
ok "--second-port off: both unknown, both tried birthday anyway, direct at $(first_path_ms alice direct) ms"
