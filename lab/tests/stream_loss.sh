#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Streams under random loss and delay (issue 14): STREAM_LOSS_SIZE bytes
# (64 MiB) from /dev/urandom through `punch connect` -> `punch listen` across
# two kernel NATs, 10 ms and 5 % loss on every access link (RTT 40 ms, about
# 10 % loss each way between the peers), byte for byte (sha256), and Linux
# TCP with BBR across the same NATs (a port forward on nat-b) in the same
# run. Asserts punch's goodput is at least STREAM_LOSS_FLOOR (0.3) of BBR's,
# in one run: a regression floor below what the loss repair under SCTP gives
# (src/stream/repair.c; 0.79-2.2 measured at 64 MiB, docs/streams.md), and
# far above what SCTP gave alone (0.02-0.05: its loss-based congestion
# control read the random loss as congestion) or with usrsctp's 512-chunk
# queue cap (0.2-0.46). Prints the ratio, whether the issue's target (0.5)
# held in this run, and each side's repair counters with the sender's SCTP
# timeouts and window restarts (docs/streams.md: a slow run is one where
# SCTP's T3-rtx timer cut the window and left ssthresh at a few packets).
. "$(dirname "$0")/lib.sh"
B=${PUNCH_BUILD_DIR:?}
PUNCH=$B/apps/punch PUNCHD=$B/apps/punchd
TOOLS=$(cd "$(dirname "$0")/../../bench" && pwd)/stream_tools.py
SIZE=${STREAM_LOSS_SIZE:-67108864}
FLOOR=${STREAM_LOSS_FLOOR:-0.3}
# wait_grep FILE REGEX SECONDS
wait_grep() { local i; for ((i = 0; i < $3 * 40; i++)); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.025; done; return 1; }
head -c "$SIZE" /dev/urandom >"$TMP/a.bin"
want=$(sha256sum <"$TMP/a.bin")

lab up different-nats --delay 10ms --loss 5% >/dev/null
lab exec nat-b -- nft add rule ip punchlab nat_pre iifname wan tcp dport 5001 dnat to 10.0.2.10:5001
lab exec nat-b -- nft insert rule ip punchlab filter_fwd ct status dnat accept
lab exec server -- "$PUNCHD" --listen 198.51.100.1:3478 --events "$TMP/punchd.ev" 2>/dev/null </dev/null &
wait_for "$TMP/punchd.ev"

# TCP BBR: timed by the receiver, from its first byte to the end.
lab exec bob -- timeout 150 python3 "$TOOLS" count 5001 "$TMP/ready" >"$TMP/bbr" &
tcp=$!
for ((i = 0; i < 400; i++)); do [ -e "$TMP/ready" ] && break; sleep 0.025; done
lab exec alice -- timeout 150 python3 "$TOOLS" send 192.0.2.1 5001 "$SIZE" bbr || fail "TCP BBR did not finish"
wait "$tcp" || fail "TCP receiver failed"
read -r got bbr_bps <"$TMP/bbr"
[ "$got" = "$SIZE" ] || fail "TCP BBR delivered $got of $SIZE bytes"

# punch: the same size, timed by the same receiver, written out for sha256.
# The counters that tell a slow run from a fast one: each side's repairs,
# and the sender's SCTP timeouts and retransmissions.
side_counters() {
    grep '"event":"counters"' "$1" | tail -1 |
        grep -oE '"(repair_[a-z_]*|timeouts|retransmits|fast_retransmits|window_probe[a-z_]*|window_restarts|sacks_out|queue_overflows)":[0-9]*' | tr '\n' ' '
}
mbps() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1e6 }'; }
# punch_run N: one transfer through punch, between peers of their own
# (bobN, aliceN); sets ratio and counters.
punch_run() {
    rm -f "$TMP/alice.ev" "$TMP/bob.ev"
    lab exec bob -- env XDG_CONFIG_HOME="$TMP/bob$1" timeout 150 "$PUNCH" --server 198.51.100.1 \
        --name "bob$1" --events "$TMP/bob.ev" listen </dev/null 2>"$TMP/bob.err" |
        tee "$TMP/bob.out" | python3 "$TOOLS" count >"$TMP/punch" &
    bob=$!
    wait_grep "$TMP/bob.ev" registered 10 || fail "bob did not register: $(cat "$TMP/bob.err")"
    lab exec alice -- env XDG_CONFIG_HOME="$TMP/alice$1" timeout 150 "$PUNCH" --server 198.51.100.1 \
        --name "alice$1" --events "$TMP/alice.ev" connect "bob$1" <"$TMP/a.bin" >/dev/null 2>"$TMP/alice.err" ||
        fail "punch connect failed (run $1): $(tail -3 "$TMP/alice.err")"
    wait "$bob" || fail "punch listen failed (run $1): $(tail -3 "$TMP/bob.err")"
    [ "$(sha256sum <"$TMP/bob.out")" = "$want" ] ||
        fail "bob's copy differs (run $1, $(stat -c %s "$TMP/bob.out") bytes)"
    read -r _ punch_bps <"$TMP/punch"
    counters="alice: $(side_counters "$TMP/alice.ev"); bob: $(side_counters "$TMP/bob.ev")"
    ratio=$(awk -v p="$punch_bps" -v b="$bbr_bps" 'BEGIN { printf "%.2f", p / b }')
}
above_floor() { awk -v r="$ratio" -v f="$FLOOR" 'BEGIN { exit !(r >= f) }'; }
# One run: the slow mode (1.5-2.4 MB/s, 60-90 T3-rtx timeouts; 1 run in
# 10-15 in CI, 8 in 27 at load 10-17) was a T3-rtx timeout that cut the
# window, with ssthresh at a few packets, and one packet per round trip of
# growth for the rest of the transfer; such a cut is started over in slow
# start while the peer's repair conceals the losses (stream.c
# restart_cut_windows, "window_restarts"; docs/streams.md "The second slow
# mode, under load").
punch_run 1
above_floor ||
    fail "punch $(mbps "$punch_bps") MB/s is $ratio of TCP BBR's $(mbps "$bbr_bps") MB/s, under the floor $FLOOR; $counters"
ok "$SIZE bytes through 5 % loss and 10 ms per access link, sha256 equal: punch $(mbps "$punch_bps") MB/s, TCP BBR $(mbps "$bbr_bps") MB/s, ratio $ratio (floor $FLOOR; issue 14's target 0.5 $(awk -v r="$ratio" 'BEGIN { print (r >= 0.5) ? "met" : "NOT met" }') in this run); $counters"
