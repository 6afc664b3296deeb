#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# punch vpn's command line (SPEC.md §3): --help exits 0, usage errors exit 2
# naming the bad input, a missing TUN driver or permission exits 1 with one
# line. Nothing here creates an interface: each run stops at its error
# (the TUN cases run in a network namespace of their own besides).
. "$(dirname "$0")/lib.sh"
PUNCH=${PUNCH:?set PUNCH to the punch binary}
export XDG_CONFIG_HOME=$TMP/conf

expect() { # expect CODE PATTERN CMD...: exit code and a line of output
    local code=$1 pattern=$2; shift 2
    local out rc
    out=$("$@" 2>&1); rc=$?
    [ "$rc" = "$code" ] || { echo "$out"; fail "'$*' exited $rc, want $code"; }
    grep -qE -- "$pattern" <<<"$out" || { echo "$out"; fail "'$*' did not say /$pattern/"; }
}
v() { "$PUNCH" --server 127.0.0.1:9 vpn "$@"; }

expect 0 'vpn +listen\|connect' "$PUNCH" --help
expect 0 '^usage: punch .* vpn listen' "$PUNCH" vpn --help
expect 0 '^usage: punch .* vpn listen' "$PUNCH" vpn connect --help
expect 2 'listen or connect\?' "$PUNCH" vpn
expect 2 "'dial' is not listen or connect" "$PUNCH" vpn dial
expect 2 '--address IP/LEN is needed' v connect bob
expect 2 "which peer\? give PEER" v connect --address 10.99.0.1/24
expect 2 "unexpected argument 'carol'" v connect bob carol --address 10.99.0.1/24
expect 2 "unexpected argument 'bob'" v listen bob --address 10.99.0.1/24
expect 2 "'bad name' is not a peer name" v connect 'bad name' --address 10.99.0.1/24
expect 2 "'xyz' is not a public key" v connect bob@xyz --address 10.99.0.1/24
expect 2 "--address: '10.99.0.300/24' is not an IPv4 address" v connect bob --address 10.99.0.300/24
expect 2 "--address: '10.99.0.1' is not an IPv4 address with its prefix length" v connect bob --address 10.99.0.1
expect 2 "--address: '10.99.0.1/33' is not" v connect bob --address 10.99.0.1/33
expect 2 "--address: '10.99.0.0/24' is not a host address" v connect bob --address 10.99.0.0/24
expect 2 "--address: '10.99.0.255/24' is not a host address" v connect bob --address 10.99.0.255/24
expect 2 "--route: 'nope' is not an IPv4 network" v connect bob --address 10.99.0.1/24 --route nope
expect 2 "--route: '10.50.0.1/24' has host bits set \(the network is 10.50.0.0/24\)" \
    v connect bob --address 10.99.0.1/24 --route 10.50.0.1/24
expect 2 "--route: '127.0.0.0/8' covers the server 127.0.0.1:9" \
    v connect bob --address 10.99.0.1/24 --route 127.0.0.0/8
expect 2 "--mtu: '1281' is not 68 to 1280" v connect bob --address 10.99.0.1/24 --mtu 1281
expect 2 "--mtu: '67' is not 68 to 1280" v connect bob --address 10.99.0.1/24 --mtu 67
expect 2 "--mtu: 'big' is not" v connect bob --address 10.99.0.1/24 --mtu big
expect 2 "--dev: 'a/b' is not an interface name" v connect bob --address 10.99.0.1/24 --dev a/b
expect 2 "--dev: 'sixteen-chars-xx' is not an interface name" v connect bob --address 10.99.0.1/24 --dev sixteen-chars-xx
expect 2 "--dev: 'tun%s' is not an interface name" v connect bob --address 10.99.0.1/24 --dev 'tun%s'
expect 2 "--peer is for listen" v connect bob --peer alice --address 10.99.0.1/24
expect 2 "--peer: 'a b' is not NAME@KEY" v listen --peer 'a b' --address 10.99.0.1/24
# Who may connect (issue 12): a key for every --peer, one of the three options.
expect 2 "--peer: 'alice' has no key: give NAME@KEY" v listen --peer alice --address 10.99.0.1/24
expect 2 "--peer: 'alice@xyz': the key is not 44 characters" v listen --peer alice@xyz --address 10.99.0.1/24
expect 2 "--allowed-peers is for listen" v connect bob --allowed-peers /dev/null --address 10.99.0.1/24
expect 2 "^punch vpn listen: the tunnel needs to know who may connect: add --peer NAME@KEY or --allowed-peers FILE, or --any-peer" \
    v listen --address 10.99.0.1/24
[ "$(v listen --address 10.99.0.1/24 2>&1 | wc -l)" = 1 ] || fail "the missing allow-list is not one line"
expect 2 "--any-peer lets anyone in: not with --peer" \
    v listen --any-peer --peer "alice@AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" --address 10.99.0.1/24
printf 'alice AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n# a comment\n' >"$TMP/allowed"
expect 2 "^punch vpn listen: --allowed-peers: $TMP/allowed:2: more than a name and a key on the line" \
    v listen --allowed-peers "$TMP/allowed" --address 10.99.0.1/24
expect 1 "^punch vpn listen: --allowed-peers: cannot read $TMP/nothing: No such file" \
    v listen --allowed-peers "$TMP/nothing" --address 10.99.0.1/24
# IPv6 inside (docs/vpn.md): one address per family, routes of a family we
# have an address of, an MTU of at least 1280 (RFC 8200).
expect 2 "--address: 'fd99::1' is not an IPv6 address with its prefix length, e.g. fd99::1/64" \
    v connect bob --address fd99::1
expect 2 "--address: 'fd99:::1/64' is not an IPv6 address" v connect bob --address fd99:::1/64
expect 2 "--address: 'fd99::1/129' is not an IPv6 address" v connect bob --address fd99::1/129
expect 2 "--address: 'fd99::/64' is not a host address" v connect bob --address fd99::/64
expect 2 "--address: 'ff02::1/64' is not a host address" v connect bob --address ff02::1/64
expect 2 "--address: 'fd98::1/64' is a second IPv6 address \(give at most one IPv4 and one IPv6\)" \
    v connect bob --address fd99::1/64 --address 10.99.0.1/24 --address fd98::1/64
expect 2 "--address: '10.98.0.1/24' is a second IPv4 address" \
    v connect bob --address 10.99.0.1/24 --address 10.98.0.1/24
expect 2 "--route: 'fd50::1/64' has host bits set \(the network is fd50::/64\)" \
    v connect bob --address fd99::1/64 --route fd50::1/64
expect 2 "--route: 'fd50::/129' is not an IPv6 network NET/LEN" v connect bob --address fd99::1/64 --route fd50::/129
expect 2 "--route: 'fd50::/64' is an IPv6 network, but no IPv6 --address was given" \
    v connect bob --route fd50::/64 --address 10.99.0.1/24
expect 2 "--route: '10.50.0.0/24' is an IPv4 network, but no IPv4 --address was given" \
    v connect bob --address fd99::1/64 --route 10.50.0.0/24
expect 2 "--mtu: '1152' is under 1280, the least IPv6 allows \(RFC 8200\), and --address fd99::1/64 is IPv6" \
    v connect bob --address 10.99.0.1/24 --mtu 1152 --address fd99:0::1/64
expect 2 "--address: '::1/128' covers the server \[::1\]:9" \
    "$PUNCH" --server '[::1]:9' vpn connect bob --address ::1/128
expect 2 "--route: '::/0' covers the server \[::1\]:9" \
    "$PUNCH" --server '[::1]:9' vpn connect bob --address fd99::1/64 --route ::/0
expect 2 "--no-relay and --relay-only leave no path" v listen --no-relay --relay-only --address 10.99.0.1/24
expect 2 "--timeout: '0' is not 1 to 86400" v listen --timeout 0 --address 10.99.0.1/24
expect 2 "unknown option '--bogus'" v listen --bogus --address 10.99.0.1/24
expect 2 "--address needs a value" v listen --address
expect 2 "no server: give --server" env -u PUNCH_SERVER "$PUNCH" vpn listen --any-peer --address 10.99.0.1/24
[ ! -e "$XDG_CONFIG_HOME/punch/key" ] || fail "a usage error created a key"
pass "punch vpn: help and usage errors (exit 2, naming the bad input)"

if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null || ! command -v setpriv >/dev/null; then
    echo "SKIP (TUN errors): needs root, unshare and setpriv"
    exit 0
fi
# Without the TUN driver: /dev/net hidden in a mount namespace of our own.
expect 1 '^punch: no /dev/net/tun: ' unshare -m -n sh -c \
    'mount -t tmpfs none /dev/net && exec "$0" --server 127.0.0.1:9 vpn listen --any-peer --address 10.99.0.1/24' "$PUNCH"
# Without CAP_NET_ADMIN: as nobody.
chmod 711 "$TMP"
mkdir -m 777 "$TMP/nobody"
expect 1 "^punch: not allowed to create TUN device 'punch%d': needs CAP_NET_ADMIN" \
    unshare -n setpriv --reuid 65534 --regid 65534 --clear-groups env XDG_CONFIG_HOME="$TMP/nobody" \
    "$PUNCH" --server 127.0.0.1:9 vpn listen --any-peer --address 10.99.0.1/24
pass "punch vpn: no /dev/net/tun and no permission exit 1 with one line"
