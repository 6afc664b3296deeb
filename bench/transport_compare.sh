#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Would a packaged QUIC stack reach issue 14's stream targets on this
# machine? ngtcp2 (Debian's ngtcp2-server / ngtcp2-client, the library's own
# example programs: gtlsserver / gtlsclient, GnuTLS, HTTP/3 over QUIC)
# against punch streams, Linux TCP and the cipher alone, in one run, in
# paired rounds (every candidate once per round, so the load of the other
# jobs on this shared machine falls on all of them alike).
#
# 1. Clean path: the lab's `public` topology as bench/stream_bench.sh (no
#    delay, no loss, no NAT), BENCH_BYTES (64 MiB): plain TCP alice -> bob,
#    a punch stream alice -> bob (--no-aes: ChaCha20-Poly1305), an ngtcp2
#    download bob -> alice with CUBIC and with BBR (TLS_CHACHA20_POLY1305_SHA256
#    only), and the cipher alone (bench/punch_blast cipher: ChaCha20-Poly1305
#    sealing 1152-byte datagrams on one core). Each user-space transport's CPU
#    per MiB on each side (less its CPU for a transfer of 1-2 bytes in the
#    same round: the set-up), and "one core per side would carry": 1 MiB
#    over the costlier side's CPU per MiB, against the cipher's CPU per MiB.
#    "TCP + AEAD" is computed, not measured: a transport that costs nothing in
#    user space but the AEAD, on top of the kernel's TCP: 1 / (1/TCP + 1/cipher).
# 2. Loss and delay: the path of bench/stream_loss_bench.sh (two kernel NATs,
#    BENCH_DELAY on every access link, each loss level of BENCH_LOSS on every
#    access link), BENCH_LOSS_BYTES (4 MiB): TCP BBR and CUBIC alice -> bob
#    (TCP port forward on nat-b), punch, and ngtcp2 BBR and CUBIC downloads
#    bob -> alice (UDP port forwards on nat-b), as ratios to TCP BBR / CUBIC;
#    and the CPU per data packet of punch and ngtcp2 BBR (the sender's
#    packets from its interface counters: exact there, as linkem's links
#    carry no GSO batches).
#
# Every transfer is timed from its first byte to its last at the receiver:
# TCP's and punch's by bench/stream_tools.py count reading the stream;
# ngtcp2's client writes its download into a file in /dev/shm whose growth
# stream_tools.py grow polls every millisecond (a FIFO read by count would
# stop the client's loop whenever the reader lags: 5-9.5 MB/s against 12-17.5
# into a file, paired on loopback at load 17-20). Printed, not asserted.
# Needs root and ngtcp2-client, ngtcp2-server, openssl (scripts/setup); every
# packet stays inside the lab. docs/streams.md "Measured: ngtcp2 on this
# machine" has the figures.
#
# usage: bench/transport_compare.sh [BUILD_DIR]
# environment: BENCH_BYTES (67108864), BENCH_RUNS (3), BENCH_LOSS_BYTES (4194304),
#              BENCH_LOSS ("0 1 5"; "" skips part 2), BENCH_DELAY (10ms),
#              BENCH_LOSS_RUNS (1), BENCH_TIMEOUT (300 s per transfer)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
bytes=${BENCH_BYTES:-67108864}
runs=${BENCH_RUNS:-3}
loss_bytes=${BENCH_LOSS_BYTES:-4194304}
losses=${BENCH_LOSS-0 1 5}
delay=${BENCH_DELAY:-10ms}
loss_runs=${BENCH_LOSS_RUNS:-1}
limit=${BENCH_TIMEOUT:-300}
tools=$root/bench/stream_tools.py
blast=$build/bench/punch_blast
for f in "$build/apps/punch" "$build/apps/punchd" "$blast"; do
    [[ -x $f ]] || { echo "transport_compare: $f not found; build first" >&2; exit 2; }
done
for f in gtlsserver gtlsclient openssl; do
    command -v "$f" >/dev/null || { echo "transport_compare: $f not found (scripts/setup installs it)" >&2; exit 2; }
done
export PUNCH_BUILD_DIR=$build
prefix=tc$$
lab() { "$root/lab/punch-lab" --prefix "$prefix" "$@"; }
tmp=$(mktemp -d)
dl=
trap 'lab down >/dev/null 2>&1 || true; rm -rf "$tmp" ${dl:+"$dl"}' EXIT
wait_exists() { for _ in $(seq 1000); do [ -e "$1" ] && return 0; sleep 0.01; done; return 1; }
wait_for() { for _ in $(seq 1000); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.01; done; return 1; }
field() { awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}' "$2"; }
med() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
tick=$(getconf CLK_TCK)
chacha='NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+CHACHA20-POLY1305'
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=bench \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
mkdir -p "$tmp/www"
# ngtcp2's client writes its download into a file here (in memory), timed by
# stream_tools.py grow: into a pipe its loop would stop whenever the reader lags
dl=$(mktemp -d -p /dev/shm)

# sent NODE: "PACKETS BYTES" NODE's interfaces sent so far (one GSO batch
# counts as one packet where the link keeps GSO on: exact on the lossy lab's
# links only, which turn it off for linkem)
sent() {
    lab exec "$1" -- cat /proc/net/dev |
        awk '/:/ {sub(/^ +/, ""); split($0, f, /[: ]+/); if (f[1] != "lo") {b += f[10]; p += f[11]}} END {print p, b}'
}
# diff_sent "P0 B0" "P1 B1": the packets and bytes between two readings
diff_sent() { echo "$1 $2" | awk '{print $3 - $1, $4 - $2}'; }
# proc_cpu PID: "CPU_S WAIT_S" of a running process (user + system, all threads; run-queue wait)
proc_cpu() {
    local s w
    s=$(awk -v t="$tick" '{sub(/.*\) /, ""); print ($12 + $13) / t}' "/proc/$1/stat")
    w=$(awk '{print $2 / 1e9}' "/proc/$1/schedstat")
    echo "$s $w"
}

# quic_servers NODE: ngtcp2 servers in NODE serving $tmp/www, CUBIC on 4433, BBR on 4434
quic_servers() {
    local port cc
    for port in 4433 4434; do
        cc=$([ $port = 4433 ] && echo cubic || echo bbr)
        rm -f "$tmp/quic$port.pid"
        lab exec "$1" -- sh -c 'echo $$ >"$0"; exec "$@"' "$tmp/quic$port.pid" \
            gtlsserver -q --cc "$cc" --ciphers "$chacha" -d "$tmp/www" '*' "$port" \
            "$tmp/key.pem" "$tmp/cert.pem" </dev/null >/dev/null 2>"$tmp/quic$port.err" &
        wait_for "$tmp/quic$port.pid" . || { echo "transport_compare: ngtcp2 server did not start" >&2; exit 1; }
    done
}

# quic_run N HOST PORT SERVER_NODE SIZE_FILE: download SIZE_FILE from the
# ngtcp2 server at HOST:PORT to alice; writes $tmp/q$N.{rate,cpu,pkts}
quic_run() {
    local n=$1 host=$2 port=$3 node=$4 file=$5 spid before after p0 p1
    spid=$(cat "$tmp/quic$port.pid")
    rm -f "$dl/$file" "$tmp/grow.ready"
    python3 "$tools" grow "$dl/$file" "$(stat -c %s "$tmp/www/$file")" "$tmp/grow.ready" >"$tmp/q$n.rate" &
    wait_exists "$tmp/grow.ready"
    before=$(proc_cpu "$spid") p0=$(sent "$node")
    lab exec alice -- timeout "$limit" python3 "$tools" cpu "$tmp/q$n.ccpu" gtlsclient -q \
        --exit-on-all-streams-close --cc "$([ "$port" = 4433 ] && echo cubic || echo bbr)" \
        --ciphers "$chacha" --download "$dl" "$host" "$port" "https://$host:$port/$file" \
        </dev/null >/dev/null 2>"$tmp/q$n.err" || true
    wait $!
    rm -f "$dl/$file"
    after=$(proc_cpu "$spid") p1=$(sent "$node")
    local got
    got=$(cut -d' ' -f1 "$tmp/q$n.rate")
    [[ $got == "$(stat -c %s "$tmp/www/$file")" ]] ||
        { echo "transport_compare: ngtcp2 delivered $got bytes: $(tail -1 "$tmp/q$n.err")" >&2; exit 1; }
    # sender (server) CPU and wait, receiver (client) CPU and wait, sender's packets
    echo "$before $after" | awk '{printf "%s %s ", $3 - $1, $4 - $2}' >"$tmp/q$n.cpu"
    awk '{printf "%s %s\n", $1 + $2, $3}' "$tmp/q$n.ccpu" >>"$tmp/q$n.cpu"
    diff_sent "$p0" "$p1" >"$tmp/q$n.pkts"
}

# punch_run N DEST_HOST BYTES: a punch stream alice -> bob (fresh names and
# keys); writes $tmp/p$N/{rate,cpu,pkts}
punch_run() {
    local n=$1 d=$tmp/p$1 p0 p1 got
    mkdir -p "$d"
    lab exec bob -- env XDG_CONFIG_HOME="$d/bob" timeout "$limit" python3 "$tools" cpu "$d/bobcpu" \
        "$build/apps/punch" --server 198.51.100.1 --no-aes --name "bob$n" --events "$d/bob.ev" \
        listen </dev/null 2>"$d/bob.err" | python3 "$tools" count >"$d/rate" &
    wait_for "$d/bob.ev" registered || { echo "transport_compare: bob did not register" >&2; exit 1; }
    p0=$(sent alice)
    head -c "$3" /dev/zero | lab exec alice -- env XDG_CONFIG_HOME="$d/alice" timeout "$limit" \
        python3 "$tools" cpu "$d/alicecpu" "$build/apps/punch" --server 198.51.100.1 --no-aes \
        --name "alice$n" --events "$d/alice.ev" connect "bob$n" >/dev/null 2>"$d/alice.err" ||
        { echo "transport_compare: punch failed: $(tail -1 "$d/alice.err")" >&2; exit 1; }
    wait $!
    p1=$(sent alice)
    got=$(cut -d' ' -f1 "$d/rate")
    [[ $got == "$3" ]] || { echo "transport_compare: punch delivered $got of $3 bytes" >&2; exit 1; }
    grep -q '"kind":"direct"' "$d/alice.ev" || echo "transport_compare: note: punch run $n never went direct" >&2
    cat "$d/alicecpu" "$d/bobcpu" | awk '{printf "%s %s ", $1 + $2, $3} END {print ""}' >"$d/cpu"
    diff_sent "$p0" "$p1" >"$d/pkts"
}

# tcp_run DEST_HOST BYTES CC OUT: TCP alice -> bob with congestion control CC
tcp_run() {
    rm -f "$tmp/ready"
    lab exec bob -- timeout "$limit" python3 "$tools" count 5001 "$tmp/ready" >"$4" &
    wait_exists "$tmp/ready"
    lab exec alice -- timeout "$limit" python3 "$tools" send "$1" 5001 "$2" "$3" ||
        { echo "transport_compare: TCP $3 failed" >&2; exit 1; }
    wait $!
}

start_punchd() {
    rm -f "$tmp/pd.ev"
    lab exec server -- "$build/apps/punchd" --listen 198.51.100.1:3478 --events "$tmp/pd.ev" \
        2>/dev/null </dev/null &
    wait_for "$tmp/pd.ev" started || { echo "transport_compare: punchd did not start" >&2; exit 1; }
}

rate() { cut -d' ' -f2 "$1"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
# col N "a b c d;a b c d;...": the median of column N over the rounds
col() { med $(echo "$2" | awk -v c="$1" 'NF {print $c}' RS=';'); }
# stats NAME RATES CPUS TINY_CPUS BYTES WORST: a user-space transport's line, from the
# medians of the rounds (CPUS: "SEND_CPU SEND_WAIT RECV_CPU RECV_WAIT;" per
# round; TINY_CPUS the same for a transfer of 1-2 bytes: the set-up, subtracted);
# the costlier side's CPU per MiB is written to the file WORST
stats() {
    awk -v name="$1" -v r="$(med $2)" -v b="$5" -v c="$cipher" -v cm="$cipher_ms" -v ra="$2" -v worst="$6" \
        -v sc="$(col 1 "$3")" -v sw="$(col 2 "$3")" -v rc="$(col 3 "$3")" -v rw="$(col 4 "$3")" \
        -v tsc="$(col 1 "$4")" -v tsw="$(col 2 "$4")" -v trc="$(col 3 "$4")" -v trw="$(col 4 "$4")" 'BEGIN {
        mib = b / 1048576; sc = (sc - tsc) * 1000 / mib; rc = (rc - trc) * 1000 / mib
        sw = (sw - tsw) * 1000 / mib; rw = (rw - trw) * 1000 / mib; wm = sc > rc ? sc : rc
        printf "   %-14s %8.1f MB/s  %.3f of the cipher  (runs: %s B/s)\n", name, r / 1e6, r / c, ra
        printf "   %-14s CPU per MiB: sender %.2f ms, receiver %.2f ms (set-up of %.0f / %.0f ms taken off); waited for a CPU %.2f / %.2f ms\n",
            "", sc, rc, tsc * 1000, trc * 1000, sw, rw
        printf "   %-14s one core per side would carry %.1f MB/s: %.3f of the cipher alone (%.2f ms CPU per MiB)\n",
            "", (wm > 0 ? 1.048576e3 / wm : 0), (wm > 0 ? cm / wm : 0), cm
        print wm >worst }'
}
# per_packet NAME CPU_FILE SENT_FILE: CPU per data packet on each side (the
# sender's packets, exact on the lossy lab's links, where GSO is off)
per_packet() {
    awk -v name="$1" -v p="$(cut -d' ' -f1 "$3")" -v by="$(cut -d' ' -f2 "$3")" '{
        printf "   %-5s %-13s CPU per data packet: sender %.2f us, receiver %.2f us (%d packets of %.0f bytes on average)\n",
            "", name, $1 * 1e6 / p, $3 * 1e6 / p, p, by / p }' "$2"
}

# Part 1: the clean path
head -c "$bytes" /dev/zero >"$tmp/www/clean"
echo x >"$tmp/www/tiny"
lab up public >/dev/null
start_punchd
quic_servers bob
tcp=() cipher_r=() cipher_us=() punch=() pcpu="" qc=() qccpu="" qb=() qbcpu="" tiny_q="" tiny_p=""
load0=$(load)
for i in $(seq "$runs"); do
    tcp_run 192.0.2.10 "$bytes" cubic "$tmp/tcp$i" && tcp+=("$(rate "$tmp/tcp$i")")
    quic_run "c$i" 192.0.2.10 4433 bob clean && qc+=("$(rate "$tmp/qc$i.rate")")
    qccpu+="$(cat "$tmp/qc$i.cpu");"
    punch_run "$i" 192.0.2.10 "$bytes" && punch+=("$(rate "$tmp/p$i/rate")")
    pcpu+="$(cat "$tmp/p$i/cpu");"
    quic_run "b$i" 192.0.2.10 4434 bob clean && qb+=("$(rate "$tmp/qb$i.rate")")
    qbcpu+="$(cat "$tmp/qb$i.cpu");"
    "$blast" cipher 1 1152 >"$tmp/cipher$i"
    cipher_r+=("$(field seal_Bps "$tmp/cipher$i")") cipher_us+=("$(field seal_cpu_us "$tmp/cipher$i")")
    quic_run "ct$i" 192.0.2.10 4433 bob tiny
    punch_run "t$i" 192.0.2.10 1
    tiny_q+="$(cat "$tmp/qct$i.cpu");" tiny_p+="$(cat "$tmp/pt$i/cpu");"
done
load1=$(load)
lab down >/dev/null
cipher=$(med "${cipher_r[@]}")
# the cipher's CPU per MiB on one side (one seal of 1152 bytes, CPU time: what the load does not inflate)
cipher_ms=$(awk -v u="$(med "${cipher_us[@]}")" 'BEGIN {print u * 1048576 / 1152 / 1000}')
t=$(med "${tcp[@]}")
printf 'clean path, %d MiB, lab public topology (no delay, no loss), median of %d paired rounds; load average %s -> %s\n' \
    "$((bytes / 1048576))" "$runs" "$load0" "$load1"
awk -v t="$t" -v c="$cipher" -v cm="$cipher_ms" -v ta="${tcp[*]}" -v ca="${cipher_r[*]}" 'BEGIN {
    printf "   %-14s %8.1f MB/s  (runs: %s B/s)\n", "plain TCP", t / 1e6, ta
    printf "   %-14s %8.1f MB/s  (runs: %s B/s; ChaCha20-Poly1305 sealing 1152-byte datagrams, one core, no I/O; %.2f ms CPU per MiB)\n", "cipher alone", c / 1e6, ca, cm
    printf "   %-14s %8.1f MB/s  %6.3f of the cipher (computed, not measured: 1 / (1/TCP + 1/cipher))\n", "TCP + AEAD", 1 / (1 / t + 1 / c) / 1e6, 1 / (1 / t + 1 / c) / c }'
stats "punch stream" "${punch[*]}" "$pcpu" "$tiny_p" "$bytes" "$tmp/worst.punch"
stats "ngtcp2 CUBIC" "${qc[*]}" "$qccpu" "$tiny_q" "$bytes" "$tmp/worst.qc"
stats "ngtcp2 BBR" "${qb[*]}" "$qbcpu" "$tiny_q" "$bytes" "$tmp/worst.qb"
# Issue 14 asked for 0.5 of the cipher; no user-space transport reaches that
# here (docs/streams.md "Issue 14's targets"). What is held instead: a punch
# stream costs no more CPU per byte than the packaged QUIC stack, each on its
# costlier side (the rate ratio is printed too; it moves with the load).
awk -v p="$(med "${punch[@]}")" -v qc="$(med "${qc[@]}")" -v qb="$(med "${qb[@]}")" \
    -v wp="$(cat "$tmp/worst.punch")" -v wqc="$(cat "$tmp/worst.qc")" -v wqb="$(cat "$tmp/worst.qb")" 'BEGIN {
    printf "   rates: punch / ngtcp2 CUBIC = %.3f, punch / ngtcp2 BBR = %.3f (issue 14 asked: punch / cipher >= 0.5)\n",
        (qc > 0 ? p / qc : 0), (qb > 0 ? p / qb : 0)
    low = wqc < wqb ? wqc : wqb
    printf "   CPU per MiB, the costlier side: ngtcp2 (the cheaper of CUBIC and BBR) / punch = %.2f (proposed target >= 1: %s)\n",
        (wp > 0 ? low / wp : 0), (wp > 0 && low / wp >= 1 ? "HOLDS" : "MISSED") }'

# Part 2: loss and delay across two NATs
[ -n "$losses" ] || exit 0
head -c "$loss_bytes" /dev/zero >"$tmp/www/lossy"
printf 'under loss, %s KiB across two kernel NATs, %s per access link, median of %d run(s) (TCP and punch alice -> bob, ngtcp2 bob -> alice)\n' \
    "$((loss_bytes / 1024))" "$delay" "$loss_runs"
printf '   %-5s %9s %9s %9s %9s %9s %9s %9s %9s %9s\n' loss "BBR MB/s" CUBIC punch "q-BBR" "q-CUBIC" \
    punch/BBR q-BBR/BBR q-BBR/CUB q-CUB/CUB
n=0
for loss in $losses; do
    lab up different-nats --delay "$delay" --loss "$loss%" --seed $((loss + 7)) >/dev/null
    # Port forwards on nat-b: TCP 5001 and the ngtcp2 servers' UDP ports -> bob
    lab exec nat-b -- nft add rule ip punchlab nat_pre iifname wan tcp dport 5001 dnat to 10.0.2.10:5001
    lab exec nat-b -- nft add rule ip punchlab nat_pre iifname wan udp dport 4433-4434 dnat to 10.0.2.10
    lab exec nat-b -- nft insert rule ip punchlab filter_fwd ct status dnat accept
    start_punchd
    quic_servers bob
    bbr=() cubic=() punch=() qb=() qc=()
    l0=$(load)
    for _ in $(seq "$loss_runs"); do
        n=$((n + 1))
        tcp_run 192.0.2.1 "$loss_bytes" bbr "$tmp/lbbr$n" && bbr+=("$(rate "$tmp/lbbr$n")")
        quic_run "lb$n" 192.0.2.1 4434 bob lossy && qb+=("$(rate "$tmp/qlb$n.rate")")
        tcp_run 192.0.2.1 "$loss_bytes" cubic "$tmp/lcubic$n" && cubic+=("$(rate "$tmp/lcubic$n")")
        punch_run "l$n" 192.0.2.1 "$loss_bytes" && punch+=("$(rate "$tmp/pl$n/rate")")
        quic_run "lc$n" 192.0.2.1 4433 bob lossy && qc+=("$(rate "$tmp/qlc$n.rate")")
    done
    lab down >/dev/null
    awk -v l="$loss" -v b="$(med "${bbr[@]}")" -v c="$(med "${cubic[@]}")" -v p="$(med "${punch[@]}")" \
        -v qb="$(med "${qb[@]}")" -v qc="$(med "${qc[@]}")" -v ld="$l0 -> $(load)" 'BEGIN {
        printf "   %-5s %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %9.1f %9.1f  (load %s)\n", l "%", b / 1e6, c / 1e6,
            p / 1e6, qb / 1e6, qc / 1e6, (b > 0 ? p / b : 0), (b > 0 ? qb / b : 0), (c > 0 ? qb / c : 0),
            (c > 0 ? qc / c : 0), ld }'
    printf '   %-5s runs (B/s): TCP BBR %s; punch %s; ngtcp2 BBR %s\n' "" "${bbr[*]}" "${punch[*]}" "${qb[*]}"
    per_packet punch "$tmp/pl$n/cpu" "$tmp/pl$n/pkts"
    per_packet "ngtcp2 BBR" "$tmp/qlb$n.cpu" "$tmp/qlb$n.pkts"
done
echo "   targets (issue 14): X/BBR >= 0.5 at every loss level; X/CUBIC >= 1 at every level with loss, >= 0.5 at 0 % (proposed: docs/streams.md)"
