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
out=$(python3 - "$port" <<'PY'
import socket, sys
ADDR = ("2001:db8:ff::1", int(sys.argv[1]))
def conn(src):
    s = socket.socket(socket.AF_INET6)
    s.setsockopt(socket.SOL_IP, 15, 1)  # IP_FREEBIND: any address of a local route
    s.bind((src, 0)); s.connect(ADDR); return s
def closed(s, within):
    s.settimeout(within)
    try:
        return s.recv(1) == b""
    except (socket.timeout, TimeoutError): return False
    except ConnectionResetError: return True
same64 = [conn("2001:db8:1::%x" % (0x1000 * n + 7)) for n in range(1, 11)]
held = [s for s in same64 if not closed(s, 0.5)]
other = conn("2001:db8:2::5")
if len(held) != 4: sys.exit("one /64 holds %d connections from 10 addresses, not 4" % len(held))
if closed(other, 0.5): sys.exit("another /64 was refused although the server has room")
print("ok")
PY
) || fail "per-/64 limit: $out"
kill -USR1 "$PUNCHD_PID"
c=$(next_event counters) || fail "no counters event"
[ "$(json_field "$c" tcp_refused_per_ip)" = 6 ] && [ "$(json_field "$c" tcp_refused_full)" = 0 ] ||
    fail "per-/64 limit: want tcp_refused_per_ip 6, tcp_refused_full 0 in $c"
pass "--max-tcp-per-ip 4 per /64: 6 of 10 connections from 10 addresses of one /64 refused, another /64 served"
