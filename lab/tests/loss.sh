#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Loss (issue 10): alice and bob behind port-restricted cone NATs (the
# kernel's), 10 ms one way on each access link (a, b) and LOSS each way on
# both. bob listens once (--keep-open --datagram); for each run a fresh
# `punch connect` (new key, new name, not registered yet) is started on
# alice and timed from its start to its first direct path event (its own
# t_ms: registration included). Per loss level it prints the runs direct,
# within the target time, and the median and max time to direct, and
# whether the issue's targets hold: 10 % -> >= 95 % of runs direct within
# 2 s, 20 % -> >= 90 % within 5 s. As a test (LOSS_ASSERT=floor, the
# default) it fails below a floor that a regression crosses but a noisy
# machine does not (80 % and 70 % of 20 runs: on this VM, beside another
# lab test, the runs gave 19-20/20 and 15-20/20); LOSS_ASSERT=target
# asserts the issue's targets (bench/loss_bench.sh), 0 prints only.
# environment: LOSS_RUNS (20 per level), LOSS_LEVELS ("10 20"), LOSS_ASSERT (floor|target|0)
. "$(dirname "$0")/lib.sh"
B=${PUNCH_BUILD_DIR:?}
PUNCH=$B/apps/punch PUNCHD=$B/apps/punchd
runs=${LOSS_RUNS:-20}
levels=${LOSS_LEVELS:-10 20}
check=${LOSS_ASSERT:-floor}

# target_ms LOSS, target_pct LOSS: the issue's targets
target_ms() { [ "$1" -le 10 ] && echo 2000 || echo 5000; }
target_pct() { [ "$1" -le 10 ] && echo 95 || echo 90; }
floor_pct() { [ "$1" -le 10 ] && echo 80 || echo 70; }

# first_direct EVENTS: t_ms of its first direct path event, empty when none
first_direct() { grep '"event":"path"' "$1" 2>/dev/null | grep '"kind":"direct"' | head -1 | grep -o '"t_ms":[0-9]*' | cut -d: -f2 || true; }

# stdin for the peers: a pipe that never ends and never carries anything
mkfifo "$TMP/quiet"
exec {quiet}<>"$TMP/quiet"

# one_run LOSS I: a fresh connect; sets RUN_T to its time to direct, or "none"
one_run() {
    local loss=$1 i=$2 limit pid t
    limit=$(( $(target_ms "$loss") / 1000 + 1 ))
    mkdir -p "$TMP/r$loss-$i"
    # Not through the lab() function: its subshell would take the TERM
    # below and leave punch running to its timeout, holding one of bob's
    # 16 peer slots; from run 16 on bob then refused newcomers until a
    # slot freed (the slow 17th run). punch-lab execs down to timeout,
    # which passes TERM on, and punch says goodbye to bob.
    "$PUNCH_LAB" --prefix "$TEST_PREFIX" exec alice -- env XDG_CONFIG_HOME="$TMP/r$loss-$i" \
        timeout $((limit + 1)) "$PUNCH" \
        --server 198.51.100.1 --name "a$loss-$i" --events "$TMP/r$loss-$i/ev" connect bob \
        --datagram <"$TMP/quiet" >/dev/null 2>"$TMP/r$loss-$i/err" &
    pid=$!
    # Until its first direct path, or it ended (timeout: past the target).
    while kill -0 "$pid" 2>/dev/null; do
        t=$(first_direct "$TMP/r$loss-$i/ev")
        [ -n "$t" ] && break
        sleep 0.02
    done
    t=$(first_direct "$TMP/r$loss-$i/ev")
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    RUN_T=${t:-none}
}

failed=""
for loss in $levels; do
    lab up different-nats --nat-a port-restricted-cone --nat-b port-restricted-cone \
        --delay-a 10ms --delay-b 10ms --loss-a "$loss%" --loss-b "$loss%" --seed "$loss" >/dev/null
    rm -f "$TMP/punchd.ev" "$TMP/bob.ev"
    # Every run is a new key behind the same NAT asking for bob: punchd's
    # limit per source and target (ten new sessions, then one a second)
    # would time the limiter from the eleventh run on, not the loss.
    lab exec server -- "$PUNCHD" --listen 198.51.100.1:3478 --key "$TMP/server.key" \
        --connects-per-target 100 --events "$TMP/punchd.ev" 2>/dev/null </dev/null &
    wait_for "$TMP/punchd.ev"
    lab exec bob -- env XDG_CONFIG_HOME="$TMP/bob" "$PUNCH" --server 198.51.100.1 --name bob \
        --events "$TMP/bob.ev" listen --datagram --keep-open <"$TMP/quiet" >/dev/null \
        2>"$TMP/bob.err" &
    for ((k = 0; k < 3000; k++)); do grep -q '"registered"' "$TMP/bob.ev" 2>/dev/null && break; sleep 0.01; done
    grep -q '"registered"' "$TMP/bob.ev" || fail "loss $loss %: bob did not register in 30 s"
    times=() direct=0 within=0 target=$(target_ms "$loss")
    for ((i = 0; i < runs; i++)); do
        one_run "$loss" "$i"
        t=$RUN_T
        times+=("$t")
        [ "$t" = none ] && continue
        direct=$((direct + 1))
        [ "$t" -le "$target" ] && within=$((within + 1))
    done
    stats=$(printf '%s\n' "${times[@]}" | grep -v none | sort -n |
        awk '{v[NR] = $1} END { if (NR) printf "median %d ms, max %d ms", v[int((NR + 1) / 2)], v[NR]; else printf "none direct" }')
    echo "loss $loss % each way on both access links: $within/$runs direct within $target ms ($direct/$runs direct at all); $stats; runs (ms): ${times[*]}"
    lab down >/dev/null
    if [ $((within * 100)) -ge $(($(target_pct "$loss") * runs)) ]; then
        echo "loss $loss %: the issue's target ($(target_pct "$loss") % within $target ms) holds"
    else
        echo "loss $loss %: BELOW the issue's target ($(target_pct "$loss") % within $target ms)"
        [ "$check" = target ] && failed+="loss $loss %: $within/$runs within $target ms (target $(target_pct "$loss") %); "
    fi
    [ "$check" = floor ] && [ $((within * 100)) -lt $(($(floor_pct "$loss") * runs)) ] &&
        failed+="loss $loss %: $within/$runs within $target ms (floor $(floor_pct "$loss") %); "
done
[ -z "$failed" ] || fail "$failed"
ok "loss: direct rates and times (LOSS_ASSERT=$check)"
