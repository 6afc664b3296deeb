#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Every benchmark script in bench/ at its smoke size (issue 14: benchmarks
# that cannot rot): each runs for seconds, its figures are printed and not
# asserted, and one that fails to run (exits non-zero, or prints nothing)
# fails this script. A script in bench/ without a smoke size here fails it
# too, so a new benchmark is run by CI from its first day. scripts/test
# runs this after the tests (needs root, as the lab does; without it only
# the scripts that need no lab run, and the rest are named as skipped).
#
# usage: bench/smoke.sh [BUILD_DIR]      (default: build; builds nothing)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The smoke size of each script: "ENV=VALUE... -- ARGS...", run from the
# repository root with BUILD_DIR where the script takes one. lab: needs
# root and network namespaces; host: runs on this host's loopback.
declare -A smoke=(
    [cluster_bench.sh]="host BENCH_PEERS=3000 BENCH_SECONDS=1 BENCH_WARMUP=0.2 -- $build"
    [failover_bench.sh]="lab PUNCH_BUILD_DIR=$build -- 1"
    [connect_bench.sh]="lab BENCH_RUNS=1 BENCH_SECONDS=1 BENCH_PAIRS=1 -- $build"
    [loss_bench.sh]="lab PUNCH_BUILD_DIR=$build LOSS_LEVELS=10 LOSS_ASSERT=0 -- 2"
    [nat_bench.sh]="lab BENCH_SECONDS=1 -- $build"
    [nat_matrix.sh]="lab -- --runs 1 --sim-runs 2 --only :.full-cone.×.full-cone$ --out $tmp/nat-matrix.md $build"
    [rendezvous_bench.sh]="lab BENCH_PEERS=20000 BENCH_SECONDS=1 BENCH_WARMUP=0.2 -- $build"
    [stream_bench.sh]="lab BENCH_BYTES=4194304 BENCH_RUNS=1 -- $build"
    [stream_loss_bench.sh]="lab BENCH_BYTES=262144 BENCH_LOSS=5 BENCH_TIMEOUT=60 -- $build"
    [stun_bench.sh]="lab BENCH_SECONDS=1 BENCH_WARMUP=0.2 -- $build"
    [transport_compare.sh]="lab BENCH_BYTES=1048576 BENCH_RUNS=1 BENCH_LOSS_BYTES=262144 BENCH_LOSS=5 BENCH_TIMEOUT=60 -- $build"
    [vpn_bench.sh]="lab BENCH_SECONDS=1 -- $build"
)

lab_ok=0
[ "$(id -u)" = 0 ] && ip netns list >/dev/null 2>&1 && lab_ok=1
failed=() missing=() skipped=()
start=$SECONDS
for path in "$root"/bench/*.sh; do
    name=$(basename "$path")
    [ "$name" = smoke.sh ] && continue
    spec=${smoke[$name]:-}
    if [ -z "$spec" ]; then
        missing+=("$name")
        continue
    fi
    read -r needs rest <<<"$spec"
    if [ "$needs" = lab ] && [ "$lab_ok" = 0 ]; then
        skipped+=("$name")
        continue
    fi
    envs=() args=()
    set -f # the specs hold regular expressions, not globs
    seen_dashes=false
    for word in $rest; do
        if [ "$word" = -- ]; then seen_dashes=true
        elif $seen_dashes; then args+=("$word")
        else envs+=("$word")
        fi
    done
    set +f
    echo "== bench: $name ${envs[*]} ${args[*]}"
    t0=$SECONDS
    rc=0
    (cd "$root" && env "${envs[@]}" bash "$path" "${args[@]}") >"$tmp/out" 2>&1 || rc=$?
    cat "$tmp/out"
    if [ "$rc" != 0 ] || [ ! -s "$tmp/out" ]; then
        echo "== bench: $name FAILED (exit $rc) after $((SECONDS - t0)) s"
        failed+=("$name")
    else
        echo "== bench: $name ran in $((SECONDS - t0)) s"
    fi
done
echo "== bench smoke: $((SECONDS - start)) s in all"
[ ${#skipped[@]} = 0 ] || echo "bench smoke: not root or no network namespaces, skipped: ${skipped[*]}"
[ ${#missing[@]} = 0 ] || echo "bench smoke: no smoke size in bench/smoke.sh for: ${missing[*]}" >&2
[ ${#failed[@]} = 0 ] || echo "bench smoke: failed to run: ${failed[*]}" >&2
[ ${#missing[@]} = 0 ] && [ ${#failed[@]} = 0 ]
