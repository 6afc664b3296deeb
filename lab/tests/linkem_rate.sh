#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# linkem keeps up: 60 000 datagrams at 40 000/s through a 5 ms link (both
# alice's and the server's access links emulated) all arrive, in order.
. "$(dirname "$0")/lib.sh"
N=60000 RATE=40000
lab up public ${RATE_LAB_ARGS:---delay 5ms}
lab exec alice -- ping -c 2 -i 0.01 -W 1 -q 198.51.100.1 >/dev/null
lab exec server -- python3 "$UDP_TOOL" count --port 9000 --ready "$TMP/ready" $N 1 >"$TMP/count" &
wait_for "$TMP/ready"
lab exec alice -- python3 "$UDP_TOOL" blast 198.51.100.1:9000 $N $RATE
wait
read -r _ got _ reord <"$TMP/count"
echo "received $got of $N, $reord reordered"
[ "$got" -ge $((N * 999 / 1000)) ] || fail "linkem lost packets at $RATE/s: $got of $N"
[ "$reord" = 0 ] || fail "linkem reordered $reord packets without jitter"
ok "$N datagrams at $RATE/s through two 5 ms links: $got arrived, in order"
