#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Introductions per second with punchd --cluster (issue 15), in one run:
#   (a) one punchd without --cluster: both sides registered at it;
#   (b) a cluster member, both sides registered at it (a CONNECT is answered
#       at once; the registrations still go to Redis);
#   (c) across members: askers at member 1, their peers at member 2 (each
#       CONNECT costs a Lua lookup in Redis and a PUBLISH of the INTRO).
# bench/rendezvous_load registers BENCH_PEERS peers named q... (kept alive)
# and BENCH_PEERS askers named p..., then the askers send CONNECTs for
# BENCH_SECONDS, BENCH_WINDOW outstanding; the rate counted is of valid
# INTRODUCEs at the askers. A real redis-server on 127.0.0.1; punchd runs
# with --rate-limit 0. All askers share one source IP, so punchd's limit
# per source and target (burst 10, then 1 CONNECT a second) caps the run
# at 10 x BENCH_PEERS introductions plus BENCH_PEERS a second: keep
# BENCH_PEERS at a tenth of (rate x seconds) or more, or the figure is the
# limiter's (the timeouts column shows it).
#
# usage: bench/cluster_bench.sh [BUILD_DIR]     (default: build; builds nothing)
# environment: BENCH_PEERS (10000), BENCH_SECONDS (2), BENCH_WARMUP (0.5),
#              BENCH_WINDOW (64), BENCH_PORT (34820: member 1, +10 member 2,
#              +20 Redis, +30 the punchd without --cluster)
set -euo pipefail

build=${1:-build}
peers=${BENCH_PEERS:-10000}
secs=${BENCH_SECONDS:-2}
warmup=${BENCH_WARMUP:-0.5}
window=${BENCH_WINDOW:-64}
base_port=${BENCH_PORT:-34820}
readonly host=127.0.0.1
load=$build/bench/rendezvous_load
punchd=$build/apps/punchd
for f in "$load" "$punchd"; do
    [[ -x $f ]] || { echo "cluster_bench: $f not found; build first: cmake --build $build -j2" >&2; exit 2; }
done
command -v redis-server >/dev/null || { echo "cluster_bench: redis-server not installed (scripts/setup)" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cluster_bench.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
p1=$base_port p2=$((base_port + 10)) rport=$((base_port + 20)) p0=$((base_port + 30))
head -c 32 /dev/urandom >"$tmp/secret"

redis-server --bind "$host" --port "$rport" --save '' --appendonly no >"$tmp/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 400); do redis-cli -p "$rport" ping 2>/dev/null | grep -q PONG && break; sleep 0.025; done

# punchd PORT [--cluster ...]: a server; its pid in $last.
punchd() {
    "$build/apps/punchd" --listen "$host:$1" --no-tcp --rate-limit 0 --names-per-source 1000000 \
        --log-level warn --events "$tmp/$1.ev" "${@:2}" 2>"$tmp/$1.err" &
    last=$!; pids+=("$last")
    for _ in $(seq 400); do grep -q '"event":"started"' "$tmp/$1.ev" 2>/dev/null && break; sleep 0.025; done
    if [[ $# -gt 1 ]]; then
        for _ in $(seq 400); do grep -q '"state":"up"' "$tmp/$1.ev" 2>/dev/null && break; sleep 0.025; done
        grep -q '"state":"up"' "$tmp/$1.ev" || { cat "$tmp/$1.err" >&2; exit 1; }
    fi
}

# run LABEL TARGET_PORT ASKER_PORT TARGET_PREFIX ASKER_PREFIX: introductions
# per second. Each run has prefixes of its own: a server (or the cluster)
# holds a name for the key that claimed it until that registration expires,
# so peers with a past run's names (and other keys) would wait that long
# (85-89 s) to register.
run() {
    local seed=$((RANDOM + 10))
    "$load" "$host:$2" --peers "$peers" --prefix "$4" --seed "$seed" --window "$window" \
        --seconds 3600 >"$tmp/targets.out" 2>/dev/null &
    local targets=$!
    for _ in $(seq 2400); do grep -q '^registered' "$tmp/targets.out" && break; sleep 0.025; done
    grep -q '^registered' "$tmp/targets.out" || { echo "cluster_bench: targets did not register" >&2; exit 1; }
    local out
    out=$("$load" "$host:$3" --peers "$peers" --prefix "$5" --seed $((seed + 1)) --connect "$4" \
        --window "$window" --seconds "$secs" --warmup "$warmup" 2>/dev/null) || true
    kill "$targets"; wait "$targets" 2>/dev/null || true
    read -ra c <<<"$(grep '^connect' <<<"$out")"
    [[ ${c[0]:-} == connect ]] || { echo "cluster_bench: $1: $out" >&2; exit 1; }
    printf '    %-26s %10s %10s %10s %8s %8s\n' "$1" "${c[2]}" "${c[4]}" "${c[6]}" "${c[8]}" "${c[10]}"
    rates+=("${c[2]}")
}

cluster=(--cluster "redis://$host:$rport/5" --cluster-secret-file "$tmp/secret")
rates=()
printf 'introductions per second: %s askers and %s peers, window %s, %s s after %s s warm-up;\n' \
    "$peers" "$peers" "$window" "$secs" "$warmup"
printf 'load average %s.\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '    %-26s %10s %10s %10s %8s %8s\n' "" per_s sent valid invalid timeouts
punchd "$p0"
punchd "$p1" "${cluster[@]}"
punchd "$p2" "${cluster[@]}"
# (a) before and after the others: the machine's drift shows.
run "(a) one punchd" "$p0" "$p0" q p
run "(b) within one member" "$p1" "$p1" r s
run "(c) across two members" "$p2" "$p1" t u
run "(a) one punchd, again" "$p0" "$p0" v w
awk -v a="${rates[0]}" -v b="${rates[1]}" -v c="${rates[2]}" -v a2="${rates[3]}" 'BEGIN {
    one = (a + a2) / 2
    printf "    against one punchd (mean of both runs): within a member %.2f, across members %.2f\n", b / one, c / one }'
