#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# punch's last resort, TCP to punchd when UDP to it is blocked, over both
# families (issue 16): given punchd's IPv4 and IPv6 addresses (--server
# twice), punch connects over TCP to the first one's family first, as UDP
# would register, and to the other family's address when that connection
# fails (reset at once) or does not come up (SYNs dropped: after 2 s, not
# the 10 s a last try waits). In a network namespace of our own, punchd on
# 127.0.0.1 and ::1; nftables drops all UDP to it and, per case, TCP of
# one family. Where punch registered is the public address punchd saw,
# and the `registered` event's server.
if [ -z "${PUNCH_IN_NETNS:-}" ]; then
    [ "$(id -u)" = 0 ] || { echo "SKIP: needs root for a network namespace"; exit 77; }
    command -v nft >/dev/null || { echo "SKIP: no nft"; exit 77; }
    exec unshare --net env PUNCH_IN_NETNS=1 bash "$0" "$@"
fi
ip link set lo up
. "$(dirname "$0")/lib.sh"
PUNCH=${PUNCH:?set PUNCH to the punch binary}

start_punchd --listen 127.0.0.1:3478 --listen "[::1]:3478"

# block TCP_RULE: all UDP to punchd dropped, and TCP_RULE ("" for none).
block() {
    nft flush ruleset
    nft -f - <<NFT || fail "nft refused the rules"
table inet block {
    chain out {
        type filter hook output priority 0;
        udp dport 3478 drop
        $1
    }
}
NFT
}

# registers CASE WANT_PUBLIC_IP SERVER...: punch listen registers over TCP
# and punchd saw it from WANT_PUBLIC_IP; prints the registration's t_ms.
registers() {
    local name=$1 want=$2 ev=$TMP/$1.ev
    shift 2
    local args=()
    for s in "$@"; do args+=(--server "$s"); done
    XDG_CONFIG_HOME="$TMP/$name" timeout --foreground 30 "$PUNCH" "${args[@]}" --name "$name" \
        --events "$ev" listen </dev/null >/dev/null 2>"$TMP/$name.err" &
    local pid=$! i
    for ((i = 0; i < 800; i++)); do grep -q '"event":"registered"' "$ev" 2>/dev/null && break; sleep 0.025; done
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    local line
    line=$(grep '"event":"registered"' "$ev" | head -1)
    [ -n "$line" ] || fail "$name: never registered: $(tail -3 "$TMP/$name.err")"
    grep -q '"transport":"tcp"' <<<"$line" || fail "$name: not over TCP: $line"
    grep -qF "\"public\":\"$want" <<<"$line" || fail "$name: punchd did not see it from $want: $line"
    grep -qF "\"server\":\"$want" <<<"$line" || fail "$name: the event does not name the server at $want: $line"
    json_field "$line" t_ms
}

block "ip daddr 127.0.0.1 tcp dport 3478 reject with tcp reset"
t=$(registers reset4 "[::1]:" 127.0.0.1:3478 "[::1]:3478") || exit 1
pass "IPv4 TCP reset: registered over TCP at [::1] (t_ms $t)"

block "ip daddr 127.0.0.1 tcp dport 3478 drop"
t=$(registers drop4 "[::1]:" 127.0.0.1:3478 "[::1]:3478") || exit 1
# UDP given up at 2 s, the IPv4 try at 2 s more; the old single-family
# wait alone was 10 s
[ "$t" -lt 10000 ] || fail "IPv4 SYNs dropped: registered over [::1] only at $t ms"
pass "IPv4 SYNs dropped: registered over TCP at [::1] (t_ms $t)"

block "ip6 daddr ::1 tcp dport 3478 reject with tcp reset"
t=$(registers reset6 "127.0.0.1:" "[::1]:3478" 127.0.0.1:3478) || exit 1
pass "IPv6 first, its TCP reset: registered over TCP at 127.0.0.1 (t_ms $t)"

block ""
t=$(registers both "127.0.0.1:" 127.0.0.1:3478 "[::1]:3478") || exit 1
t6=$(registers both6 "[::1]:" "[::1]:3478" 127.0.0.1:3478) || exit 1
pass "TCP open on both: the first --server's family (IPv4 t_ms $t, IPv6 t_ms $t6)"
