#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# punch vpn between alice and bob behind two port-restricted cone NATs:
# ping and iperf3 (TCP and UDP) through the tunnel, over the direct path
# (dual stack: ping -6 both ways too) and through punchd's relay
# (--relay-only, IPv4 only); the MTU (a full-size packet crosses, one byte
# more is refused locally: 1280 with IPv6, 1152 without); spoofed inner
# sources, IPv4 and IPv6, dropped and counted while ones from a --route
# network pass; a packet too big for a punch datagram counted; SIGTERM
# removes the interface, exit 0.
. "$(dirname "$0")/lib.sh"
command -v iperf3 >/dev/null || { echo "SKIP: no iperf3 (scripts/setup installs it)"; exit 77; }
B=${PUNCH_BUILD_DIR:?}
PUNCH=$B/apps/punch PUNCHD=$B/apps/punchd
A_IP=10.99.0.1 B_IP=10.99.0.2
A_IP6=fd99::1 B_IP6=fd99::2

# lab_bg ...: like lab, for `lab_bg exec NODE -- CMD &`: the subshell becomes
# CMD (punch-lab and ip netns exec exec too), so $! is CMD's own PID.
lab_bg() { exec "$PUNCH_LAB" --prefix "$TEST_PREFIX" "$@"; }
# wait_grep FILE REGEX [SECONDS]: bounded poll until a line of FILE matches.
wait_grep() {
    local i
    for ((i = 0; i < ${3:-10} * 100; i++)); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.01; done
    fail "timed out waiting for /$2/ in $1: $(tail -3 "$1" 2>/dev/null)"
}
# counter SIDE NAME: NAME from SIDE's latest counters event (asked with SIGUSR1).
counter() {
    local pid n i
    pid=$([ "$1" = alice ] && echo "$ALICE" || echo "$BOB")
    n=$(grep -c '"event":"counters"' "$D/$1.ev" || true)
    kill -USR1 "$pid"
    for ((i = 0; i < 500; i++)); do
        [ "$(grep -c '"event":"counters"' "$D/$1.ev")" -gt "$n" ] && break; sleep 0.01
    done
    grep '"event":"counters"' "$D/$1.ev" | tail -1 | grep -o "\"$2\":[0-9]*" | cut -d: -f2
}
# path_of SIDE: kind/technique of SIDE's last path event.
path_of() {
    local last; last=$(grep '"event":"path"' "$D/$1.ev" | tail -1)
    echo "$(grep -o '"kind":"[^"]*"' <<<"$last" | cut -d'"' -f4)/$(grep -o '"technique":"[^"]*"' <<<"$last" | cut -d'"' -f4)"
}
# iperf_run NAME CLIENT-ARGS...: one iperf3 test alice -> bob through the
# tunnel; prints the receiver's "bits_per_second lost_percent".
iperf_run() {
    local name=$1; shift
    lab exec bob -- iperf3 -s -1 -B $B_IP -J >"$D/$name.server" 2>&1 &
    local srv=$! i
    for ((i = 0; i < 500; i++)); do
        lab exec bob -- ss -Hltn "sport = :5201" | grep -q . && break; sleep 0.01
    done
    lab exec alice -- timeout 30 iperf3 -c $B_IP -J "$@" >"$D/$name.json" 2>"$D/$name.err" ||
        fail "$name: iperf3 failed: $(cat "$D/$name.err") $(head -c 400 "$D/$name.json")"
    wait "$srv" || true
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["end"]["sum_received"]
print(int(r["bits_per_second"]), r.get("lost_percent", 0))' "$D/$name.json"
}

# vpn_up CASE v4|dual [PUNCH-OPTIONS...]: the lab, punchd, bob listening
# (the network 10.50.0.0/24, and with dual fd50::/64, is behind alice for
# him), alice connected; returns once both know the other's tunnel
# addresses.
vpn_up() {
    D=$TMP/$1
    local b6=() a6=() want6=
    if [ "$2" = dual ]; then
        b6=(--address $B_IP6/64 --route fd50::/64) a6=(--address $A_IP6/64)
        want6=',"address6":"fd99::[12]/64"'
    fi
    shift 2
    mkdir -p "$D"
    lab up different-nats --nat-a port-restricted-cone --nat-b port-restricted-cone >/dev/null
    lab exec server -- "$PUNCHD" --listen 198.51.100.1:3478 --key "$D/server.key" \
        --events "$D/punchd.ev" 2>/dev/null </dev/null &
    wait_for "$D/punchd.ev"
    lab_bg exec bob -- env XDG_CONFIG_HOME="$D/bob" "$PUNCH" --server 198.51.100.1 --name bob \
        --events "$D/bob.ev" vpn listen --any-peer --address $B_IP/24 --route 10.50.0.0/24 "${b6[@]}" --dev pvpn0 "$@" \
        </dev/null >/dev/null 2>"$D/bob.err" &
    BOB=$!
    wait_grep "$D/bob.ev" '"event":"registered"'
    lab_bg exec alice -- env XDG_CONFIG_HOME="$D/alice" "$PUNCH" --server 198.51.100.1 --name alice \
        --events "$D/alice.ev" vpn connect bob --address $A_IP/24 "${a6[@]}" --dev pvpn0 "$@" \
        </dev/null >/dev/null 2>"$D/alice.err" &
    ALICE=$!
    wait_grep "$D/alice.ev" '"event":"vpn-peer".*"address":"10.99.0.2/24"'"$want6"
    wait_grep "$D/bob.ev" '"event":"vpn-peer".*"address":"10.99.0.1/24"'"$want6"
}

# ping_ok FROM TO [PING-OPTIONS...]: five pings, all answered.
ping_ok() {
    lab exec "$1" -- ping -q -c 5 -i 0.2 -W 2 "${@:3}" "$2" >"$D/ping" 2>&1 ||
        fail "$1 -> $2: ping failed: $(cat "$D/ping")"
    grep -q ' 5 received' "$D/ping" || fail "$1 -> $2: $(grep received "$D/ping")"
}

# through CASE MIN_TCP_BPS UDP_RATE: ping both ways, iperf3 TCP and UDP.
through() {
    ping_ok alice $B_IP
    ping_ok bob $A_IP
    local tcp udp bps lost
    tcp=$(iperf_run "$1-tcp" -t 2)
    [ "${tcp% *}" -ge "$2" ] || fail "$1: iperf3 TCP through the tunnel: ${tcp% *} bit/s, want >= $2"
    # Datagrams of 1124 bytes: 1152-byte packets, the MTU of an IPv4-only tunnel.
    udp=$(iperf_run "$1-udp" -u -b "$3" -l 1124 -t 2)
    bps=${udp% *} lost=${udp#* }
    awk -v l="$lost" 'BEGIN { exit !(l < 5) }' || fail "$1: iperf3 UDP at $3 lost $lost %"
    [ "$bps" -gt 0 ] || fail "$1: iperf3 UDP delivered nothing"
    ok "$1: ping both ways; iperf3 TCP $((${tcp% *} / 1000)) kbit/s, UDP at $3: $((bps / 1000)) kbit/s, $lost % lost"
}

# stop: SIGTERM to both; each exits 0 and its interface is gone.
stop() {
    local rc side pid
    for side in alice bob; do
        pid=$([ $side = alice ] && echo "$ALICE" || echo "$BOB")
        kill -TERM "$pid"
        rc=0; wait "$pid" || rc=$?
        [ "$rc" = 0 ] || fail "$side: punch vpn exited $rc on SIGTERM: $(tail -2 "$D/$side.err")"
        lab exec $side -- ip link show pvpn0 >/dev/null 2>&1 && fail "$side: pvpn0 still there after SIGTERM"
        grep -q '"event":"stopped"' "$D/$side.ev" || fail "$side: no stopped event"
    done
    lab down >/dev/null
}

# mtu_ok MTU [-6]: a packet of MTU bytes crosses alice -> bob whole (DF),
# one byte more is refused before it leaves alice.
mtu_ok() {
    local dst=$B_IP hdr=28
    [ "${2:-}" = -6 ] && dst=$B_IP6 hdr=48
    lab exec alice -- ping ${2:-} -q -c 2 -i 0.2 -W 2 -M do -s $(($1 - hdr)) $dst >"$D/ping" 2>&1 ||
        fail "a $1-byte packet to $dst did not cross: $(cat "$D/ping")"
    if lab exec alice -- ping ${2:-} -c 1 -W 1 -M do -s $(($1 - hdr + 1)) $dst >"$D/ping" 2>&1; then
        fail "a $(($1 + 1))-byte packet with DF crossed a $1-byte MTU"
    fi
    grep -qi 'message too long\|mtu' "$D/ping" || fail "$(($1 + 1)) bytes to $dst: $(cat "$D/ping")"
}

# ---- direct, dual stack ----
vpn_up direct dual
# Data flows through the relay at once; the direct path follows.
wait_grep "$D/alice.ev" '"event":"path".*"kind":"direct"'
wait_grep "$D/bob.ev" '"event":"path".*"kind":"direct"'
[ "$(path_of alice)" = direct/hole-punch ] || [ "$(path_of alice)" = direct/peer-reflexive ] ||
    fail "direct: alice is on $(path_of alice)"
[ "$(path_of bob)" = direct/hole-punch ] || [ "$(path_of bob)" = direct/peer-reflexive ] ||
    fail "direct: bob is on $(path_of bob)"
through direct 10000000 20M
ping_ok alice $B_IP6 -6
ping_ok bob $A_IP6 -6
ok "direct: ping -6 both ways ($A_IP6 <-> $B_IP6)"

# udp_logger AF ADDR READY LOG: on bob, a UDP server on ADDR:7000 writing
# "SOURCE TEXT" for each datagram to LOG; READY once it listens.
udp_logger() {
    lab exec bob -- python3 -c '
import socket, sys
s = socket.socket(getattr(socket, sys.argv[1]), socket.SOCK_DGRAM)
s.bind((sys.argv[2], 7000))
open(sys.argv[3], "w").write("ready\n")
while True:
    data, src = s.recvfrom(2048)
    with open(sys.argv[4], "a") as f:
        f.write("%s %s\n" % (src[0], data.decode()))
' "$1" "$2" "$3" "$4" </dev/null >/dev/null 2>&1 &
    wait_for "$3"
}

# MTU 1280 (IPv6's least) for both families: full-size packets cross whole.
mtu_ok 1280
mtu_ok 1280 -6
ok "MTU 1280 with IPv6: full-size IPv4 and IPv6 packets cross, one byte more is refused locally"

# Spoofed IPv6 sources: alice's kernel sends from a second address of the
# tunnel's network, and from one of the network behind her (bob's --route).
lab exec alice -- ip addr add fd99::77/64 dev pvpn0 nodad
lab exec alice -- ip addr add fd50::5/128 dev pvpn0 nodad
udp_logger AF_INET6 fd99::2 "$D/rx6.ready" "$D/rx6.log"
before6=$(counter bob dropped_peer_ipv6_source)
lab exec alice -- python3 -c '
import socket
for src, text in (("fd99::77", "spoofed"), ("fd50::5", "routed"), ("fd99::1", "legit")):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind((src, 0))
    s.sendto(text.encode(), ("fd99::2", 7000))
'
wait_grep "$D/rx6.log" '^fd99::1 legit$'
wait_grep "$D/rx6.log" '^fd50::5 routed$'
grep -q spoofed "$D/rx6.log" && fail "the spoofed IPv6 packet reached bob: $(cat "$D/rx6.log")"
after6=$(counter bob dropped_peer_ipv6_source)
[ "$after6" = $((before6 + 1)) ] || fail "dropped_peer_ipv6_source went from $before6 to $after6, want +1"
lab exec alice -- ip addr del fd99::77/64 dev pvpn0
ok "spoofed IPv6 source fd99::77 dropped and counted; fd50::5 (bob's --route) and alice's own address pass"

# Spoofed inner sources: alice's punch carries whatever her kernel routes
# into the tunnel; bob takes only alice's address and his --route network.
udp_logger AF_INET 10.99.0.2 "$D/rx.ready" "$D/rx.log"
before=$(counter bob dropped_peer_source)
lab exec alice -- python3 -c '
import socket, struct
def packet(src, text):
    data = text.encode()
    udp = struct.pack("!HHHH", 5000, 7000, 8 + len(data), 0) + data
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton("10.99.0.2"))
    return ip + udp  # the kernel fills in the header checksum
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
raw.sendto(packet("10.99.0.77", "spoofed"), ("10.99.0.2", 0))
raw.sendto(packet("10.50.0.5", "routed"), ("10.99.0.2", 0))
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"legit", ("10.99.0.2", 7000))
'
wait_grep "$D/rx.log" '^10.99.0.1 legit$'
wait_grep "$D/rx.log" '^10.50.0.5 routed$'
grep -q spoofed "$D/rx.log" && fail "the spoofed packet reached bob: $(cat "$D/rx.log")"
after=$(counter bob dropped_peer_source)
[ "$after" = $((before + 1)) ] || fail "dropped_peer_source went from $before to $after, want +1"
ok "spoofed source 10.99.0.77 dropped and counted; 10.50.0.5 (bob's --route) and alice's own address pass"

# A packet bigger than a punch datagram (someone raised the MTU): counted.
lab exec alice -- ip link set dev pvpn0 mtu 1400
lab exec alice -- ping -c 1 -W 1 -s 1300 $B_IP >/dev/null 2>&1 && fail "a 1328-byte packet crossed"
[ "$(counter alice dropped_tun_oversize)" -ge 1 ] || fail "oversized packet not counted"
lab exec alice -- ip link set dev pvpn0 mtu 1280
ok "a 1328-byte packet from the TUN is dropped and counted (dropped_tun_oversize)"

# A second peer while alice holds the tunnel (bob listens with --any-peer):
# refused and counted; alice's tunnel goes on.
lab_bg exec alice -- env XDG_CONFIG_HOME="$D/carol" "$PUNCH" --server 198.51.100.1 --name carol \
    --events "$D/carol.ev" vpn connect bob --address 10.99.0.3/24 --dev pvpn1 \
    </dev/null >/dev/null 2>"$D/carol.err" &
carol=$!
wait_grep "$D/bob.err" 'refusing carol: not the key of the peer that holds the tunnel'
# At least one: carol asks again after a refusal (and copies of her CONNECT
# may each be refused), so a second refusal may be counted before we ask.
n=$(counter bob refused_peers)
[ "$n" -ge 1 ] || fail "carol's refusal was not counted (refused_peers $n)"
kill -TERM $carol; wait $carol || true
ping_ok alice $B_IP
ok "a second peer (carol) is refused while alice holds the tunnel; alice's goes on"
stop

# ---- through the relay (punchd's default quotas: 256 KiB/s a session), IPv4 only ----
vpn_up relay v4 --relay-only
[ "$(path_of alice)/$(path_of bob)" = relay/relay/relay/relay ] ||
    fail "relay: alice on $(path_of alice), bob on $(path_of bob)"
through relay 200000 1M
mtu_ok 1152
lab exec alice -- ping -6 -c 1 -W 1 $B_IP6 >/dev/null 2>&1 && fail "IPv6 crossed an IPv4-only tunnel"
ok "IPv4 only: MTU 1152, a full-size packet crosses, one byte more is refused locally; no IPv6"
stop
