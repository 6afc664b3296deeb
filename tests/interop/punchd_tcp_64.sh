#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Issue 12, finding 6: punchd counts TCP connections per IPv6 /64, not per
# address (one host holds a whole /64: 40 addresses of one /64 once held
# all 1024 slots). In a network namespace of its own where 2001:db8:1::/64
# and 2001:db8:2::/64 are local: 10 connections from 10 addresses of the
# first /64 get --max-tcp-per-ip 4 slots, an address of the second /64
# still gets in.
if [ -z "${PUNCH_IN_NETNS:-}" ]; then
    [ "$(id -u)" = 0 ] || { echo "SKIP: needs root for a network namespace"; exit 77; }
    exec unshare --net env PUNCH_IN_NETNS=1 bash "$0" "$@"
fi
ip link set lo up
ip -6 addr add 2001:db8:ff::1/128 dev lo nodad
for net in 1 2; do ip -6 route add local "2001:db8:$net::/64" dev lo; done
. "$(dirname "$0")/lib.sh"

# A fixed port: the namespace is ours (port_of reads IPv4 listen lists only).
port=3478
start_punchd --listen "[2001:db8:ff::1]:$port" --max-tcp 20 --max-tcp-per-ip 4
expect_tcp_per_source_limit "per-/64 limit" 2001:db8:ff::1 "$port" 2001:db8:2::5 \
    $(for n in $(seq 10); do printf '2001:db8:1::%x\n' $((0x1000 * n + 7)); done)
pass "--max-tcp-per-ip 4 per /64: 6 of 10 connections from 10 addresses of one /64 refused, another /64 served"
