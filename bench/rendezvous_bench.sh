#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# punchd's rendezvous service under load, against the floor of this machine,
# in one run:
#   (a) register BENCH_PEERS (1,000,000) simulated peers into one punchd
#       (--max-peers to match) and read its VmRSS afterwards (target < 512 MiB);
#   (b) keepalive REGISTERs per second on one core (target >= 100,000), and
#       the same datagrams answered by bench/rendezvous_floor (echo of a
#       REGISTERED-sized answer, no work) as the floor. Registering a
#       million takes longer than a cookie lives (60 to 120 s: one X25519
#       at the server per peer), so one untimed keepalive per peer goes
#       first (rendezvous_load --fresh) and every peer holds a fresh cookie
#       when the timing starts: the timed phase refreshes none (printed).
# Servers run on CPU 1, the generator (bench/rendezvous_load.c) on CPU 0;
# everything on 127.0.0.1.
#
# usage: bench/rendezvous_bench.sh [BUILD_DIR]     (default: build; builds nothing)
# environment: BENCH_PEERS (1000000), BENCH_SECONDS (5), BENCH_WARMUP (1),
#              BENCH_WINDOW (256), BENCH_SOCKETS (8), BENCH_PORT (34790: punchd,
#              +2 floor), BENCH_EVENTS (0: punchd writes no event stream; 1:
#              to a file, one "registered" line per peer)
set -euo pipefail

build=${1:-build}
peers=${BENCH_PEERS:-1000000}
secs=${BENCH_SECONDS:-5}
warmup=${BENCH_WARMUP:-1}
window=${BENCH_WINDOW:-256}
sockets=${BENCH_SOCKETS:-8}
base_port=${BENCH_PORT:-34790}
with_events=${BENCH_EVENTS:-0}
readonly host=127.0.0.1 server_cpu=1 gen_cpu=0

load=$build/bench/rendezvous_load
floor=$build/bench/rendezvous_floor
punchd=$build/apps/punchd
for f in "$load" "$floor" "$punchd"; do
    if [[ ! -x $f ]]; then
        echo "rendezvous_bench: $f not found; build first: cmake --build $build -j2" >&2
        exit 2
    fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rendezvous_bench.XXXXXX")
server_pid=
stop_server() {
    local pid=$server_pid
    [[ -n $pid ]] || return 0
    server_pid=
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    stop_server
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_busy() { [[ -n $(ss -Hlun "sport = :$1") ]]; }

# Jiffies CPU $1 spent on anything but idle, softirq included.
cpu_busy() { awk -v a="cpu$1" '$1 == a { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
now_ns() { date +%s%N; }
percent() { awk -v c="$1" -v hz="$(getconf CLK_TCK)" -v ns="$2" 'BEGIN { printf "%.0f", 100 * c / hz / (ns / 1e9) }'; }

pport=$base_port fport=$((base_port + 2))
for p in "$pport" "$fport"; do
    if port_busy "$p"; then
        echo "rendezvous_bench: port $p already in use (set BENCH_PORT)" >&2
        exit 1
    fi
done

# --- punchd: registration, RSS, keepalives -------------------------------
events=()
((with_events)) && events=(--events "$tmp/punchd.events")
taskset -c "$server_cpu" "$punchd" --listen "$host:$pport" --rate-limit 0 \
    --max-peers "$peers" --names-per-source "$peers" --log-level warn "${events[@]}" >"$tmp/punchd.log" 2>&1 &
server_pid=$!
rss0=$(awk '/^VmRSS/ { print $2 }' "/proc/$server_pid/status" 2>/dev/null || echo 0)
b0=$(cpu_busy "$server_cpu") t0=$(now_ns)
out=$(taskset -c "$gen_cpu" "$load" "$host:$pport" --peers "$peers" --pid "$server_pid" \
    --window "$window" --sockets "$sockets" --seconds "$secs" --warmup "$warmup" --fresh \
    2>"$tmp/load.err") || { cat "$tmp/load.err" "$tmp/punchd.log" >&2; exit 1; }
b1=$(cpu_busy "$server_cpu") t1=$(now_ns)
rss_end=$(awk '/^VmRSS/ { print $2 }' "/proc/$server_pid/status")
stop_server
read -ra reg <<<"$(grep '^registered' <<<"$out")"
read -ra ka <<<"$(grep '^keepalive' <<<"$out")"
read -ra fresh <<<"$(grep '^fresh' <<<"$out")"
[[ ${reg[0]:-} == registered && ${ka[0]:-} == keepalive ]] || { echo "generator: $out" >&2; exit 1; }

# --- the floor: the same datagrams, echoed ---------------------------------
taskset -c "$server_cpu" "$floor" "$host:$fport" &
server_pid=$!
fout=$(taskset -c "$gen_cpu" "$load" "$host:$fport" --floor --peers "$peers" --window "$window" \
    --sockets "$sockets" --seconds "$secs" --warmup "$warmup" 2>/dev/null) || { echo "floor: $fout" >&2; exit 1; }
stop_server
read -ra fl <<<"$(grep '^keepalive' <<<"$fout")"

rss_kib=${reg[7]}
printf 'rendezvous on %s: punchd and the floor on CPU %s, generator on CPU %s; %s sockets, window %s;\n' \
    "$host" "$server_cpu" "$gen_cpu" "$sockets" "$window"
printf 'load average %s.\n\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '(a) registered %s peers (HELLO, COOKIE, REGISTER, REGISTERED each; one X25519 at\n' "${reg[1]}"
printf '    the server per peer) in %s s: %s peers/s\n' "${reg[3]}" "${reg[5]}"
awk -v r="$rss_kib" -v r0="$rss0" -v n="${reg[1]}" 'BEGIN {
    printf "    punchd VmRSS after: %.1f MiB (%.0f bytes per peer; at start %.1f MiB)   (target < 512 MiB)\n",
        r / 1024, (r - r0) * 1024 / n, r0 / 1024 }'
printf '    punchd VmRSS after the keepalive run: %.1f MiB\n' "$(awk -v r="$rss_end" 'BEGIN { printf "%.1f", r / 1024 }')"
echo
printf '(b) keepalives (REGISTER %s B -> REGISTERED %s B, cookie + MAC checked, MAC made),\n' "${ka[12]}" "${ka[13]}"
printf '    over all %s peers in turn, %s s after %s s warm-up:\n' "${reg[1]}" "$secs" "$warmup"
printf '    %-7s %10s %10s %10s %8s %8s\n' server per_s sent valid invalid timeouts
printf '    %-7s %10s %10s %10s %8s %8s\n' punchd "${ka[2]}" "${ka[4]}" "${ka[6]}" "${ka[8]}" "${ka[10]}"
printf '    %-7s %10s %10s %10s %8s %8s\n' floor "${fl[2]}" "${fl[4]}" "${fl[6]}" "${fl[8]}" "${fl[10]}"
awk -v p="${ka[2]}" -v f="${fl[2]}" 'BEGIN {
    printf "    punchd/floor %.2f; punchd %s the 100,000/s target\n", p / f, (p >= 100000) ? "meets" : "MISSES" }'
printf '    before the timing, one keepalive per peer in %s s (%s of them refused for a cookie\n' "${fresh[2]:-?}" "${fresh[4]:-?}"
printf '    older than it lives, after registering took %s s, and refreshed)\n' "${reg[3]}"
printf '    keepalives refused for an expired cookie in the timed phase: %s\n' "${ka[15]:-0}"
# A cookie lives 60 to 120 s (PUNCH_RV_COOKIE_PERIOD_MS: this period or the
# one before): refreshes in the timed phase mean the pass before it took
# longer than that, and the rate is partly that of cookie refreshes.
awk -v r="${ka[15]:-0}" -v v="${ka[6]}" 'BEGIN { if (r > v / 100)
    printf "    NOTE: %d keepalives above were refused for a dead cookie and refreshed (HELLO, COOKIE,\n    REGISTER): the rate is not the keepalive rate alone\n", r }'
printf '    CPU %s was %s%% busy over the whole punchd run (registration included)\n' "$server_cpu" \
    "$(percent $((b1 - b0)) $((t1 - t0)))"
