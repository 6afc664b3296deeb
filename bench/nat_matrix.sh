#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# docs/nat-matrix.md (issue 10): per cell — a pair of NATs and one setting
# of the dimensions the lab knows (NAT input policy, punchd on one or two
# addresses, loss, unequal uplink delays, port mapping, UDP or --tcp) —
# the lab's direct rate and median time to the first direct path, beside
# the simulator's for the same cell (bench/nat_matrix.c).
#
# Not a full product of the dimensions (thousands of lab runs): a base
# table of NAT pairs, then one table per dimension, varied against a few
# representative pairs. Every lab run is a fresh `punch connect` (new key,
# new name, new process) to a fresh `punch listen` that registered first,
# on a lab built once per cell; it is timed from alice's start to her
# first direct path event (registration included; with --tcp, her first
# direct TCP path), and counts as direct when that comes within LIMIT.
# The simulator runs the same cell SIM_RUNS times (seeds 1..N) the same
# way. Links: 10 ms one way on each peer's access link, 5 ms on the
# server's, unless the cell says otherwise. Nothing is asserted.
#
# usage: bench/nat_matrix.sh [--runs N] [--sim-runs N] [--limit S] [--only REGEX]
#                            [--out FILE] [BUILD_DIR]
#   --runs N      lab runs per cell (default 10)
#   --sim-runs N  simulator runs per cell (default 100)
#   --limit S     seconds from alice's start for a run to count as direct (default 5)
#   --only REGEX  only the cells whose "table: cell" matches (grep -E)
#   --out FILE    default docs/nat-matrix.md (with --only or fewer than 10
#                 runs, default $TMPDIR/nat-matrix.md: the doc keeps full runs)
# NAT_MATRIX_KEEP=DIR keeps every lab run's event files in DIR.
# The whole matrix (57 cells, 10 runs each) takes about 15 minutes here;
# without root (or network namespaces) only the simulator's figures are
# written. BUILD_DIR defaults to build/; nothing is built.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=10 sim_runs=100 limit=5 only="" out=""
while [ $# -gt 0 ]; do
    case $1 in
        --runs) runs=$2; shift 2 ;;
        --sim-runs) sim_runs=$2; shift 2 ;;
        --limit) limit=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "nat_matrix: unknown option '$1'" >&2; exit 2 ;;
        *) break ;;
    esac
done
[[ $runs =~ ^[1-9][0-9]*$ && $sim_runs =~ ^[1-9][0-9]*$ && $limit =~ ^[1-9][0-9]*$ ]] ||
    { echo "nat_matrix: --runs, --sim-runs and --limit take positive integers" >&2; exit 2; }
build=$(cd "${1:-$root/build}" && pwd)
if [ -z "$out" ]; then
    out=$root/docs/nat-matrix.md
    [ -z "$only" ] && [ "$runs" -ge 10 ] || out=${TMPDIR:-/tmp}/nat-matrix.md
fi
matrix=$build/bench/nat_matrix PUNCH=$build/apps/punch PUNCHD=$build/apps/punchd
for f in "$matrix" "$PUNCH" "$PUNCHD"; do
    [ -x "$f" ] || { echo "nat_matrix: $f not found; build first" >&2; exit 2; }
done
lab_ok=0
[ "$(id -u)" = 0 ] && ip netns list >/dev/null 2>&1 && lab_ok=1
[ "$lab_ok" = 1 ] || echo "nat_matrix: not root or no network namespaces: simulator only" >&2

tmp=$(mktemp -d)
prefix=nm$$
export PUNCH_BUILD_DIR=$build
lab() { "$root/lab/punch-lab" --prefix "$prefix" "$@"; }
trap 'lab down >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
mkfifo "$tmp/quiet"   # the peers' stdin: never ends, never carries anything
exec {quiet}<>"$tmp/quiet"

# ---- the cells -----------------------------------------------------------
# cell TABLE LABEL KEY=VALUE...: keys (defaults) backend (kernel|punch-nat),
# a, b (port-restricted-cone: SPEC.md §5 presets; punch-nat takes punch-nat
# specs), policy (drop; kernel: none|reject|drop), server (two-ips |
# second-port | one-port), loss (0, %), da, db (10, ms), tcp (0|1), pa, pb
# (off|upnp|natpmp|pcp: miniupnpd on that NAT, kernel backend).
CELLS=()
cell() { CELLS+=("$1|$2|${*:3}"); }

presets=(full-cone restricted-cone port-restricted-cone p2p cgnat symmetric-sequential symmetric-random)
for ((i = 0; i < ${#presets[@]}; i++)); do
    for ((j = i; j < ${#presets[@]}; j++)); do
        cell "NAT pairs (punch-nat)" "${presets[i]} × ${presets[j]}" backend=punch-nat a="${presets[i]}" b="${presets[j]}"
    done
done
for policy in none reject drop; do
    cell "Input policy" "UDP, both NATs $policy" policy=$policy
    cell "Input policy" "--tcp, both NATs $policy" policy=$policy tcp=1
done
cell "Input policy" "--tcp, punch-nat, both syn=rst" backend=punch-nat a=port-restricted-cone,syn=rst b=port-restricted-cone,syn=rst tcp=1
cell "Input policy" "--tcp, punch-nat, both drop" backend=punch-nat tcp=1
for server in two-ips second-port one-port; do
    cell "punchd addresses" "symmetric-random × port-restricted-cone, $server" a=symmetric-random server=$server
    cell "punchd addresses" "port-restricted-cone × port-restricted-cone, $server" server=$server
done
for loss in 0 10 20; do
    cell "Loss" "port-restricted-cone × port-restricted-cone, $loss %" loss=$loss
    cell "Loss" "symmetric-random × port-restricted-cone, $loss %" a=symmetric-random loss=$loss
done
for d in "5 80" "80 5"; do
    set -- $d
    cell "Unequal delays" "port-restricted-cone × port-restricted-cone, alice $1 ms, bob $2 ms" da=$1 db=$2
    cell "Unequal delays" "symmetric-random × port-restricted-cone, alice $1 ms, bob $2 ms" a=symmetric-random da=$1 db=$2
done
cell "Port mapping" "symmetric-random × symmetric-random, none" a=symmetric-random b=symmetric-random
for pm in upnp natpmp pcp; do
    cell "Port mapping" "symmetric-random × symmetric-random, $pm on alice's NAT" a=symmetric-random b=symmetric-random pa=$pm
done
cell "Port mapping" "symmetric-random × symmetric-random, pcp on bob's NAT" a=symmetric-random b=symmetric-random pb=pcp

# ---- one cell ------------------------------------------------------------
# parse KEY=VALUE...: sets the cell's variables
parse() {
    backend=kernel a=port-restricted-cone b=port-restricted-cone policy=drop server=two-ips
    loss=0 da=10 db=10 tcp=0 pa=off pb=off
    local kv
    for kv in "$@"; do
        case ${kv%%=*} in
            backend|a|b|policy|server|loss|da|db|tcp|pa|pb) printf -v "${kv%%=*}" '%s' "${kv#*=}" ;;
            *) echo "nat_matrix: bad cell key '$kv'" >&2; exit 2 ;;
        esac
    done
}

# sim_figure: "RUNS DIRECT MEDIAN TECHNIQUE" from the simulator
sim_figure() {
    local sa=$a sb=$b args=()
    # the kernel's input policies none and reject answer a SYN with RST
    if [ "$backend" = kernel ] && [ "$policy" != drop ]; then sa+=,syn=rst sb+=,syn=rst; fi
    # ...and none (no input firewall) confirms a conntrack entry for an
    # unsolicited packet: the trap (src/nat/trap.c)
    if [ "$backend" = kernel ] && [ "$policy" = none ]; then sa+=,trap=on sb+=,trap=on; fi
    # ...and conntrack ends a TCP session a RST passed, and checks the
    # handshake's sequence numbers (src/nat/tcp_state.c)
    if [ "$backend" = kernel ]; then sa+=,rst-close=on,isn-check=on sb+=,rst-close=on,isn-check=on; fi
    [ "$tcp" = 1 ] && args+=(--tcp)
    [ "$pa" = off ] || args+=(--portmap-a "$pa")
    [ "$pb" = off ] || args+=(--portmap-b "$pb")
    "$matrix" --runs "$sim_runs" --limit $((limit * 1000)) --nat-a "$sa" --nat-b "$sb" \
        --server "$server" --loss "$loss" --delay-a "$da" --delay-b "$db" "${args[@]}"
}

# first_direct EVENTS: "T_MS TECHNIQUE" of the first direct path (TCP with tcp=1)
first_direct() {
    local pat='"kind":"direct"'
    grep '"event":"path"' "$1" 2>/dev/null | grep "$pat" |
        { if [ "$tcp" = 1 ]; then grep -E '"technique":"(tcp-simultaneous-open|reversal|tcp-direct)"'; else cat; fi; } |
        head -1 | sed 's/.*"t_ms":\([0-9]*\).*"technique":"\([^"]*\)".*/\1 \2/' || true
}

# lab_run R: one fresh listen + connect; prints "MS TECHNIQUE" or "- relay|none"
lab_run() {
    local r=$1 d=$tmp/run$1 bob alice i f=""
    mkdir -p "$d"
    (exec "$root/lab/punch-lab" --prefix "$prefix" exec bob -- env XDG_CONFIG_HOME="$d/bob" "$PUNCH" \
        --server 198.51.100.1 --name "b$r" --events "$d/bob.ev" listen --datagram \
        <&$quiet >/dev/null 2>"$d/bob.err") &
    bob=$!
    for ((i = 0; i < 1000; i++)); do grep -q '"registered"' "$d/bob.ev" 2>/dev/null && break; sleep 0.01; done
    local topts=(); [ "$tcp" = 1 ] && topts=(--tcp)
    (exec "$root/lab/punch-lab" --prefix "$prefix" exec alice -- env XDG_CONFIG_HOME="$d/alice" \
        "$PUNCH" --server 198.51.100.1 --name "a$r" --events "$d/alice.ev" \
        connect "b$r" --datagram "${topts[@]}" <&$quiet >/dev/null 2>"$d/alice.err") &
    alice=$!
    # until alice's first direct path, the limit (her own clock, or ours
    # with half a second for her start when she says nothing), or her end
    local until=$(( ${EPOCHREALTIME/./} + (limit * 1000 + 500) * 1000 ))
    while kill -0 "$alice" 2>/dev/null && [ "${EPOCHREALTIME/./}" -lt "$until" ]; do
        f=$(first_direct "$d/alice.ev")
        [ -n "$f" ] && break
        local t; t=$(grep -o '"t_ms":[0-9]*' "$d/alice.ev" 2>/dev/null | tail -1 | cut -d: -f2)
        [ -n "$t" ] && [ "$t" -gt $((limit * 1000)) ] && break
        sleep 0.02
    done
    f=$(first_direct "$d/alice.ev")
    # KILL: the run is over; nothing of the exit is measured
    kill -KILL "$alice" "$bob" 2>/dev/null || true
    wait "$alice" "$bob" 2>/dev/null || true
    # NAT_MATRIX_KEEP=DIR keeps each run's events there (to see why)
    [ -z "${NAT_MATRIX_KEEP:-}" ] || cp -r "$d" "$(mktemp -d "$NAT_MATRIX_KEEP/run$r.XXXX")"
    if [ -n "$f" ] && [ "${f%% *}" -le $((limit * 1000)) ]; then
        echo "$f"
    elif grep -q '"event":"path"' "$d/alice.ev" 2>/dev/null; then
        echo "- relay"
    else
        echo "- none"
    fi
    rm -rf "$d"
}

# lab_figure: "RUNS DIRECT MEDIAN TECHNIQUE NOPATH" from RUNS lab runs
lab_figure() {
    local args=(different-nats --backend "$backend" --nat-a "$a" --nat-b "$b" --delay-a "${da}ms"
                --delay-b "${db}ms" --delay-s 5ms --seed 7) pd=(--listen 198.51.100.1:3478) r
    [ "$backend" = kernel ] && args+=(--input-policy "$policy")
    [ "$loss" = 0 ] || args+=(--loss-a "$loss%" --loss-b "$loss%")
    [ "$pa" = off ] || args+=(--portmap-a "$pa")
    [ "$pb" = off ] || args+=(--portmap-b "$pb")
    case $server in
        two-ips) pd+=(--alt 198.51.100.2) ;;
        one-port) pd+=(--second-port off) ;;
    esac
    if ! lab up "${args[@]}" >/dev/null 2>"$tmp/up.err"; then
        echo "nat_matrix: lab up ${args[*]}: $(tail -1 "$tmp/up.err")" >&2
        echo "$runs 0 - lab-failed $runs"
        return 0
    fi
    rm -f "$tmp/punchd.ev"
    lab exec server -- "$PUNCHD" "${pd[@]}" --key "$tmp/server.key" --events "$tmp/punchd.ev" \
        2>/dev/null <&$quiet &
    for ((r = 0; r < 500; r++)); do [ -s "$tmp/punchd.ev" ] && break; sleep 0.01; done
    : >"$tmp/runs"
    for ((r = 0; r < runs; r++)); do lab_run "$r" >>"$tmp/runs"; done
    lab down >/dev/null
    awk -v n="$runs" '
        $1 != "-" { d++; t[d] = $1; tech[$2]++ }
        $2 == "none" { none++ }
        END {
            best = "relay"; for (k in tech) if (tech[k] > tech[best]) best = k
            for (i = 2; i <= d; i++) { v = t[i]; for (j = i - 1; j >= 1 && t[j] > v; j--) t[j + 1] = t[j]; t[j + 1] = v }
            printf "%d %d %s %s %d\n", n, d, d ? t[int((d + 1) / 2)] : "-", best, none
        }' "$tmp/runs"
}

# note LAB... SIM...: where the two disagree by a lot
note() {
    local lr=$1 ld=$2 lm=$3 ln=$5 sr=$6 sd=$7 sm=$8 n=()
    local lp=$((100 * ld / lr)) sp=$((100 * sd / sr))
    [ $((lp - sp)) -gt 30 ] || [ $((sp - lp)) -gt 30 ] && n+=("**rates differ by $((lp > sp ? lp - sp : sp - lp)) points**")
    if [ "$lm" != - ] && [ "$sm" != - ]; then
        if [ "$lm" -gt $((2 * sm + 100)) ] || [ "$sm" -gt $((2 * lm + 100)) ]; then
            n+=("**medians differ: lab $lm ms, sim $sm ms**")
        fi
    fi
    [ "$ln" = 0 ] || n+=("$ln lab runs without any path")
    local IFS=';'; echo "${n[*]}"
}

pct() { echo "$((100 * $2 / $1)) % ($2/$1)"; }
ms() { [ "$1" = - ] && echo - || echo "$1 ms"; }

# ---- the run -------------------------------------------------------------
selected=()
for c in "${CELLS[@]}"; do
    IFS='|' read -r table label _ <<<"$c"
    [ -z "$only" ] || grep -qE -- "$only" <<<"$table: $label" && selected+=("$c")
done
[ ${#selected[@]} -gt 0 ] || { echo "nat_matrix: no cell matches '$only'" >&2; exit 2; }
echo "nat_matrix: ${#selected[@]} cells, $runs lab runs and $sim_runs simulator runs each (limit $limit s)" >&2
start=$SECONDS load_start=$(cut -d' ' -f1 /proc/loadavg) loads=()
{
    echo "# NAT matrix: direct rate and time to the first direct path, lab beside simulator"
    echo
    echo "Written by \`bench/nat_matrix.sh\` on $(date -u +%Y-%m-%d) (${#selected[@]} cells, $runs lab runs"
    echo "and $sim_runs simulator runs per cell); rerun it to check. Issue 10."
    echo
    echo "**Setup.** The lab (\`lab/punch-lab\`, real packets through network namespaces):"
    echo "\`different-nats\`, alice behind NAT A, bob behind NAT B, two routed hops between"
    echo "the NATs and the server behind its own router; 10 ms one way on each peer's"
    echo "access link and 5 ms on the server's (linkem), unless the cell says otherwise;"
    echo "the kernel's NATs (nftables masquerade; symmetric-random is \`masquerade"
    echo "fully-random\`, input policy drop) unless the table says punch-nat. punchd on two"
    echo "addresses (\`--alt\`) unless the cell says otherwise. Each lab run is a fresh"
    echo "\`punch listen\` on bob (new key and name, registered first) and then a fresh"
    echo "\`punch connect\` on alice (new key, name, process and port); the lab is built"
    echo "once per cell. The simulator (\`bench/nat_matrix\`, src/sim with the real agent and"
    echo "punchd's services) builds the same cell: the same NAT presets (the kernel's input"
    echo "policies none and reject as \`syn=rst\`, every kernel NAT \`rst-close=on,isn-check=on\`), 10 ms and up to 1 ms of jitter on each NAT's uplink, 5 ms"
    echo "to the server, the loss on both NATs' uplinks, the same punchd addresses; seeds"
    echo "1..$sim_runs."
    echo
    echo "**Measured.** *direct*: runs in which alice had a direct path (with \`--tcp\`: a"
    echo "direct TCP path) within $limit s of her start; *median*: of those, the time from"
    echo "alice's start to that path, registration included (her events' \`t_ms\`);"
    echo "*technique*: that path's, in most direct runs (relay: none was direct). Cells"
    echo "where lab and simulator differ by more than 30 points in rate, or by more than"
    echo "2× + 100 ms in median, are marked in bold; see \"Where they disagree\" below."
} >"$tmp/doc.md"

k=0 prev=""
for c in "${selected[@]}"; do
    IFS='|' read -r table label kvs <<<"$c"
    k=$((k + 1))
    # shellcheck disable=SC2086
    parse $kvs
    if [ "$table" != "$prev" ]; then
        {
            echo
            echo "## $table"
            echo
            echo "| cell | lab direct | lab median | lab technique | sim direct | sim median | sim technique | note |"
            echo "|---|---|---|---|---|---|---|---|"
        } >>"$tmp/doc.md"
        prev=$table
    fi
    sim=$(sim_figure)
    if [ "$lab_ok" = 1 ]; then lab_f=$(lab_figure); else lab_f="$runs 0 - - 0"; fi
    # shellcheck disable=SC2086
    set -- $lab_f $sim
    row="| $label | $(pct "$1" "$2") | $(ms "$3") | $4 | $(pct "$6" "$7") | $(ms "$8") | $9 | $(note "$@") |"
    [ "$lab_ok" = 1 ] || row="| $label | not run | - | - | $(pct "$6" "$7") | $(ms "$8") | $9 | |"
    echo "$row" >>"$tmp/doc.md"
    loads+=("$(cut -d' ' -f1 /proc/loadavg)")
    echo "nat_matrix: [$k/${#selected[@]}, $((SECONDS - start)) s] $table: $label: lab $2/$1 $(ms "$3") $4; sim $7/$6 $(ms "$8") $9" >&2
done
{
    echo
    echo "The whole run took $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s. Load"
    echo "average (1 min) $load_start at its start; after each cell $(printf '%s\n' "${loads[@]}" |
        sort -g | awk '{v[NR] = $1} END {printf "%s to %s, median %s", v[1], v[NR], v[int((NR + 1) / 2)]}'),"
    echo "on $(nproc) CPUs shared with other work: the lab's times are a loaded machine's."
    [ -f "$root/docs/nat-matrix-notes.md" ] && { echo; cat "$root/docs/nat-matrix-notes.md"; }
} >>"$tmp/doc.md"
mv "$tmp/doc.md" "$out"
echo "nat_matrix: wrote $out" >&2
