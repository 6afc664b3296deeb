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

birthday_runs 5 "${topo[@]}"
[ "$BIRTHDAY_DIRECT" -ge 3 ] || fail "only $BIRTHDAY_DIRECT of 5 runs direct by birthday"
ok "symmetric-random x port-restricted-cone: $BIRTHDAY_DIRECT/5 runs direct by birthday (alice's first direct path at ${BIRTHDAY_TIMES[*]} ms)"

run_pair "${topo[@]}" -- --no-birthday
[ "$(last_path alice) $(last_path bob)" = "relay/relay relay/relay" ] ||
    fail "--no-birthday: ended $(last_path alice) / $(last_path bob), want the relay"
ok "--no-birthday: both on the relay"
