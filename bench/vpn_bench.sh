#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# How much of the network punch vpn leaves to IP traffic (issue 6): iperf3
# from alice to bob through `punch vpn`, UDP and TCP, as a ratio to plain
# UDP between the same two namespaces through the same NATs, and the CPU the
# two punch processes spend per gigabit carried. One run of each figure,
# printed with its target; not a test. Needs root (the lab's namespaces) and
# iperf3; every packet stays inside the lab.
#
# The lab: different-nats, both NATs port-restricted cone (the kernel's), no
# delay (plain veth links, no linkem in the way). The baseline needs a way
# in through bob's NAT: a port forward of 5201 to bob, added to nat-b's
# nftables for the baseline only (the tunnel does not use it).
#
#   plain UDP    iperf3 -u -b 0 -l SIZE  alice -> 192.0.2.1:5201 (nat-b -> bob)
#   vpn UDP      iperf3 -u -b 0 -l SIZE  alice -> 10.99.0.2 through punch vpn
#   vpn UDP paced  the same, offered at the rate plain UDP delivered
#   vpn TCP      iperf3 (one stream)     alice -> 10.99.0.2 through punch vpn
#   plain TCP    printed for scale only: the kernel's TCP over veth uses
#                segmentation offloads no tunnel gets, so it is no target
#
# Throughput is what the iperf3 receiver got (payload bits per second).
# SIZE defaults to 1124 bytes, so each UDP datagram is one 1152-byte packet:
# the tunnel's MTU. CPU: utime + stime of both punch processes
# (/proc/PID/stat) over the run, in CPU-seconds per gigabit the receiver got.
# "-b 0" sends as fast as iperf3 can; through the tunnel most of that is
# dropped at the TUN's queue (shown as lost), and the sender's wasted sends
# take CPU from the punch processes on this 2-core machine: that figure is
# what the tunnel delivers when offered far more than it can carry. The
# paced figure offers what plain UDP delivered. (perf: alice's punch spends
# ~80 % of its time in sendmmsg, i.e. in the kernel forwarding each packet
# through both NATs and three routers, as plain UDP's sender does; reading
# the TUN ~5 %, ChaCha20-Poly1305 ~7 %.)
#
# Nothing is pinned: the machine is small and shared (2 cores here: both
# iperf3s and both punch processes share them), so figures move by 10-20 %
# from run to run.
#
# usage: bench/vpn_bench.sh [BUILD_DIR]            (default: build; builds nothing)
# environment: BENCH_SECONDS (5), BENCH_SIZE (1124)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
secs=${BENCH_SECONDS:-5}
size=${BENCH_SIZE:-1124}
punch=$build/apps/punch
punchd=$build/apps/punchd
for f in "$punch" "$punchd"; do
    [[ -x $f ]] || { echo "vpn_bench: $f not found; build first" >&2; exit 2; }
done
command -v iperf3 >/dev/null || { echo "vpn_bench: no iperf3 (scripts/setup installs it)" >&2; exit 2; }
export PUNCH_BUILD_DIR=$build
prefix=vb$$
lab() { "$root/lab/punch-lab" --prefix "$prefix" "$@"; }
lab_bg() { exec "$root/lab/punch-lab" --prefix "$prefix" "$@"; } # $! is the command's PID
tmp=$(mktemp -d)
trap 'lab down >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
readonly server=198.51.100.1 nat_b=192.0.2.1 a_ip=10.99.0.1 b_ip=10.99.0.2
tck=$(getconf CLK_TCK)

wait_grep() { # FILE REGEX: bounded poll
    for _ in $(seq 1000); do grep -q -- "$2" "$1" 2>/dev/null && return; sleep 0.01; done
    echo "vpn_bench: timed out waiting for /$2/ in $1" >&2; exit 1
}
ticks() { # PID...: utime + stime, in clock ticks
    local t=0 p
    for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
    echo $t
}
# iperf NAME DEST ARGS...: one iperf3 run alice -> DEST (bob serves);
# prints "bits_per_second lost_percent bytes" as the receiver saw them.
iperf() {
    local name=$1 dest=$2; shift 2
    lab exec bob -- iperf3 -s -1 >"$tmp/$name.server" 2>&1 &
    local srv=$!
    for _ in $(seq 500); do lab exec bob -- ss -Hltn "sport = :5201" | grep -q . && break; sleep 0.01; done
    lab exec alice -- iperf3 -c "$dest" -t "$secs" -J "$@" >"$tmp/$name.json" 2>"$tmp/$name.err" || {
        echo "vpn_bench: iperf3 $name failed: $(cat "$tmp/$name.err")" >&2; exit 1; }
    wait "$srv" || true
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["end"]["sum_received"]
print(int(r["bits_per_second"]), r.get("lost_percent", 0), r["bytes"])' "$tmp/$name.json"
}

lab up different-nats --nat-a port-restricted-cone --nat-b port-restricted-cone >/dev/null

# ---- baseline: plain UDP (and TCP) through a port forward on nat-b ----------
lab exec nat-b -- nft add rule ip punchlab nat_pre iifname wan ip daddr $nat_b \
    meta l4proto '{ tcp, udp }' th dport 5201 dnat to 10.0.2.10
lab exec nat-b -- nft insert rule ip punchlab filter_fwd ct status dnat accept
plain_udp=$(iperf plain-udp $nat_b -u -b 0 -l "$size")
plain_tcp=$(iperf plain-tcp $nat_b)

# ---- punch vpn ----------------------------------------------------------------
lab exec server -- "$punchd" --listen $server:3478 --rate-limit 0 --events "$tmp/punchd.ev" \
    2>"$tmp/punchd.log" </dev/null &
wait_grep "$tmp/punchd.ev" '"started"'
lab_bg exec bob -- env XDG_CONFIG_HOME="$tmp/bob" "$punch" --server $server --name bob \
    --events "$tmp/bob.ev" vpn listen --any-peer --address $b_ip/24 --dev pvb0 </dev/null >/dev/null 2>"$tmp/bob.err" &
bob=$!
wait_grep "$tmp/bob.ev" '"registered"'
lab_bg exec alice -- env XDG_CONFIG_HOME="$tmp/alice" "$punch" --server $server --name alice \
    --events "$tmp/alice.ev" vpn connect bob --address $a_ip/24 --dev pva0 </dev/null >/dev/null 2>"$tmp/alice.err" &
alice=$!
wait_grep "$tmp/alice.ev" '"event":"path".*"kind":"direct"'
wait_grep "$tmp/bob.ev" '"event":"path".*"kind":"direct"'
wait_grep "$tmp/alice.ev" '"vpn-peer"'
wait_grep "$tmp/bob.ev" '"vpn-peer"'

# Each run between two CPU readings: t* both punch processes, a* alice's (the sender).
t0=$(ticks $alice $bob); a0=$(ticks $alice)
vpn_udp=$(iperf vpn-udp $b_ip -u -b 0 -l "$size")
t1=$(ticks $alice $bob); a1=$(ticks $alice)
vpn_paced=$(iperf vpn-paced $b_ip -u -b "${plain_udp%% *}" -l "$size")
t2=$(ticks $alice $bob); a2=$(ticks $alice)
vpn_tcp=$(iperf vpn-tcp $b_ip)
t3=$(ticks $alice $bob); a3=$(ticks $alice)
grep '"event":"path"' "$tmp/alice.ev" | tail -1 | grep -q '"kind":"direct"' ||
    echo "vpn_bench: warning: alice's path is no longer direct: $(grep path "$tmp/alice.ev" | tail -1)" >&2

awk -v pu="$plain_udp" -v pt="$plain_tcp" -v vu="$vpn_udp" -v vt="$vpn_tcp" -v vp="$vpn_paced" \
    -v size="$size" -v secs="$secs" -v tck="$tck" -v cu="$((t1 - t0))" -v au="$((a1 - a0))" \
    -v cp="$((t2 - t1))" -v ap="$((a2 - a1))" -v ct="$((t3 - t2))" -v at="$((a3 - a2))" 'BEGIN {
    split(pu, PU, " "); split(pt, PT, " "); split(vu, VU, " "); split(vt, VT, " "); split(vp, VP, " ")
    printf "punch vpn, alice -> bob behind two port-restricted cone NATs, direct path, %d s per run\n", secs
    printf "   plain UDP   %7.1f Mbit/s  (%d-byte datagrams, %.1f %% lost)\n", PU[1] / 1e6, size, PU[2]
    printf "   plain TCP   %7.1f Mbit/s  (for scale: offloads, no target)\n", PT[1] / 1e6
    printf "   vpn UDP     %7.1f Mbit/s  (%.1f %% lost)  %.2f CPU-s per Gbit (both punch; sender %.2f)\n",
        VU[1] / 1e6, VU[2], cpg(cu, VU[3]), cpg(au, VU[3])
    printf "   vpn UDP paced %5.1f Mbit/s  (%.1f %% lost)  %.2f CPU-s per Gbit (both punch; sender %.2f)\n",
        VP[1] / 1e6, VP[2], cpg(cp, VP[3]), cpg(ap, VP[3])
    printf "   vpn TCP     %7.1f Mbit/s                %.2f CPU-s per Gbit (both punch; sender %.2f)\n",
        VT[1] / 1e6, cpg(ct, VT[3]), cpg(at, VT[3])
    printf "   vpn UDP / plain UDP = %.2f (target >= 0.60)\n", (PU[1] > 0 ? VU[1] / PU[1] : 0)
    printf "   vpn UDP paced / plain UDP = %.2f (target >= 0.60)\n", (PU[1] > 0 ? VP[1] / PU[1] : 0)
    printf "   vpn TCP / plain UDP = %.2f (target >= 0.60)\n", (PU[1] > 0 ? VT[1] / PU[1] : 0) }
    function cpg(t, bytes) { return bytes > 0 ? (t / tck) / (bytes * 8 / 1e9) : 0 }'
