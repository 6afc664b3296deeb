# SPDX-License-Identifier: MIT
# IPv6 beside IPv4 in the lab (issue 16), sourced by punch-lab: with
# `--stack-a/--stack-b dual|v4|v6` (different-nats, kernel backend), the
# core routers, the server and the chosen sites speak IPv6 too, from the
# documentation prefix 2001:db8::/32, routed hop by hop as IPv4 is:
#   routers  r1-r2 2001:db8:ff:12::/64 (::1 r1, ::2 r2), r1-r3 ...:ff:13::/64,
#            r2-r3 ...:ff:23::/64 (r3 is ::3)
#   server   2001:db8:5::1/64 (r3 2001:db8:5::fe)
#   side A   2001:db8:a::/48: nat-a's wan 2001:db8:a:ff::1/64 (r1 ::fe), its
#            LAN 2001:db8:a:1::/64 (nat-a ::1, alice ::10); side B 2001:db8:b::/48
# A home router does not translate IPv6: it is a stateful firewall (RFC
# 6092 §3.2: inbound only what belongs to a flow its LAN started), table
# `ip6 punchlab6` beside the NAT's `ip punchlab`. With stack nptv6 it
# translates the LAN's prefix too (NPTv6, RFC 6296): 2001:db8:a:1::/64 is
# 2001:db8:a:100::/64 on the wan (inside the site's routed /48), the
# interface identifier kept, by nftables' prefix NAT (`snat ip6 prefix to`,
# `dnat ip6 prefix to`; conntrack's, so stateful where RFC 6296 is not,
# which the firewall's policy makes no difference to). A v6 host has its IPv4
# address taken away; a v4 host never gets IPv6. No duplicate address
# detection: a tentative address is unusable for a second or two.
# With stack nat64 the host is IPv6-only too and its router a NAT64 (RFC
# 6146) as an IPv6-only ISP runs one: Debian's tayga (user space, on a TUN
# `nat64`) translates the network-specific prefix 2001:db8:64::/96 (RFC
# 6052 §2.2; 2001:db8:64::/64 with punch-lab --nat64-prefix) to IPv4,
# each LAN host getting an address of 192.168.255.0/24 (its dynamic
# pool), and the router's NAT (table `ip
# punchlab`, of the site's preset) maps those as it maps the LAN's, so
# hole punching meets a NAT of that preset. Not the well-known prefix
# 64:ff9b::/96: RFC 6052 §3.1 keeps it to global IPv4 addresses, and tayga
# refuses the lab's documentation ranges under it. No DNS64 (the lab has
# no DNS): punch is told the prefix (--nat64-prefix). jool, the kernel's
# NAT64, needs its module (jool-dkms), which this machine's kernel (no
# /lib/modules for it) cannot build or load.

# v6_on NODE: IPv6 on (add_node turned it off), forwarding on routers and NATs.
v6_on() {
    local kind
    kind=$(awk -v n="$1" '$1 == n { print $2 }' "$(state)/nodes")
    # no duplicate detection, on link-local addresses either: until it is
    # over, neighbour discovery with the router does not work
    nsx "$1" sh -c 'for f in /proc/sys/net/ipv6/conf/*/accept_dad; do echo 0 >"$f"; done'
    nsx "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0
    if [ "$kind" = router ] || [ "$kind" = nat ]; then
        nsx "$1" sysctl -qw net.ipv6.conf.all.forwarding=1
    fi
}

# v6_addr NODE IF ADDR/LEN
v6_addr() {
    nsx "$1" ip -6 addr add "$3" dev "$2" nodad
    record_addr "$1" "${3%/*}"
}

v6_core() {
    local n
    for n in r1 r2 r3 server; do v6_on "$n"; done
    v6_addr r1 r2 2001:db8:ff:12::1/64; v6_addr r2 r1 2001:db8:ff:12::2/64
    v6_addr r1 r3 2001:db8:ff:13::1/64; v6_addr r3 r1 2001:db8:ff:13::3/64
    v6_addr r2 r3 2001:db8:ff:23::2/64; v6_addr r3 r2 2001:db8:ff:23::3/64
    v6_addr r3 server 2001:db8:5::fe/64; v6_addr server eth0 2001:db8:5::1/64
    route server default via 2001:db8:5::fe
    route r1 2001:db8:b::/48 via 2001:db8:ff:12::2; route r1 2001:db8:5::/64 via 2001:db8:ff:13::3
    route r2 2001:db8:a::/48 via 2001:db8:ff:12::1; route r2 2001:db8:5::/64 via 2001:db8:ff:23::3
    route r3 2001:db8:a::/48 via 2001:db8:ff:13::1; route r3 2001:db8:b::/48 via 2001:db8:ff:23::2
}

# npt_rules SITE: the NPTv6 chains of table punchlab6 (stack nptv6)
npt_rules() {
    local p=2001:db8:$1
    printf '%s\n' "  chain npt_out { type nat hook postrouting priority srcnat; policy accept;
oifname \"wan\" ip6 saddr $p:1::/64 snat ip6 prefix to $p:100::/64
  }
  chain npt_in { type nat hook prerouting priority dstnat; policy accept;
iifname \"wan\" ip6 daddr $p:100::/64 dnat ip6 prefix to $p:1::/64
  }"
}

# The server's 198.51.100.1 under NAT64_PREFIX (RFC 6052 §2.2): the /64
# steps over bits 64-71, the u-octet.
nat64_server() {
    case $NAT64_PREFIX in
    2001:db8:64::/96) echo 2001:db8:64::198.51.100.1 ;;
    2001:db8:64::/64) echo 2001:db8:64:0:c6:3364:100:0 ;;
    *) die "no NAT64 prefix '$NAT64_PREFIX'" ;;
    esac
}

# nat64_on NAT SITE HOST: tayga on NAT (stack nat64), translating
# NAT64_PREFIX, ready when HOST pings the server's IPv4 address through it.
nat64_on() {
    local nat=$1 site=$2 host=$3 st i
    st=$(state)
    command -v tayga >/dev/null || die "--stack nat64 needs tayga (scripts/setup installs it)"
    mkdir -p "$st/tayga-$nat"
    # tayga's own IPv6 address (its ICMP errors), outside the prefix
    printf '%s\n' "tun-device nat64" "ipv4-addr 192.168.255.1" "ipv6-addr 2001:db8:$site:64::1" \
        "prefix $NAT64_PREFIX" "dynamic-pool 192.168.255.0/24" "data-dir $st/tayga-$nat" \
        >"$st/tayga-$nat.conf"
    nsx "$nat" tayga -c "$st/tayga-$nat.conf" --mktun >/dev/null 2>&1 ||
        die "tayga could not make its TUN at $nat"
    nsx "$nat" ip link set nat64 up
    nsx "$nat" ip route add 192.168.255.0/24 dev nat64
    nsx "$nat" ip -6 route add "$NAT64_PREFIX" dev nat64
    nsx "$nat" ip -6 route add "2001:db8:$site:64::1" dev nat64
    nsx "$nat" nft add rule ip punchlab filter_fwd iifname "nat64" oifname "wan" accept
    local log=$st/logs/tayga-$nat.log
    setsid ip netns exec "$(ns "$nat")" tayga -c "$st/tayga-$nat.conf" --nodetach \
        </dev/null >>"$log" 2>&1 &
    echo $! >"$st/pids/tayga-$nat.pid"
    for ((i = 0; i < 50; i++)); do
        nsx "$host" ping -6 -c1 -W1 -q "$(nat64_server)" >/dev/null 2>&1 && return 0
        alive "$(cat "$st/pids/tayga-$nat.pid")" || die "tayga at $nat died: $(tail -1 "$log")"
        sleep 0.1
    done
    die "$host reaches nothing through tayga at $nat (see $log)"
}

# v6_site NAT ROUTER SITE(a|b) HOST STACK(dual|v4|v6|nptv6|nat64)
v6_site() {
    local nat=$1 r=$2 site=$3 host=$4 stack=$5
    [ "$stack" != v4 ] || return 0
    local p=2001:db8:$site
    v6_on "$nat"; v6_on "$host"
    v6_addr "$nat" wan "$p:ff::1/64"; v6_addr "$r" "$nat" "$p:ff::fe/64"
    route "$r" "$p::/48" via "$p:ff::1"
    route "$nat" default via "$p:ff::fe"
    v6_addr "$nat" lan "$p:1::1/64"
    v6_addr "$host" eth0 "$p:1::10/64"
    route "$host" default via "$p:1::1"
    { printf '%s\n' "table ip6 punchlab6 {
  chain filter_fwd { type filter hook forward priority filter; policy drop;
ct state established,related accept
iifname \"lan\" accept
  }"
      [ "$stack" != nptv6 ] || npt_rules "$site"
      echo "}"; } >"$(state)/nft6-$nat.conf"
    nsx "$nat" nft -f "$(state)/nft6-$nat.conf" || { cat -n "$(state)/nft6-$nat.conf" >&2; false; }
    if [ "$stack" = v6 ] || [ "$stack" = nat64 ]; then
        nsx "$host" ip -4 route flush dev eth0
        nsx "$host" ip -4 addr flush dev eth0
        sed -i "/^$host [0-9.]*\$/d" "$(state)/addrs"
    fi
    [ "$stack" != nat64 ] || nat64_on "$nat" "$site" "$host"
}

# After the sites are built: the stacks asked for (different-nats only).
build_ipv6() {
    [ "$STACK_A$STACK_B" != v4v4 ] || return 0
    [ "$TOPO" = different-nats ] || die "--stack-a/-b need the different-nats topology"
    [ "$BACKEND" = kernel ] || die "--stack-a/-b need the kernel backend (punch-nat does IPv4 only)"
    v6_core
    v6_site nat-a r1 a alice "$STACK_A"
    v6_site nat-b r2 b bob "$STACK_B"
}
