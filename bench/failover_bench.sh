#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Failover time of peers with two servers (issue 15), in the lab
# (lab/tests/failover.sh, RUNS times): from punchd A's SIGKILL to the last
# of alice, bob and dave registered at punchd B, each run also checking
# that the direct session lost nothing. Prints every run and the median,
# best and worst. (The simulator's figure over 30 seeds is printed by
# unit.test_servers.) Needs root.
# usage: bench/failover_bench.sh [RUNS, default 10]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export PUNCH_BUILD_DIR=${PUNCH_BUILD_DIR:-$root/build}
export PUNCH_LAB=$root/lab/punch-lab
runs=${1:-10}
times=()
for ((r = 1; r <= runs; r++)); do
    out=$(bash "$root/lab/tests/failover.sh" 2>&1) || { echo "$out"; echo "run $r failed" >&2; exit 1; }
    ms=$(grep -o 'registered at B within [0-9]*' <<<"$out" | grep -o '[0-9]*$')
    echo "run $r: $ms ms"
    times+=("$ms")
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
echo "failover over $runs lab runs: median ${sorted[$((runs / 2))]} ms, best ${sorted[0]} ms, worst ${sorted[$((runs - 1))]} ms"
