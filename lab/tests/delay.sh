#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# linkem's accuracy, measured with ping: each host's access link gets its own
# one-way delay; a ping to the router at the far end of that one link must
# show RTT = 2·delay within ±0.5 ms (median of 20, after ARP warm-up); loss
# 20% per direction must show 1-(0.8)^2 = 36% ping loss within ±6 points
# over 1000 pings; jitter must spread RTTs, none below 2d-2j and 95% of
# them at most 2d+2j.
. "$(dirname "$0")/lib.sh"

TOL=0.5
# rtt_median NODE TARGET COUNT → median RTT in ms. One ping per run, read
# from the summary line (3 decimals; the per-reply line rounds to 1 ms
# above 100 ms). A warm-up ping first resolves ARP.
rtt_median() {
    lab exec "$1" -- ping -c 2 -i 0.01 -W 1 -q "$2" >/dev/null
    local i
    for ((i = 0; i < $3; i++)); do
        lab exec "$1" -- ping -c 1 -W 1 -q "$2" | sed -n 's|^rtt [^=]*= \([0-9.]*\)/.*|\1|p'
    done | sort -n |
        awk '{ v[NR] = $1 } END { if (NR == 0) exit 1; print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
check() {   # check NAME MEASURED EXPECTED
    awk -v m="$2" -v e="$3" -v t="$TOL" 'BEGIN { d = m - e; exit !(d <= t && d >= -t) }' ||
        fail "$1: median RTT $2 ms, expected $3 ± $TOL ms"
    ok "$1: median RTT $2 ms (expected $3, error $(awk -v m="$2" -v e="$3" 'BEGIN { printf "%+.3f", m - e }') ms)"
}

lab up public --delay-a 1ms --delay-b 10ms --delay-s 50ms
base=$(rtt_median r1 192.0.2.130 20)      # router to router: no emulated link
echo "baseline RTT without linkem: $base ms"
check "1 ms link (alice-r1)" "$(rtt_median alice 203.0.113.62 20)" 2
check "10 ms link (bob-r2)" "$(rtt_median bob 192.0.2.62 20)" 20
check "50 ms link (server-r3)" "$(rtt_median server 198.51.100.254 20)" 100
check "1 ms + 50 ms path (alice-server)" "$(rtt_median alice 198.51.100.1 20)" 102
lab down

lab up public --loss-a 20% --jitter-b 2ms --delay-b 5ms
lab exec alice -- ping -c 2 -i 0.01 -W 1 -q 203.0.113.62 >/dev/null || true
out=$(lab exec alice -- ping -c 1000 -i 0.002 -W 0.2 -q 203.0.113.62 || true)
loss=$(sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p' <<<"$out")
awk -v l="$loss" 'BEGIN { exit !(l >= 30 && l <= 42) }' || fail "loss 20%/direction: ping lost $loss%, expected 36 ± 6"
ok "loss 20% per direction: ping lost $loss% of 1000 (expected 36%)"
lab exec bob -- ping -c 2 -i 0.01 -W 1 -q 192.0.2.62 >/dev/null || true
rtts=$(lab exec bob -- ping -c 50 -i 0.01 -W 1 192.0.2.62 | sed -n 's/.*time=\([0-9.]*\) ms/\1/p' | sort -n)
# A packet can never come early, so the floor is strict. It can come late
# for reasons no link emulator controls (a busy CI machine's scheduler), so
# the ceiling holds for the 95th percentile, not for every one of 50.
min=$(head -1 <<<"$rtts") p95=$(awk '{ v[NR] = $1 } END { print v[int(NR * 0.95)] }' <<<"$rtts")
awk -v a="$min" -v b="$p95" 'BEGIN { exit !(a >= 6 - 0.2 && b <= 14 + 0.5 && b - a >= 1) }' ||
    fail "jitter 2ms on 5ms: RTTs from $min ms, 95th percentile $p95 ms, expected spread inside 6..14"
ok "jitter ±2 ms on 5 ms: RTTs from $min ms, 95th percentile $p95 ms (allowed 6..14)"
