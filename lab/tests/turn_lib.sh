# SPDX-License-Identifier: MIT
# Shared by the tests of relaying through coturn (turn.sh, turn_tls.sh):
# numbered, hashed datagrams fed from each side and checked on arrival,
# bounded waits, and r1's block between the two sides.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

now_us() { echo "${EPOCHREALTIME/./}"; }
ms_since() { echo $(( ($(now_us) - $1) / 1000 )); }
# wait_grep FILE REGEX SECONDS: true once FILE has a line matching REGEX
wait_grep() {
    local i
    for ((i = 0; i < $3 * 20; i++)); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}
# block on|off: r1 drops (or not) every UDP datagram between side A and side B.
block() {
    if [ "$1" = on ]; then
        lab exec r1 -- nft -f - <<'EOF'
table inet turnblock {
    chain between_sides {
        type filter hook forward priority -10; policy accept;
        ip saddr 203.0.113.0/24 ip daddr 192.0.2.0/25 meta l4proto udp counter drop
        ip saddr 192.0.2.0/25 ip daddr 203.0.113.0/24 meta l4proto udp counter drop
    }
}
EOF
    else
        lab exec r1 -- nft delete table inet turnblock
    fi
}
dropped() { lab exec r1 -- nft list table inet turnblock | grep -o 'packets [0-9]*' | awk '{ n += $2 } END { print n + 0 }'; }

# feed SIDE DIR: once SIDE has a path, "SIDE SEQ CHECK" every 50 ms until DIR/stop
feed() {
    local side=$1 dir=$2 seq=0 i
    for ((i = 0; i < 600; i++)); do
        grep -q '"event":"path"' "$dir/$side.ev" 2>/dev/null && break
        [ -e "$dir/stop" ] && return 0
        sleep 0.05
    done
    while [ ! -e "$dir/stop" ]; do
        printf '%s %06d %s\n' "$side" "$seq" "$(printf '%s-%d' "$side" "$seq" | sha256sum | cut -c1-40)" || return 0
        seq=$((seq + 1))
        sleep 0.05
    done
}
# received OUT FROM: how many lines from FROM arrived
received() { grep -c "^$2 " "$1" 2>/dev/null || true; }
# wait_more OUT FROM N SECONDS: true once more than N lines from FROM arrived
wait_more() {
    local i
    for ((i = 0; i < $4 * 20; i++)); do
        [ "$(received "$1" "$2")" -gt "$3" ] && return 0
        sleep 0.05
    done
    return 1
}
# intact OUT FROM: every line is one FROM sent, byte for byte, none twice
intact() {
    local line side seq sum n=0
    while IFS= read -r line; do
        read -r side seq sum <<<"$line"
        [ "$side" = "$2" ] && [ "$line" = "$2 $seq $(printf '%s-%d' "$2" "$((10#$seq))" | sha256sum | cut -c1-40)" ] ||
            fail "$1: a line $2 did not send: $(cat -v <<<"$line")"
        n=$((n + 1))
    done <"$1"
    [ -z "$(cut -d' ' -f2 "$1" | sort | uniq -d | head -1)" ] || fail "$1: a datagram of $2's delivered twice"
    echo "$n"
}
last_path() {
    local last
    last=$(grep '"event":"path"' "$1" | tail -1)
    echo "$(grep -o '"kind":"[^"]*"' <<<"$last" | cut -d'"' -f4)/$(grep -o '"technique":"[^"]*"' <<<"$last" | cut -d'"' -f4)"
}

