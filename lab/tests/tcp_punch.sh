#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Issue 5, TCP paths between peers (`punch connect --tcp`): TCP
# simultaneous open (draft §3.5) through two port-restricted cone NATs (the
# kernel's conntrack), connection reversal (§3.2) and a direct connect in
# the `reversal` topology, and a clean fallback when a NAT answers early
# SYNs with RST. Each case asserts the kind and technique both sides end
# on and that 50 numbered lines cross each way intact, in order, once the
# TCP path is up (so over it).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tcp_lib.sh"

case_ bob alice different-nats --nat-a port-restricted-cone --nat-b port-restricted-cone --delay 10ms -- tcp-simultaneous-open
case_ bob alice different-nats --nat-a port-restricted-cone --nat-b port-restricted-cone -- tcp-simultaneous-open
case_ alice bob reversal -- reversal
case_ bob alice reversal -- tcp-direct

# NATs that answer unsolicited SYNs with RST (punch-nat's syn=rst): a try
# fails when the SYN aimed at such a NAT arrives before its own side's SYN
# left. One side goes first, the asker on odd tries and the other on even
# ones, so with one such NAT the first or the second try works. With two,
# the first SYN always meets a RST; whether a try still gets through
# depends on which RSTs reach their host in time (seen both ways): either
# a TCP path, or punch stays on its UDP path after 3 tries, each with an
# attempt event.
# rst_case NAT_A NAT_B WANT (tcp: a TCP path in the end; any: TCP, or the
# clean fallback)
rst_case() {
    FALLBACK=1 pair bob alice different-nats --backend punch-nat --nat-a "$1" --nat-b "$2"
    local what="nat-a $1, nat-b $2" tries p
    [ "$RC" = 0 ] || fail "$what: connect exited $RC: $(cat "$D/alice.err")"
    [ "$(cat "$D/bob.out")" = "$(lines from-alice)" ] || fail "$what: bob got $(wc -l <"$D/bob.out") lines: $(head -3 "$D/bob.out")"
    [ "$(cat "$D/alice.out")" = "$(lines from-bob)" ] || fail "$what: alice got $(wc -l <"$D/alice.out") lines: $(head -3 "$D/alice.out")"
    tries=$(grep '"event":"attempt"' "$D/alice.ev" | grep -c '"technique":"tcp-' || true)
    p=$(last_path alice)
    echo "$what: alice ends on $(field kind <<<"$p")/$(field technique <<<"$p") after $tries failed TCP tries"
    grep '"event":"attempt"' "$D/alice.ev" | grep '"technique":"tcp-' | sed 's/^/    /' || true
    if [ "$3" = tcp ]; then
        tcp_up alice && tcp_up bob || fail "$what: no TCP path: $(grep -E '"(path|attempt)"' "$D/alice.ev")"
    elif ! tcp_up alice; then
        ! tcp_up bob || fail "$what: bob is on TCP, alice is not"
        [ "$tries" = 3 ] || fail "$what: $tries attempt events for TCP, want 3: $(cat "$D/alice.ev")"
        grep '"event":"attempt"' "$D/alice.ev" | grep '"technique":"tcp-' | tail -1 | grep -q 'staying on the path in use' ||
            fail "$what: the last attempt event does not say punch stays on its path"
    fi
    ok "$what: $(field kind <<<"$p") via $(field technique <<<"$p"), $N lines each way intact"
}
rst_case port-restricted-cone,syn=rst port-restricted-cone tcp
rst_case port-restricted-cone port-restricted-cone,syn=rst tcp
rst_case port-restricted-cone,syn=rst port-restricted-cone,syn=rst any
