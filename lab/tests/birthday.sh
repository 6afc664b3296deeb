#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Many-port probing ("birthday", issue 5) on real packets: alice behind a
# NAT that gives every destination a random port (punch-nat
# symmetric-random), bob behind a port-restricted cone. Each run can miss
# (the theory says ~2 % of runs with 256 sockets and 1024 probes), so five
# runs, of which at least three must end direct by birthday on both sides,
# with the data through; and with --no-birthday they stay on the relay.
. "$(dirname "$0")/lib.sh"
B=${PUNCH_BUILD_DIR:?}
PUNCH=$B/apps/punch PUNCHD=$B/apps/punchd
topo=(different-nats --backend punch-nat --nat-a symmetric-random --nat-b port-restricted-cone)

direct=0 times=()
for ((r = 0; r < 5; r++)); do
    run_pair "${topo[@]}"
    [ "$PAIR_RC" = 0 ] || fail "run $r: connect exited $PAIR_RC: $(cat "$TMP/c/alice.err")"
    [ "$(sort -u "$TMP/c/bob.out")" = "hello bob" ] || fail "run $r: bob got '$(cat "$TMP/c/bob.out")'"
    [ "$(sort -u "$TMP/c/alice.out")" = "hello alice" ] || fail "run $r: alice got '$(cat "$TMP/c/alice.out")'"
    a=$(last_path alice) b=$(last_path bob)
    if [ "$a" = direct/birthday ] && [ "$b" = direct/birthday ]; then
        direct=$((direct + 1)) times+=("$(first_path_ms alice direct)")
    elif [ "$a" != relay/relay ] || [ "$b" != relay/relay ]; then
        fail "run $r: ended $a / $b: neither birthday nor relay"
    fi
done
[ "$direct" -ge 3 ] || fail "only $direct of 5 runs direct by birthday"
ok "symmetric-random x port-restricted-cone: $direct/5 runs direct by birthday (alice's first direct path at ${times[*]} ms)"

run_pair "${topo[@]}" -- --no-birthday
[ "$(last_path alice) $(last_path bob)" = "relay/relay relay/relay" ] ||
    fail "--no-birthday: ended $(last_path alice) / $(last_path bob), want the relay"
ok "--no-birthday: both on the relay"
