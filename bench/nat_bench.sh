#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# punch-nat against the kernel's own NAT on the same lab link (issue 3):
# Binding requests from alice through nat-a (port-restricted cone) to punchd
# on the server, a window of them in flight, answers counted per second —
# every answer is two packets translated by the NAT. One run, both backends
# in turn, the ratio printed. Not a test; needs root (namespaces).
#
# usage: bench/nat_bench.sh [BUILD_DIR]     environment: BENCH_SECONDS (3)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
secs=${BENCH_SECONDS:-3}
export PUNCH_BUILD_DIR=$build
prefix=nb$$
lab() { "$root/lab/punch-lab" --prefix "$prefix" "$@"; }
trap 'lab down >/dev/null 2>&1 || true' EXIT

declare -A rate
for backend in kernel punch-nat; do
    lab up different-nats --backend "$backend" --nat-a port-restricted-cone >/dev/null
    ev=$(mktemp)
    lab exec server -- "$build/apps/punchd" --listen 198.51.100.1:3478 --rate-limit 0 \
        --events "$ev" 2>/dev/null </dev/null &
    for _ in $(seq 500); do [ -s "$ev" ] && break; sleep 0.01; done
    lab exec alice -- "$build/bench/stun_load" 198.51.100.1:3478 --behind-nat --probe 5 >/dev/null
    out=$(lab exec alice -- "$build/bench/stun_load" 198.51.100.1:3478 --seconds "$secs" \
        --window 256 --sockets 4 --behind-nat)
    rate[$backend]=$(awk '{print $2}' <<<"$out")
    echo "$backend: $out"
    lab down >/dev/null
    rm -f "$ev"
done
awk -v k="${rate[kernel]}" -v p="${rate[punch-nat]}" 'BEGIN {
    printf "kernel NAT   %10.0f answers/s (%.0f packets/s through the NAT)\n", k, 2 * k
    printf "punch-nat    %10.0f answers/s (%.0f packets/s through the NAT)\n", p, 2 * p
    printf "punch-nat / kernel = %.2f (target >= 0.50)\n", p / k }'
