#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# STUN Binding throughput of punchd against coturn and against the floor of
# this machine (bench/stun_floor.c: a responder that only rewrites the header
# and adds XOR-MAPPED-ADDRESS), measured in one run, one server after the
# other, each pinned to CPU 1 with the generator (bench/stun_load.c) on CPU 0.
#
# usage: bench/stun_bench.sh [BUILD_DIR]     (default: build; builds nothing)
# environment: BENCH_SECONDS (3), BENCH_WARMUP (0.5), BENCH_WINDOW (256),
#              BENCH_SOCKETS (4), BENCH_ROUNDS (1: more runs all three servers
#              again, in turn, and reports the median), BENCH_PORT (34780: floor,
#              +2 punchd, +4 coturn)
#
# Everything runs on 127.0.0.1; nothing is sent anywhere else.
set -euo pipefail

build=${1:-build}
secs=${BENCH_SECONDS:-3}
warmup=${BENCH_WARMUP:-0.5}
window=${BENCH_WINDOW:-256}
sockets=${BENCH_SOCKETS:-4}
rounds=${BENCH_ROUNDS:-1}
base_port=${BENCH_PORT:-34780}
readonly host=127.0.0.1 server_cpu=1 gen_cpu=0
readonly ready_s=10 # longest wait for a server to answer its first request

load=$build/bench/stun_load
floor=$build/bench/stun_floor
punchd=$build/apps/punchd
turnserver=$(command -v turnserver || true)

for f in "$load" "$floor"; do
    if [[ ! -x $f ]]; then
        echo "stun_bench: $f not found; build first: cmake --build $build -j2" >&2
        exit 2
    fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/stun_bench.XXXXXX")
server_pid=

stop_server() {
    local pid=$server_pid
    [[ -n $pid ]] || return 0
    server_pid=
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 30); do
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

port_busy() {
    [[ -n $(ss -Hlun "sport = :$1") ]]
}

# Jiffies CPUs $1 and $2 spent on anything but idle, softirq included: a
# process's own utime/stime misses the loopback delivery done in softirq.
cpu_busy() {
    awk -v a="cpu$1" -v b="cpu$2" '$1 == a { x = $2 + $3 + $4 + $7 + $8 + $9 }
        $1 == b { y = $2 + $3 + $4 + $7 + $8 + $9 } END { print x, y }' /proc/stat
}

# percent JIFFIES NS: JIFFIES of one CPU as a share of NS nanoseconds.
percent() {
    awk -v c="$1" -v hz="$(getconf CLK_TCK)" -v ns="$2" 'BEGIN { printf "%.0f", 100 * c / hz / (ns / 1e9) }'
}

now_ns() { date +%s%N; }

# Waits until the file $1 has a "started" event while process $2 lives.
wait_started_event() {
    local file=$1 pid=$2 i
    for ((i = 0; i < ready_s * 20; i++)); do
        grep -qs '"event": *"started"' "$file" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# Per server: rates of the rounds, busy % of the server's and of the
# generator's CPU per round, the generator's counters summed over the rounds
# (sent valid invalid timeouts), why it has no result, notes.
declare -A rates busy gbusy counts why note
servers=(floor punchd coturn)

# run NAME PORT EVENTS_FILE|- COMMAND...: starts the server pinned to
# server_cpu, waits until it answers, measures it once, stops it.
run() {
    local name=$1 port=$2 events=$3
    shift 3
    if port_busy "$port"; then
        why[$name]="port $port already in use"
        return 0
    fi
    [[ $events == - ]] || rm -f "$events"
    taskset -c "$server_cpu" "$@" >"$tmp/$name.log" 2>&1 &
    server_pid=$!
    if [[ $events != - ]] && ! wait_started_event "$events" "$server_pid"; then
        why[$name]="no started event (log: $(tail -n 3 "$tmp/$name.log" | tr '\n' ' '))"
        stop_server
        return 0
    fi
    if ! taskset -c "$gen_cpu" "$load" "$host:$port" --probe "$ready_s" 2>/dev/null; then
        why[$name]="no answer within ${ready_s} s (log: $(tail -n 3 "$tmp/$name.log" | tr '\n' ' '))"
        stop_server
        return 0
    fi
    local s0 g0 s1 g1 t0 t1 out
    read -r s0 g0 < <(cpu_busy "$server_cpu" "$gen_cpu")
    t0=$(now_ns)
    out=$(taskset -c "$gen_cpu" "$load" "$host:$port" --window "$window" --sockets "$sockets" \
        --seconds "$secs" --warmup "$warmup" || true)
    t1=$(now_ns)
    read -r s1 g1 < <(cpu_busy "$server_cpu" "$gen_cpu")
    stop_server
    if [[ $events != - ]]; then
        # punchd's own account of what it did not answer, when it has one.
        local skipped
        skipped=$(grep -s '"event":"stopped"' "$events" | tail -n 1 | grep -oE \
            '"(errors|malformed|rate_limited|no_room|send_dropped)":[1-9][0-9]*' | tr -d '"' |
            paste -sd ' ' || true)
        [[ -z $skipped ]] || note[$name]+="round $((round + 1)) it counted $skipped; "
    fi
    # rate R sent S valid V invalid I timeouts T
    local -a f c
    read -ra f <<<"$out"
    if [[ ${#f[@]} -ne 10 || ${f[0]} != rate ]]; then
        why[$name]="generator failed: $out"
        return 0
    fi
    rates[$name]+="${f[1]} "
    busy[$name]+="$(percent $((s1 - s0)) $((t1 - t0))) "
    gbusy[$name]+="$(percent $((g1 - g0)) $((t1 - t0))) "
    read -ra c <<<"${counts[$name]:-0 0 0 0}"
    counts[$name]="$((c[0] + f[3])) $((c[1] + f[5])) $((c[2] + f[7])) $((c[3] + f[9]))"
}

median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END {
    if (NR) printf "%.0f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

[[ -x $punchd ]] || why[punchd]="not built"
[[ -n $turnserver ]] || why[coturn]="not installed"
fport=$base_port pport=$((base_port + 2)) cport=$((base_port + 4))
for ((round = 0; round < rounds; round++)); do
    [[ -n ${why[floor]:-} ]] || run floor "$fport" - "$floor" "$host:$fport"
    [[ -n ${why[punchd]:-} ]] ||
        run punchd "$pport" "$tmp/punchd.events" \
            "$punchd" --listen "$host:$pport" --rate-limit 0 --events "$tmp/punchd.events"
    # Stun-only, UDP only, one relay thread (so one thread answers Binding
    # requests, as in the others), no CLI/TLS/DTLS/TCP listeners, no config
    # file (-n), and every file it writes (pid, log, user DB) under $tmp.
    [[ -n ${why[coturn]:-} ]] ||
        run coturn "$cport" - "$turnserver" -n --stun-only \
            --listening-ip "$host" --relay-ip "$host" --listening-port "$cport" \
            --no-tcp --no-tls --no-dtls --no-cli --no-rfc5780 --relay-threads 1 \
            --pidfile "$tmp/turnserver.pid" --db "$tmp/turndb" \
            --log-file "$tmp/turnserver.out" --simple-log --no-stdout-log
done

declare -A rate
printf 'STUN Binding throughput on %s: window %s over %s sockets, %s s after %s s warm-up,\n' \
    "$host" "$window" "$sockets" "$secs" "$warmup"
printf '%s round(s); servers on CPU %s, generator on CPU %s; load average %s.\n' \
    "$rounds" "$server_cpu" "$gen_cpu" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf 'answers/s: median over the rounds; cpu%s, cpu%s: how busy the server'"'"'s and the\n' \
    "$server_cpu" "$gen_cpu"
printf 'generator'"'"'s CPU were (median, softirq included).\n\n'
printf '%-8s %10s %5s %5s %10s %10s %8s %8s  %s\n' server answers/s "cpu$server_cpu" "cpu$gen_cpu" \
    sent valid invalid timeouts "$( ((rounds > 1)) && echo 'each round')"
for name in "${servers[@]}"; do
    if [[ -n ${why[$name]:-} || -z ${rates[$name]:-} ]]; then
        printf '%s: %s\n' "$name" "${why[$name]:-no result}"
        continue
    fi
    rate[$name]=$(median <<<"${rates[$name]}")
    read -ra c <<<"${counts[$name]}"
    sb=$(median <<<"${busy[$name]}")
    printf '%-8s %10s %4s%% %4s%% %10s %10s %8s %8s  %s\n' "$name" "${rate[$name]}" "$sb" \
        "$(median <<<"${gbusy[$name]}")" "${c[@]}" "$( ((rounds > 1)) && echo "${rates[$name]}")"
    ((sb >= 95)) || note[$name]+="its CPU was only ${sb}% busy: the generator or other load held it back; "
done
for name in "${servers[@]}"; do
    [[ -z ${note[$name]:-} ]] || printf 'note, %s: %s\n' "$name" "${note[$name]%; }"
done
echo

ratio() { # ratio A B [NOTE]
    if [[ -n ${rate[$1]:-} && -n ${rate[$2]:-} && ${rate[$2]} != 0 ]]; then
        awk -v a="${rate[$1]}" -v b="${rate[$2]}" -v l="$1/$2" -v n="${3:-}" \
            'BEGIN { printf "%-14s %5.2f%s\n", l, a / b, n }'
    else
        printf '%-14s %5s%s\n' "$1/$2" n/a "${3:-}"
    fi
}
ratio punchd floor "   (target >= 0.85)"
ratio punchd coturn
ratio coturn floor

[[ -n ${rate[floor]:-} ]]
