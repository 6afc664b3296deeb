#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Hosts reach the server (both addresses) in `public` and `different-nats`;
# LANs cannot be reached from outside without a mapping; and no namespace has
# a route out of the lab: following `ip route get` hop by hop from every node
# always ends in "unreachable" inside the lab (checked on routing tables
# only — nothing is sent).
. "$(dirname "$0")/lib.sh"

reach() { lab exec "$1" -- ping -c 1 -W 2 -q "$2" >/dev/null || fail "$1 cannot reach $2"; }
unreach() { if lab exec "$1" -- ping -c 1 -W 0.3 -q "$2" >/dev/null 2>&1; then fail "$1 reached $2"; fi; }

# no_route_out DEST — from every node, follow the next hops towards DEST
no_route_out() {
    local -A owner
    local n a
    for n in $(lab nodes); do
        for a in $(lab addr "$n" 2>/dev/null || true); do owner[$a]=$n; done
    done
    for n in $(lab nodes); do
        local at=$n hops=0 r gw
        while r=$(lab exec "$at" -- ip -o route get "$1" 2>/dev/null); do
            gw=$(sed -n 's/.* via \([0-9.]*\) .*/\1/p' <<<"$r")
            [ -n "$gw" ] || fail "$at delivers $1 on-link: $r"
            [ -n "${owner[$gw]:-}" ] || fail "$at routes $1 via $gw, which is not in the lab"
            at=${owner[$gw]}
            hops=$((hops + 1))
            [ $hops -lt 10 ] || fail "routing loop towards $1 from $n"
        done
    done
    ok "$1: no route out of the lab from any of $(lab nodes | wc -l) nodes"
}

lab up public
for h in alice bob; do reach $h 198.51.100.1; reach $h 198.51.100.2; done
reach alice 192.0.2.10; reach bob 203.0.113.10
ok "public: alice and bob reach the server's two addresses and each other"
for d in 8.8.8.8 10.0.0.1 192.168.1.1 172.16.0.1 100.64.0.1 1.1.1.1; do no_route_out $d; done
lab down

lab up different-nats
for h in alice bob; do reach $h 198.51.100.1; reach $h 198.51.100.2; done
ok "different-nats: alice and bob reach the server"
unreach server 10.0.1.10; unreach bob 10.0.1.10; unreach alice 10.0.2.10
ok "different-nats: private addresses are not routed outside their LAN"
unreach server 203.0.113.1; unreach bob 203.0.113.1
# unsolicited UDP to nat-a's public address, on the port alice is listening on
udp alice --port 5000 --timeout 1 ready:"$TMP/alice.ready" recv >"$TMP/alice.out" &
wait_for "$TMP/alice.ready"
udp server --port 3478 send:203.0.113.1:5000:hello
udp bob --port 3478 send:203.0.113.1:5000:hello
wait
grep -q "^recv none" "$TMP/alice.out" || fail "unsolicited UDP reached alice: $(cat "$TMP/alice.out")"
ok "different-nats: nothing reaches alice without a mapping"
for d in 8.8.8.8 10.0.0.1 1.1.1.1; do no_route_out $d; done
for n in $(lab nodes); do
    case $n in r[0-9]) ! lab exec $n -- ip route show default | grep -q . || fail "router $n has a default route" ;; esac
done
ok "routers have no default route"
