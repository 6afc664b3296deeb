#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Which technique gets two peers through which pair of NATs, how often and
# how fast (issue 5): writes docs/nat-matrix.md, two tables.
#  1. The simulator (bench/nat_matrix): every pair of SPEC.md §5's presets,
#     SIM_RUNS seeded runs each (default 100), 10 ms per NAT uplink.
#  2. The lab, real packets (needs root; skipped without): every pair on the
#     punch-nat backend, punchd --alt on the server, `punch listen` on bob,
#     `punch connect` on alice; LAB_RUNS runs per pair (default 3), and
#     LAB_RUNS_RANDOM (default 10) for the pairs with symmetric-random,
#     where many-port probing decides. No delay on the links: the time is
#     the protocol's, from alice's start to her first direct path event.
# Not a test: nothing is asserted.
#
# usage: bench/nat_matrix.sh [BUILD_DIR]        (default: build; builds nothing)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
sim_runs=${SIM_RUNS:-100}
lab_runs=${LAB_RUNS:-3}
lab_runs_random=${LAB_RUNS_RANDOM:-10}
out=$root/docs/nat-matrix.md
matrix=$build/bench/nat_matrix
punch=$build/apps/punch punchd=$build/apps/punchd
for f in "$matrix" "$punch" "$punchd"; do
    [[ -x $f ]] || { echo "nat_matrix: $f not found; build first" >&2; exit 2; }
done
presets=(full-cone restricted-cone port-restricted-cone p2p cgnat symmetric-sequential symmetric-random)

tmp=$(mktemp -d)
prefix=nm$$
lab() { "$root/lab/punch-lab" --prefix "$prefix" "$@"; }
trap 'lab down >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
export PUNCH_BUILD_DIR=$build

{
    echo "# NAT pairs: technique, success, time to a direct path"
    echo
    echo "Written by \`bench/nat_matrix.sh\` on $(date -u +%Y-%m-%d); rerun it to check."
    echo "\"technique\" is the one alice's path ended on in most runs; \"direct\" the share"
    echo "of runs in which both sides ended on a direct path (the rest ended on the relay:"
    echo "every run connected)."
    echo
    echo "## Simulator"
    echo
    "$matrix" "$sim_runs"
} >"$tmp/doc.md"
echo "nat_matrix: simulator done" >&2

# One lab run: prints "KIND TECHNIQUE FIRST_DIRECT_MS" for alice.
lab_run() {
    local a=$1 b=$2 d=$tmp/r
    rm -rf "$d" && mkdir -p "$d"
    lab up different-nats --backend punch-nat --nat-a "$a" --nat-b "$b" >/dev/null
    lab exec server -- "$punchd" --listen 198.51.100.1:3478 --alt 198.51.100.2 \
        --events "$d/punchd.ev" 2>/dev/null </dev/null &
    for _ in $(seq 500); do [[ -s $d/punchd.ev ]] && break; sleep 0.01; done
    (while [[ ! -e $d/stop ]]; do sleep 0.1; done) | lab exec bob -- env XDG_CONFIG_HOME="$d/bob" \
        "$punch" --server 198.51.100.1 --name bob --events "$d/bob.ev" listen --datagram \
        >/dev/null 2>&1 &
    local bob=$!
    for _ in $(seq 500); do grep -q registered "$d/bob.ev" 2>/dev/null && break; sleep 0.01; done
    (sleep 3) | lab exec alice -- env XDG_CONFIG_HOME="$d/alice" timeout 10 "$punch" \
        --server 198.51.100.1 --name alice --events "$d/alice.ev" connect bob --datagram \
        >/dev/null 2>&1 || true
    touch "$d/stop"
    wait "$bob" 2>/dev/null || true
    lab down >/dev/null
    local last kind tech t
    last=$(grep '"event":"path"' "$d/alice.ev" | tail -1) || true
    kind=$(grep -o '"kind":"[a-z]*"' <<<"$last" | cut -d'"' -f4) || true
    tech=$(grep -o '"technique":"[a-z-]*"' <<<"$last" | cut -d'"' -f4) || true
    t=$(grep '"event":"path".*"kind":"direct"' "$d/alice.ev" | head -1 | grep -o '"t_ms":[0-9]*' | cut -d: -f2) || true
    echo "${kind:-none} ${tech:-none} ${t:--}"
}

if [[ $(id -u) == 0 ]] && ip netns list >/dev/null 2>&1; then
    {
        echo
        echo "## Lab (punch-nat backend, real packets)"
        echo
        echo "$lab_runs runs per pair ($lab_runs_random with symmetric-random), no delay on the links."
        echo
        echo "| NAT A (alice, connects) | NAT B (bob, listens) | technique (alice, most runs) | direct | median to direct |"
        echo "|---|---|---|---|---|"
    } >>"$tmp/doc.md"
    for ((i = 0; i < ${#presets[@]}; i++)); do
        for ((j = i; j < ${#presets[@]}; j++)); do
            a=${presets[i]} b=${presets[j]} n=$lab_runs
            [[ $a == symmetric-random || $b == symmetric-random ]] && n=$lab_runs_random
            : >"$tmp/runs"
            for ((r = 0; r < n; r++)); do lab_run "$a" "$b" >>"$tmp/runs"; done
            awk -v a="$a" -v b="$b" -v n="$n" '
                { tech[$2]++; if ($1 == "direct") { d++; t[d] = $3 } }
                END {
                    best = "none"; for (k in tech) if (tech[k] > tech[best]) best = k
                    # median of the direct times (insertion sort, n is small)
                    for (i = 2; i <= d; i++) { v = t[i]; for (j = i - 1; j >= 1 && t[j] > v; j--) t[j + 1] = t[j]; t[j + 1] = v }
                    printf "| %s | %s | %s | %d/%d | %s |\n", a, b, best, d, n, d ? t[int((d + 1) / 2)] " ms" : "-"
                }' "$tmp/runs" | tee -a "$tmp/doc.md" >&2
        done
    done
else
    echo "nat_matrix: not root or no network namespaces: the lab table is left out" >&2
fi
mv "$tmp/doc.md" "$out"
echo "nat_matrix: wrote $out" >&2
