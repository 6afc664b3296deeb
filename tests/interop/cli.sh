#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The command-line contract of SPEC.md §3: --help and --version exit 0,
# usage errors exit 2 naming the bad input, failures exit 1 with one line.
. "$(dirname "$0")/lib.sh"
PUNCH=${PUNCH:?set PUNCH to the punch binary}

expect() { # expect CODE PATTERN CMD...: exit code and a line of output
    local code=$1 pattern=$2; shift 2
    local out rc
    out=$("$@" 2>&1); rc=$?
    [ "$rc" = "$code" ] || { echo "$out"; fail "'$*' exited $rc, want $code"; }
    grep -qE -- "$pattern" <<<"$out" || { echo "$out"; fail "'$*' did not say /$pattern/"; }
}

expect 0 '^usage: punchd' "$PUNCHD" --help
expect 0 '^punchd [0-9]+\.[0-9]+\.[0-9]+$' "$PUNCHD" --version
expect 2 "--listen: 'nope:1' is not an address" "$PUNCHD" --listen nope:1
expect 2 "--listen: '1.2.3.4:99999' is not an address" "$PUNCHD" --listen 1.2.3.4:99999
expect 2 "unknown option '--bogus'" "$PUNCHD" --bogus
expect 2 "--events needs a value" "$PUNCHD" --events
expect 2 "--rate-limit: 'x' is not a number" "$PUNCHD" --rate-limit x
expect 2 "--log-level: 'loud'" "$PUNCHD" --log-level loud
expect 2 "--alt needs a concrete --listen address of its family, not '0.0.0.0:3478'" "$PUNCHD" --alt 127.0.0.2
expect 2 "--alt '127.0.0.2' has no --listen address of the same family" "$PUNCHD" --listen '[::1]:0' --alt 127.0.0.2
expect 2 "--alt: '127.0.0.2:5' is not a local IP address" "$PUNCHD" --alt 127.0.0.2:5
expect 2 "--listen: at most 8 addresses \('127.0.0.9:0' is one too many\)" "$PUNCHD" \
    $(for i in 1 2 3 4 5 6 7 8 9; do echo --listen 127.0.0.$i:0; done)
expect 2 "--metrics: '127.0.0.1' is not an address with a port" "$PUNCHD" --metrics 127.0.0.1
# 192.0.2.1 (TEST-NET-1) is not an address of this machine: bind fails.
expect 1 '^([0-9TZ:.-]+ )?punchd: cannot listen on 192.0.2.1:3478: ' "$PUNCHD" --listen 192.0.2.1:3478
expect 1 "cannot open events file '/nonexistent/dir/ev'" "$PUNCHD" --listen 127.0.0.1:0 --events /nonexistent/dir/ev
pass "punchd: help, version, usage errors and failures"

expect 0 '^usage: punch ' "$PUNCH" --help
expect 0 'keygen' "$PUNCH" --help
expect 0 '^punch [0-9]+\.[0-9]+\.[0-9]+$' "$PUNCH" --version
expect 2 "'frobnicate' is not a command" "$PUNCH" frobnicate
expect 2 '^usage: punch' "$PUNCH"
expect 2 "unknown option '--bogus'" "$PUNCH" --bogus keygen
expect 0 '^usage: punch keygen' "$PUNCH" keygen --help
expect 2 "^punch: --name: 'bob smith' is not a name \\(1 to 63 printable" "$PUNCH" --name 'bob smith' listen
# --nat64-prefix: RFC 6052's lengths only, u-octet and bits past the length zero
expect 2 "^punch: --nat64-prefix: '2001:db8::/33': the length is not 32, 40, 48, 56, 64 or 96" \
    "$PUNCH" --nat64-prefix 2001:db8::/33 keygen --public /dev/null
expect 2 "^punch: --nat64-prefix: '2001:db8:0:0:100::/96': bits 64-71 \\(the u-octet\\) are not zero" \
    "$PUNCH" --nat64-prefix 2001:db8:0:0:100::/96 keygen --public /dev/null
expect 2 "^punch: --nat64-prefix: '2001:db8:1::/32': bits are set beyond the prefix length" \
    "$PUNCH" --nat64-prefix 2001:db8:1::/32 keygen --public /dev/null
expect 2 "--allow-forward: '$(seq -s, 1 17)' names more than 16 ports" \
    "$PUNCH" listen --allow-forward "$(seq -s, 1 17)" --any-peer

# keygen: a 0600 key, its public key on stdout, never overwritten by accident.
key="$TMP/conf/punch/key"
pub=$(XDG_CONFIG_HOME="$TMP/conf" "$PUNCH" keygen) || fail "keygen failed"
[[ "$pub" =~ ^[A-Za-z0-9+/]{43}=$ ]] || fail "keygen printed '$pub', not a base64 key"
[ "$(stat -c %a "$key")" = 600 ] || fail "key mode is $(stat -c %a "$key"), want 600"
[ "$(stat -c %a "$(dirname "$key")")" = 700 ] || fail "key folder is not 0700"
before=$(cat "$key")
expect 1 'already holds a key; use --force' env XDG_CONFIG_HOME="$TMP/conf" "$PUNCH" keygen
[ "$(cat "$key")" = "$before" ] || fail "keygen replaced an existing key without --force"
pub2=$("$PUNCH" --key "$key" keygen --force) || fail "keygen --force failed"
[ "$pub2" != "$pub" ] && [ "$(cat "$key")" != "$before" ] || fail "keygen --force did not make a new key"
[ ! -e "$key.new" ] || fail "keygen left $key.new behind"
[ "$("$PUNCH" --key "$key" keygen --public)" = "$pub2" ] || fail "keygen --public did not print the key's public key"
[ "$(cat "$key")" != "$before" ] && [ "$("$PUNCH" keygen --public "$key")" = "$pub2" ] || fail "keygen --public FILE"
expect 1 "cannot read $TMP/none: No such file" "$PUNCH" keygen --public "$TMP/none"
[ ! -e "$TMP/none" ] || fail "keygen --public made a key"
expect 2 "--public makes nothing: not with --force" "$PUNCH" keygen --public --force "$key"
pass "punch: help, version, usage errors, keygen ($pub2), keygen --public"

# A key others may read is refused, as ssh does, by punch and punchd: one
# line naming the file and the fix; nothing starts (issue 12, finding 9).
for mode in 644 640 604 660 666; do
    chmod $mode "$key"
    expect 1 "^punch: $key may be read or written by others \(mode 0$mode\): refusing to use it; run chmod 600 $key\$" \
        "$PUNCH" --key "$key" --server 127.0.0.1:9 --name a listen
    out=$("$PUNCH" --key "$key" --server 127.0.0.1:9 --name a listen 2>&1)
    [ "$(wc -l <<<"$out")" = 1 ] || fail "mode $mode: more than one line: $out"
done
cp "$key" "$TMP/server.key" && chmod 640 "$TMP/server.key"
expect 1 "--key: $TMP/server.key may be read or written by others \(mode 0640\): refusing to use it; run chmod 600 $TMP/server.key" \
    "$PUNCHD" --listen 127.0.0.1:0 --key "$TMP/server.key"
chmod 600 "$key" "$TMP/server.key"
start_punchd --listen 127.0.0.1:0 --key "$TMP/server.key"
stop_punchd
pass "a key file group or others may read is refused by punch and punchd (chmod 600 named); 0600 works"

# A silent server (issue 13): nothing listens on the port. The user hears
# of it within 5 s, naming the server, and connect ends at its --timeout.
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
t0=$(date +%s%N)
expect 1 "^punch: no answer from punchd at 127.0.0.1:$port after 5 s" \
    "$PUNCH" --key "$key" --server "127.0.0.1:$port" connect bob --timeout 6
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$ms" -lt 9000 ] || fail "connect to a silent server took $ms ms to end (--timeout 6)"
pass "a silent server is named within 5 s; connect exits 1 at its --timeout ($ms ms)"

# Several servers (issue 15): two silent ones are said so; a badly written
# later --server and a ninth are usage errors naming it.
expect 1 "^punch: no answer from punchd at 127.0.0.1:$port nor the other --server after 5 s" \
    "$PUNCH" --key "$key" --server "127.0.0.1:$port" --server "127.0.0.2:$port" connect bob --timeout 6
expect 2 "^punch: --server: 'a:b:c' is not HOST\[:PORT\]" \
    "$PUNCH" --key "$key" --server 127.0.0.1 --server a:b:c connect bob
nine=(); for i in $(seq 9); do nine+=(--server "127.0.0.$i"); done
expect 2 "^punch: --server: '127.0.0.9' is one too many \(at most 8\)" "$PUNCH" "${nine[@]}" connect bob
pass "several servers: both silent named, a bad later --server and a ninth refused"

# A TURN server (issue 15): a badly written --turn is a usage error naming
# the bad part and never the password; a host that does not resolve is a
# failure naming it.
expect 2 "^punch: --turn: not turn\[s\]://USER:PASS@HOST\[:PORT\]\[[?]transport=udp[|]tcp\]: port '99999' is not 1 to 65535" \
    "$PUNCH" --turn 'turn://u:SECRETPW@127.0.0.1:99999' connect bob
expect 2 "^punch: --turn: .*turns:// over UDP is DTLS, which is not spoken" \
    "$PUNCH" --turn 'turns://u:SECRETPW@127.0.0.1?transport=udp' connect bob
expect 2 "^punch: --turn-ca is for a turns:// --turn" \
    "$PUNCH" --turn 'turn://u:SECRETPW@127.0.0.1?transport=tcp' --turn-ca /etc/ssl/certs/ca-certificates.crt connect bob
expect 2 "^punch: --turn-ca is for a turns:// --turn" "$PUNCH" --turn-ca /dev/null connect bob
expect 2 "^punch: --turn: .*no USER:PASS@ before the host" "$PUNCH" --turn 'turn://127.0.0.1' connect bob
expect 2 "^punch: --turn: .*the password is empty" "$PUNCH" --turn 'turn://u:@127.0.0.1' connect bob
expect 2 "^punch: --turn needs a value" "$PUNCH" --turn
! "$PUNCH" --turn 'turn://u:SECRETPW@h:0' connect bob 2>&1 | grep -q SECRETPW ||
    fail "--turn's error repeats the password"
expect 1 "^punch: --turn: cannot resolve 'no-such-host.invalid'" \
    "$PUNCH" --key "$key" --server "127.0.0.1:$port" --turn 'turn://u:p@no-such-host.invalid' \
    connect bob --timeout 1
pass "--turn: bad URLs refused naming the bad part (never the password), an unknown host named"
