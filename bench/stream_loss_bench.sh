#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Stream goodput under loss and delay (issue 14): BENCH_BYTES through
# `punch connect` -> `punch listen` across two kernel NATs (the lab's
# different-nats topology, port-restricted cones, the path hole-punched),
# against Linux TCP with BBR and with CUBIC across the same two NATs (a port
# forward on nat-b), in one run, at each loss level of BENCH_LOSS (percent,
# on every access link, each direction: between the peers a packet crosses
# two lossy links, so 5 % is about 10 % each way) with BENCH_DELAY on every
# access link (10ms: RTT 40 ms between the peers). Every transfer is timed
# by the same receiver (bench/stream_tools.py count), from its first byte to
# the end of the stream. Prints MB/s and the ratios punch/BBR (target >= 0.5)
# and punch/CUBIC (target >= 1 with loss, >= 0.5 at 0 %), how long punch's
# receiver ran and waited for a CPU (stream_tools.py cpu), and the load
# average. With BENCH_BASELINE (another build directory) each run also moves
# the bytes with that build's punch, in turns with this one's (the order
# alternates), and prints the two side by side: on a shared machine only
# such paired rounds compare two versions. Printed, not a test. Needs root.
#
# usage: bench/stream_loss_bench.sh [BUILD_DIR]
# environment: BENCH_BYTES (4194304), BENCH_LOSS ("0 1 5"), BENCH_DELAY (10ms),
#              BENCH_RUNS (1), BENCH_TIMEOUT (300 s per transfer),
#              BENCH_BASELINE (none: a build directory to compare with)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
bytes=${BENCH_BYTES:-4194304}
losses=${BENCH_LOSS:-0 1 5}
delay=${BENCH_DELAY:-10ms}
runs=${BENCH_RUNS:-1}
limit=${BENCH_TIMEOUT:-300}
tools=$root/bench/stream_tools.py
baseline=${BENCH_BASELINE:+$(cd "$BENCH_BASELINE" && pwd)}
for f in "$build/apps/punch" "$build/apps/punchd" ${baseline:+"$baseline/apps/punch"}; do
    [[ -x $f ]] || { echo "stream_loss_bench: $f not found; build first" >&2; exit 2; }
done
export PUNCH_BUILD_DIR=$build
prefix=slb$$
lab() { "$root/lab/punch-lab" --prefix "$prefix" "$@"; }
tmp=$(mktemp -d)
trap 'lab down >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
wait_for() { for _ in $(seq 1000); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.01; done; return 1; }

# tcp_run CC OUT: BENCH_BYTES alice -> bob over TCP with congestion control CC
tcp_run() {
    rm -f "$tmp/ready"
    lab exec bob -- timeout "$limit" python3 "$tools" count 5001 "$tmp/ready" >"$2" &
    for _ in $(seq 500); do [ -e "$tmp/ready" ] && break; sleep 0.01; done
    lab exec alice -- timeout "$limit" python3 "$tools" send 192.0.2.1 5001 "$bytes" "$1" ||
        { echo "stream_loss_bench: TCP $1 failed" >&2; exit 1; }
    wait $!
}

# punch_run N OUT [BUILD]: BENCH_BYTES through a punch stream of BUILD's punch
# (default the build measured; fresh names, fresh keys)
punch_run() {
    local n=$1 d=$tmp/p$1 punch=${3:-$build}/apps/punch
    mkdir -p "$d"
    lab exec bob -- env XDG_CONFIG_HOME="$d/bob" timeout "$limit" \
        python3 "$tools" cpu "$d/bobcpu" "$punch" --server 198.51.100.1 --name "bob$n" --events "$d/bob.ev" listen </dev/null 2>"$d/bob.err" |
        python3 "$tools" count >"$2" &
    wait_for "$d/bob.ev" registered || { echo "stream_loss_bench: bob did not register" >&2; exit 1; }
    head -c "$bytes" /dev/zero | lab exec alice -- env XDG_CONFIG_HOME="$d/alice" timeout "$limit" \
        "$punch" --server 198.51.100.1 --name "alice$n" --events "$d/alice.ev" \
        connect "bob$n" >/dev/null 2>"$d/alice.err" ||
        { echo "stream_loss_bench: punch failed: $(tail -1 "$d/alice.err")" >&2; exit 1; }
    wait $!
    local got
    got=$(cut -d' ' -f1 "$2")
    [[ $got == "$bytes" ]] || { echo "stream_loss_bench: punch delivered $got of $bytes bytes" >&2; exit 1; }
    grep -q '"kind":"direct"' "$d/alice.ev" || echo "stream_loss_bench: note: run $n never went direct" >&2
    grep '"event":"counters"' "$d/alice.ev" | tail -1 >"$d/counters"
}

med() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
rate() { cut -d' ' -f2 "$1"; }
printf 'stream goodput under loss, %s KiB alice -> bob across two kernel NATs, %s per access link, median of %d run(s)\n' \
    "$((bytes / 1024))" "$delay" "$runs"
printf '   %-6s %12s %12s %12s %10s %10s\n' loss "punch MB/s" "BBR MB/s" "CUBIC MB/s" punch/BBR punch/CUBIC
n=0
for loss in $losses; do
    lab up different-nats --delay "$delay" --loss "$loss%" --seed $((loss + 7)) >/dev/null
    # A port forward on nat-b for the TCP runs: 192.0.2.1:5001 -> bob.
    lab exec nat-b -- nft add rule ip punchlab nat_pre iifname wan tcp dport 5001 dnat to 10.0.2.10:5001
    lab exec nat-b -- nft insert rule ip punchlab filter_fwd ct status dnat accept
    lab exec server -- "$build/apps/punchd" --listen 198.51.100.1:3478 --events "$tmp/pd.ev" \
        2>/dev/null </dev/null &
    wait_for "$tmp/pd.ev" started || { echo "stream_loss_bench: punchd did not start" >&2; exit 1; }
    bbr=() cubic=() punch=() base=() rxcpu=() rxwait=() load=()
    for _ in $(seq "$runs"); do
        n=$((n + 1))
        load+=("$(cut -d' ' -f1 /proc/loadavg)")
        tcp_run bbr "$tmp/bbr$n" && bbr+=("$(rate "$tmp/bbr$n")")
        tcp_run cubic "$tmp/cubic$n" && cubic+=("$(rate "$tmp/cubic$n")")
        if [[ -n $baseline && $((n % 2)) == 1 ]]; then
            punch_run "b$n" "$tmp/base$n" "$baseline" && base+=("$(rate "$tmp/base$n")")
        fi
        punch_run "$n" "$tmp/punch$n" && punch+=("$(rate "$tmp/punch$n")")
        if [[ -n $baseline && $((n % 2)) == 0 ]]; then
            punch_run "b$n" "$tmp/base$n" "$baseline" && base+=("$(rate "$tmp/base$n")")
        fi
        rxcpu+=("$(awk '{print ($1 + $2) * 1000}' "$tmp/p$n/bobcpu")")
        rxwait+=("$(awk '{print $3 * 1000}' "$tmp/p$n/bobcpu")")
    done
    lab down >/dev/null
    rm -f "$tmp/pd.ev"
    awk -v l="$loss" -v p="$(med "${punch[@]}")" -v b="$(med "${bbr[@]}")" -v c="$(med "${cubic[@]}")" 'BEGIN {
        printf "   %-6s %12.2f %12.2f %12.2f %10.2f %10.2f\n", l "%", p / 1e6, b / 1e6, c / 1e6,
            (b > 0 ? p / b : 0), (c > 0 ? p / c : 0) }'
    # A user-space receiver acknowledges only when it runs (the kernel's TCP
    # does so in softirq): on a loaded machine its waits for a CPU are
    # stalls of the sender (docs/streams.md "0 % loss").
    printf '   %-6s punch receiver: CPU %.0f ms, waited %.0f ms for a CPU (median run); load average %s\n' "" \
        "$(med "${rxcpu[@]}")" "$(med "${rxwait[@]}")" "${load[*]}"
    if [[ -n $baseline ]]; then
        printf '   %-6s each run, punch / baseline MB/s:' ""
        for i in "${!punch[@]}"; do
            awk -v p="${punch[$i]}" -v b="${base[$i]}" 'BEGIN { printf " %.2f/%.2f", p / 1e6, b / 1e6 }'
        done
        awk -v p="$(med "${punch[@]}")" -v b="$(med "${base[@]}")" 'BEGIN {
            printf "; medians %.2f/%.2f = %.2f\n", p / 1e6, b / 1e6, (b > 0 ? p / b : 0) }'
    fi
done
echo "   targets (issue 14): punch/BBR >= 0.5 at every loss level; punch/CUBIC >= 1 at every level with loss, >= 0.5 at 0 % (proposed: docs/streams.md)"
