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
# birthday anyway; the side whose NAT changed its port (bob, behind the
# random NAT here; the cone kept alice's) opens the many sockets, and the
# path ends direct by birthday. The other way round, the random NAT on the
# asking side: docs/nat-matrix.md, "punchd addresses", one-port.
. "$(dirname "$0")/lib.sh"
B=${PUNCH_BUILD_DIR:?}
PUNCH=$B/apps/punch PUNCHD=$B/apps/punchd
topo=(different-nats --nat-a symmetric-random --nat-b port-restricted-cone)
PAIR_PUNCHD_ARGS=(--listen 198.51.100.1:3478)
nat_of() { grep -o '"event":"registered".*' "$TMP/c/$1.ev" | head -1 | grep -o '"nat":"[^"]*"' | cut -d'"' -f4; }

registered_as_measured() {
    [ "$(nat_of alice)/$(nat_of bob)" = apdm/eim ] ||
        fail "run $1: registered as $(nat_of alice) / $(nat_of bob), want apdm / eim"
}
PAIR_CHECK=registered_as_measured birthday_runs 5 "${topo[@]}"
[ "$BIRTHDAY_DIRECT" -ge 4 ] || fail "only $BIRTHDAY_DIRECT of 5 runs direct by birthday"
ok "one-address punchd, symmetric-random (kernel) x port-restricted-cone: $BIRTHDAY_DIRECT/5 direct by birthday (alice's first direct path at ${BIRTHDAY_TIMES[*]} ms)"

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
