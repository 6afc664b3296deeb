#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Issue 10: TCP simultaneous open (draft §3.5) that beats NATs which answer
# an unsolicited SYN with RST, or drop it. Each side's first SYN goes with
# a TTL of 2 and opens its own NAT; then the full SYNs cross. Asserts that
# `punch connect --tcp` ends direct by tcp-simultaneous-open, 50 lines each
# way intact, through two kernel NATs (nftables masquerade) whose input
# policy is none (the NAT's own kernel answers with RST), reject (OpenWrt's
# wan zone: TCP reset) and drop, 10 ms per access link; and through two
# punch-nat NATs that RST, on the first try, with 10 ms per access link and
# with none; and through two kernel NATs that RST with no delay. Before the opening SYN, two NATs that RST failed all three
# tries (issue 10, "what was seen" 2). And through two kernel NATs with no
# input firewall, 10 ms, when only bob's opening SYN gets its ICMP error
# back (r2 sends every one, r1 none: routers rate-limit them), on the first
# try: before the answerer held its opening socket, alice's full SYN
# replaced hers just before bob's early full SYN reached it, her NAT (in
# SYN_SENT2) took her new ISN as INVALID, and every run ended "no TCP
# connection in 5000 ms" (the matrix cell's 1 run in 10).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tcp_lib.sh"

# tries_failed: alice's failed TCP tries (her attempt events that say so)
tries_failed() { grep '"event":"attempt"' "$D/alice.ev" | grep -c '"why":"try [0-9] of' || true; }

for policy in none reject drop; do
    case_ bob alice different-nats --input-policy "$policy" --delay 10ms -- tcp-simultaneous-open
    echo "    input policy $policy: $(tries_failed) failed tries first"
    grep '"event":"attempt"' "$D/alice.ev" | grep '"why":"try' | sed 's/^/    /' || true
done

# punch-nat with syn=rst on both NATs: the old head start always sent one
# SYN into a RST; the opening SYN lets the two cross.
case_ bob alice different-nats --backend punch-nat --input-policy none --delay 10ms -- tcp-simultaneous-open
[ "$(tries_failed)" = 0 ] ||
    fail "punch-nat, both RST: $(tries_failed) failed tries before the TCP path: $(grep '"event":"attempt"' "$D/alice.ev")"
ok "punch-nat, both RST: direct by tcp-simultaneous-open on the first try"

# The same with no delay at all: the two moments are further apart than a
# trip between the NATs, so the asker's full SYN (sent at its opening SYN's
# ICMP error) meets bob's NAT before bob's opening SYN opened it, and that
# RST used to end the try and every try after it (the asker fell back to
# UDP). Now the try goes on: bob's full SYN reaches the asker's listener
# through her open NAT, and hers goes again once bob's NAT is open.
case_ bob alice different-nats --backend punch-nat --input-policy none -- tcp-simultaneous-open
[ "$(tries_failed)" = 0 ] ||
    fail "punch-nat, both RST, no delay: $(tries_failed) failed tries before the TCP path: $(grep '"event":"attempt"' "$D/alice.ev")"
ok "punch-nat, both RST, no delay: direct by tcp-simultaneous-open on the first try"

# Two kernel NATs with no input firewall, no delay: where that RST comes,
# conntrack also drops the asker's own entry, and bob's SYN met a RST from
# her NAT (about 1 run in 4 failed all three tries). The side that gets a
# RST now opens its NAT again with a low-TTL SYN and SYNs again after the
# guard, within the same try.
case_ bob alice different-nats --input-policy none -- tcp-simultaneous-open
[ "$(tries_failed)" = 0 ] ||
    fail "kernel NATs, input policy none, no delay: $(tries_failed) failed tries before the TCP path: $(grep '"event":"attempt"' "$D/alice.ev")"
ok "kernel NATs, input policy none, no delay: direct by tcp-simultaneous-open on the first try"

# Only bob's ICMP errors come back (see the head of this file).
icmp_only_bob() {
    lab exec r2 -- sysctl -q net.ipv4.icmp_ratelimit=0
    lab exec r1 -- nft add table inet tcp_open
    lab exec r1 -- nft add chain inet tcp_open out '{ type filter hook output priority 0; }'
    lab exec r1 -- nft add rule inet tcp_open out icmp type time-exceeded drop
}
AFTER_UP=icmp_only_bob case_ bob alice different-nats --input-policy none --delay 10ms -- tcp-simultaneous-open
[ "$(tries_failed)" = 0 ] ||
    fail "kernel NATs, only bob's ICMP: $(tries_failed) failed tries before the TCP path: $(grep '"event":"attempt"' "$D/alice.ev")"
ok "kernel NATs, input policy none, 10 ms, only bob's ICMP errors: direct by tcp-simultaneous-open on the first try"
