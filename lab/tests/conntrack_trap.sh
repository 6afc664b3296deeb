#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Linux's conntrack trap (issue 4): two port-restricted kernel NATs that, like
# many Linux routers, take in unsolicited packets to themselves
# (--conntrack-trap on), uplinks of 2 ms and 40 ms so one side's punch
# reaches the other's NAT before that side has sent anything, both orders.
# With punch's first probes sent at TTL 2 (they open the sender's own NAT
# and die in the core) both sides end direct, fast; with that turned off
# (--open-ttl 0) the trap holds and they stay on the relay — the trap shown.
. "$(dirname "$0")/lib.sh"
B=${PUNCH_BUILD_DIR:?}
PUNCH=$B/apps/punch PUNCHD=$B/apps/punchd

# run DELAY_ARGS OPEN_TTL: prints "alice-kind bob-kind alice-first-direct-ms"
run() {
    local delays=$1 ttl=$2 i
    rm -rf "$TMP/c" && mkdir -p "$TMP/c"
    lab up different-nats --conntrack-trap on $delays >/dev/null
    lab exec server -- "$PUNCHD" --listen 198.51.100.1:3478 --key "$TMP/c/s.key" \
        --events "$TMP/c/pd.ev" 2>/dev/null </dev/null &
    wait_for "$TMP/c/pd.ev"
    (while [ ! -e "$TMP/c/stop" ]; do echo hi; sleep 0.3; done) |
        lab exec bob -- env XDG_CONFIG_HOME="$TMP/c/bob" "$PUNCH" --open-ttl "$ttl" \
            --server 198.51.100.1 --name bob --events "$TMP/c/bob.ev" listen --datagram \
            >/dev/null 2>&1 &
    local bob=$!
    for ((i = 0; i < 400; i++)); do grep -q registered "$TMP/c/bob.ev" 2>/dev/null && break; sleep 0.025; done
    (for ((i = 0; i < 10; i++)); do echo hi; sleep 0.3; done) |
        lab exec alice -- env XDG_CONFIG_HOME="$TMP/c/alice" timeout --foreground 20 "$PUNCH" --open-ttl "$ttl" \
            --server 198.51.100.1 --name alice --events "$TMP/c/alice.ev" connect bob --datagram \
            >/dev/null 2>&1 || true
    touch "$TMP/c/stop"
    kill -TERM "$bob" 2>/dev/null || true
    wait "$bob" 2>/dev/null || true
    lab down >/dev/null
    local a b t
    a=$(grep '"event":"path"' "$TMP/c/alice.ev" | tail -1 | grep -o '"kind":"[a-z]*"' | cut -d'"' -f4)
    b=$(grep '"event":"path"' "$TMP/c/bob.ev" | tail -1 | grep -o '"kind":"[a-z]*"' | cut -d'"' -f4)
    t=$(grep '"event":"path".*"kind":"direct"' "$TMP/c/alice.ev" | head -1 | grep -o '"t_ms":[0-9]*' | cut -d: -f2)
    echo "${a:-none} ${b:-none} ${t:--}"
}

for delays in "--delay-a 2ms --delay-b 40ms" "--delay-a 40ms --delay-b 2ms"; do
    read -r a b _ <<<"$(run "$delays" 0)"
    [ "$a $b" = "relay relay" ] || fail "$delays, --open-ttl 0: ended $a/$b; the trap should have held (relay)"
    ok "$delays, no low TTL: the trap holds, both on the relay"
    read -r a b t <<<"$(run "$delays" 2)"
    [ "$a $b" = "direct direct" ] || fail "$delays, TTL 2 openers: ended $a/$b, want direct/direct"
    [ "$t" -lt 3000 ] || fail "$delays: direct only after $t ms"
    ok "$delays, TTL 2 openers: direct on both sides, alice's first direct path at $t ms"
done
