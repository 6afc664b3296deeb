#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The kernel backend's presets behave as named (RFC 4787 terms): a UDP probe
# from one local port to the server's two addresses and two ports shows the
# mapping (same public port = eim, different = apdm), and replies from a port
# or address the client never sent to show the filtering.
. "$(dirname "$0")/lib.sh"

S1=198.51.100.1 S2=198.51.100.2
probe() {   # probe NODE → lines: 3 mapped endpoints, then other-port, other-addr verdicts
    udp "$1" --port 5000 --timeout 0.3 echo:$S1:3478 echo:$S1:3479 echo:$S2:3478 \
        ask:other-port:$S1:3478 ask:other-addr:$S2:$S1:3478
}
mapped() { awk '$1 == "echo" { print $3 }' <<<"$1"; }
unsolicited() { awk '$1 == "ask" { print $4 }' <<<"$1" | tr '\n' ' '; }
ports() { mapped "$1" | cut -d: -f2 | sort -u | wc -l; }

# port-restricted-cone (nat-a) and symmetric-random (nat-b)
lab up different-nats --nat-a port-restricted-cone --nat-b symmetric-random
start_echo server $S1:3478 $S1:3479 $S2:3478
out=$(probe alice); echo "$out"
[ "$(mapped "$out" | sort -u)" = "203.0.113.1:5000" ] || fail "port-restricted-cone: mapping not endpoint-independent"
[ "$(unsolicited "$out")" = "none none " ] || fail "port-restricted-cone: unsolicited packet got in"
ok "port-restricted-cone: eim (one public port for 3 destinations), apdf"
out=$(probe bob); echo "$out"
mapped "$out" | grep -qv '^192\.0\.2\.1:' && fail "symmetric-random: wrong public address"
[ "$(ports "$out")" = 3 ] || fail "symmetric-random: expected 3 different public ports"
[ "$(unsolicited "$out")" = "none none " ] || fail "symmetric-random: unsolicited packet got in"
ok "symmetric-random: apdm (3 destinations, 3 public ports), apdf"
lab down

# firewall (nat-a) and basic-nat (nat-b)
lab up different-nats --nat-a firewall --nat-b basic-nat
start_echo server $S1:3478 $S1:3479 $S2:3478
out=$(probe alice); echo "$out"
[ "$(mapped "$out" | sort -u)" = "203.0.113.74:5000" ] || fail "firewall: address should not be translated"
[ "$(unsolicited "$out")" = "none none " ] || fail "firewall: unsolicited packet got in"
ok "firewall: no translation, apdf"
out=$(probe bob); echo "$out"
[ "$(mapped "$out" | sort -u)" = "192.0.2.20:5000" ] || fail "basic-nat: expected 192.0.2.20:5000 for every destination"
[ "$(unsolicited "$out")" = "got got " ] || fail "basic-nat: should not filter"
ok "basic-nat: 1:1 address, port kept, eif"
lab down

# cgnat at the ISP (multi-level): eim across the pool, apdf; kernel refuses what it cannot do
lab up multi-level --nat-x cgnat --nat-a port-restricted-cone
start_echo server $S1:3478 $S1:3479 $S2:3478
out=$(probe alice); echo "$out"
[ "$(mapped "$out" | sort -u | wc -l)" = 1 ] || fail "cgnat+cone: mapping not endpoint-independent"
mapped "$out" | grep -q '^203\.0\.113\.[1-4]:' || fail "cgnat: public address not from the pool"
[ "$(unsolicited "$out")" = "none none " ] || fail "cgnat: unsolicited packet got in"
ok "cgnat behind port-restricted-cone: eim, apdf"
lab down
for p in full-cone restricted-cone symmetric-sequential; do
    if lab up different-nats --nat-a "$p" 2>"$TMP/err"; then fail "kernel backend accepted $p"; fi
    grep -q "cannot do preset '$p'" "$TMP/err" || fail "no clear error for $p: $(cat "$TMP/err")"
    [ -z "$(ip netns list | grep "^$TEST_PREFIX-")" ] || fail "refused up left namespaces behind"
done
ok "kernel backend refuses full-cone, restricted-cone, symmetric-sequential"
if [ ! -x "${PUNCH_BUILD_DIR:-/nonexistent}/apps/punch-nat" ]; then
    lab up different-nats --backend punch-nat 2>"$TMP/err" && fail "punch-nat backend without binary"
    grep -q "punch-nat backend not built yet" "$TMP/err" || fail "unclear punch-nat error: $(cat "$TMP/err")"
    ok "punch-nat backend: clear error while the binary is missing"
fi
if [ -x "${PUNCH_BUILD_DIR:-/nonexistent}/apps/punch-nat" ]; then
    # the pluggable backend: same probes through punch-nat
    lab up different-nats --backend punch-nat --nat-a port-restricted-cone --nat-b symmetric-random
    start_echo server $S1:3478 $S1:3479 $S2:3478
    out=$(probe alice); echo "$out"
    [ "$(mapped "$out" | sort -u | wc -l)" = 1 ] || fail "punch-nat port-restricted-cone: not eim"
    [ "$(unsolicited "$out")" = "none none " ] || fail "punch-nat port-restricted-cone: not apdf"
    out=$(probe bob); echo "$out"
    [ "$(ports "$out")" = 3 ] || fail "punch-nat symmetric-random: not apdm"
    ok "punch-nat backend: port-restricted-cone eim/apdf, symmetric-random apdm"
fi
