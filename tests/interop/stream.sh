#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Reliable streams (punch listen/connect without --datagram, punch forward)
# through a real punchd, in a network namespace of its own where loopback is
# the only interface: files both ways byte for byte, half-close, exit codes,
# a peer that leaves early, garbage from a peer dropped and counted, a TCP
# forward with curl and a refused port, listen --keep-open serving two
# connects in turn, usage errors.
. "$(dirname "$0")/netns.sh"
PUNCH=${PUNCH:?set PUNCH to the punch binary}

start_punchd --listen 127.0.0.1:0 --key "$TMP/server.key"
server=127.0.0.1:$(port_of 1)
p() { local who=$1; shift; XDG_CONFIG_HOME="$TMP/$who" timeout --foreground 60 "$PUNCH" --server "$server" --name "$who" --events "$TMP/$who.ev" "$@"; }
reset() { rm -f "$TMP"/*.ev "$TMP"/*.out "$TMP"/*.err; }
# stop PID: SIGTERM to the punch behind a background `p` (its subshell's child)
stop() { kill -TERM $(pgrep -P "$1") 2>/dev/null; wait "$1"; }
# $TMP/open-a, $TMP/open-b: inputs that never end (the test holds a writer)
mkfifo "$TMP/open-a" "$TMP/open-b"
exec {OPEN_A}<>"$TMP/open-a" {OPEN_B}<>"$TMP/open-b"

# 1. Both ways at once, byte for byte: 8 MiB one way, 1 MiB the other.
head -c 8388608 /dev/urandom >"$TMP/a.bin"
head -c 1048576 /dev/urandom >"$TMP/b.bin"
p bob listen <"$TMP/b.bin" >"$TMP/bob.out" 2>"$TMP/bob.err" &
bob=$!
wait_grep "$TMP/bob.ev" registered || fail "bob did not register: $(cat "$TMP/bob.err")"
p alice connect bob <"$TMP/a.bin" >"$TMP/alice.out" 2>"$TMP/alice.err"; rc=$?
wait "$bob"; brc=$?
[ "$rc" = 0 ] && [ "$brc" = 0 ] || fail "exit codes alice $rc bob $brc: $(cat "$TMP/alice.err" "$TMP/bob.err")"
cmp -s "$TMP/a.bin" "$TMP/bob.out" || fail "bob's copy differs ($(stat -c %s "$TMP/bob.out") bytes)"
cmp -s "$TMP/b.bin" "$TMP/alice.out" || fail "alice's copy differs ($(stat -c %s "$TMP/alice.out") bytes)"
grep -q '"event":"counters".*"oversize":0' "$TMP/alice.ev" || fail "oversize SCTP packets: $(grep counters "$TMP/alice.ev")"
pass "8 MiB and 1 MiB both ways at once, identical, both exit 0"

# 2. Half-close: alice's input ends at once; bob answers only after he has
# her data, and it still reaches her.
reset
echo "question" >"$TMP/q.txt"
(wait_grep "$TMP/bob.out" question && echo "answer after your end of input") |
    p bob listen >"$TMP/bob.out" 2>"$TMP/bob.err" &
bob=$!
wait_grep "$TMP/bob.ev" registered || fail "bob did not register"
p alice connect bob <"$TMP/q.txt" >"$TMP/alice.out" 2>"$TMP/alice.err"; rc=$?
wait "$bob"; brc=$?
[ "$rc" = 0 ] && [ "$brc" = 0 ] || fail "half-close: exit codes alice $rc bob $brc: $(cat "$TMP/alice.err" "$TMP/bob.err")"
[ "$(cat "$TMP/alice.out")" = "answer after your end of input" ] || fail "half-close: alice got '$(cat "$TMP/alice.out")'"
pass "half-close: the end of alice's input did not cut bob's answer"

# 3. A peer that leaves before the end: the other side says so and exits 1.
reset
p bob listen <"$TMP/open-b" >"$TMP/bob.out" 2>"$TMP/bob.err" &
bob=$!
wait_grep "$TMP/bob.ev" registered || fail "bob did not register"
echo partial >&$OPEN_A
p alice connect bob <"$TMP/open-a" >"$TMP/alice.out" 2>"$TMP/alice.err" &
alice=$!
wait_grep "$TMP/bob.out" partial || fail "bob never got alice's first line"
stop "$alice"; rc=$?
wait "$bob"; brc=$?
[ "$rc" = 1 ] && grep -q "^punch: interrupted$" "$TMP/alice.err" || fail "interrupted alice: rc $rc, $(cat "$TMP/alice.err")"
[ "$brc" = 1 ] && grep -q "^punch: stream failed: the peer left (peer closed) before the stream ended$" "$TMP/bob.err" ||
    fail "bob after alice left: rc $brc, $(cat "$TMP/bob.err")"
pass "a peer leaving early: exit 1 with the reason on both sides"

# 4. Garbage from an authenticated peer (alice in --datagram mode, 1152-byte
# datagrams): untagged, tagged with a repair kind that does not exist
# (src/stream/repair.h), tagged and unsequenced (repair kind 0) with a bad
# CRC32c, and the same with a valid CRC32c around random chunks (usrsctp's
# own checksum, through ctypes). The CRC32c is not checked (Noise
# authenticates each datagram already): the bad kinds are counted by the
# repair, both unsequenced kinds are parsed and refused by usrsctp.
reset
cat >"$TMP/garbage.py" <<'EOF'
import ctypes, os, struct, sys
crc = ctypes.CDLL("libusrsctp.so.2").usrsctp_crc32c
crc.restype, crc.argtypes = ctypes.c_uint32, [ctypes.c_char_p, ctypes.c_size_t]
for i in range(600):
    d = bytearray(os.urandom(1152))
    if i < 200:
        d[0] = 0                      # not stream data
    else:
        d[0] = 0x53                   # the stream tag
        d[1] = 0x7f if i < 300 else 0 # a bad repair kind, or an unsequenced SCTP packet
        if i >= 400:                  # a valid checksum: usrsctp parses the chunks
            d[2:6] = struct.pack(">HH", 40000 + i, 5001)
            d[10:14] = b"\0\0\0\0"
            d[10:14] = struct.pack("=I", crc(bytes(d[2:]), len(d) - 2))
    os.write(1, d)                    # one atomic pipe write: one datagram
EOF
p bob listen <"$TMP/open-b" >"$TMP/bob.out" 2>"$TMP/bob.err" &
bob=$!
wait_grep "$TMP/bob.ev" registered || fail "bob did not register"
# Sent once bob has a path too, so none of it is lost before he can take it.
(wait_grep "$TMP/bob.ev" '"event":"path"' && python3 "$TMP/garbage.py") |
    p alice connect bob --datagram >/dev/null 2>"$TMP/alice.err"; rc=$?
wait "$bob"; brc=$?
[ "$rc" = 0 ] || fail "garbage sender exited $rc: $(cat "$TMP/alice.err")"
[ "$brc" = 1 ] && grep -q "^punch: alice left before a stream was carried: peer closed$" "$TMP/bob.err" ||
    fail "bob after garbage: rc $brc (a crash?), $(cat "$TMP/bob.err")"
c=$(grep '"event":"counters"' "$TMP/bob.ev")
n() { grep -o "\"$1\":[0-9]*" <<<"$c" | cut -d: -f2; }
[ "$(n not_stream)" -ge 150 ] &&
    [ "$(n repair_malformed)" -ge 75 ] &&
    [ $(( $(n bad_vtag) + $(n no_port) + $(n out_of_the_blue) + $(n too_short) )) -ge 225 ] ||
    fail "garbage not counted: $c"
grep -q "not stream data" "$TMP/bob.err" && grep -q "warn: dropped .* not valid stream data" "$TMP/bob.err" ||
    fail "no warning about the garbage: $(cat "$TMP/bob.err")"
pass "garbage: dropped and counted ($(n not_stream) untagged, $(n repair_malformed) bad repair kind, $(( $(n bad_vtag) + $(n no_port) + $(n out_of_the_blue) + $(n too_short) )) parsed and refused)"

# 5. punch forward: curl through the stream to python's http.server; a port
# bob does not allow is refused with the reason on alice's side.
reset
mkdir -p "$TMP/www" && head -c 3000000 /dev/urandom >"$TMP/www/f.bin"
(cd "$TMP/www" && exec python3 -m http.server --bind 127.0.0.1 8000 >/dev/null 2>&1) &
web=$!
for _ in $(seq 400); do curl -s -o /dev/null http://127.0.0.1:8000/ && break; sleep 0.025; done
# alice's key as bob learnt it in 1., the one peer bob lets in (interop.allow tests the refusals).
grep '^alice ' "$TMP/bob/punch/known_peers" >"$TMP/allowed" || fail "bob did not learn alice's key"
p bob listen --allow-forward 8000,8001 --allowed-peers "$TMP/allowed" </dev/null >/dev/null 2>"$TMP/bob.err" &
bob=$!
wait_grep "$TMP/bob.ev" registered || fail "bob did not register"
p alice forward --listen 9000 bob:8000 </dev/null 2>"$TMP/alice.err" &
alice=$!
wait_grep "$TMP/alice.ev" '"event":"path"' || fail "no path for the forward: $(cat "$TMP/alice.err")"
curl -s -o "$TMP/got.bin" http://127.0.0.1:9000/f.bin || fail "curl through the forward failed"
cmp -s "$TMP/www/f.bin" "$TMP/got.bin" || fail "curl got another file"
pass "curl through punch forward: 3 MB identical"
stop "$alice"; rc=$?
[ "$rc" = 0 ] || fail "forward stopped by SIGTERM exited $rc"
rm -f "$TMP/alice.ev"
p alice forward --listen 9001 bob:22 </dev/null 2>"$TMP/alice.err" &
alice=$!
wait_grep "$TMP/alice.ev" '"event":"path"' || fail "no path for the forward"
curl -s -o /dev/null http://127.0.0.1:9001/ && fail "curl through a refused port succeeded"
wait_grep "$TMP/alice.err" "refused" || true
grep -q "^punch forward: bob refused port 22: port 22 is not allowed (punch listen --allow-forward)$" "$TMP/alice.err" ||
    fail "refused port: $(cat "$TMP/alice.err")"
stop "$alice"; stop "$bob"; kill "$web"
pass "a port bob does not allow is refused, with the reason"

# 6. listen --keep-open: two punch connect, one after the other, to one
# listener whose stdout is a pipe: it gets the first one's bytes, then the
# second's (the first one's end did not close it); its stdin went to the
# first (the second gets only its end); it goes on until SIGTERM, exit 0.
reset
head -c 1048576 /dev/urandom >"$TMP/a1.bin"
head -c 300000 /dev/urandom >"$TMP/a2.bin"
echo "to the first peer" >"$TMP/b.txt"
mkfifo "$TMP/bob.pipe"
cat "$TMP/bob.pipe" >"$TMP/bob.out" &
reader=$!
p bob listen --keep-open <"$TMP/b.txt" >"$TMP/bob.pipe" 2>"$TMP/bob.err" &
bob=$!
wait_grep "$TMP/bob.ev" registered || fail "bob did not register: $(cat "$TMP/bob.err")"
p alice connect bob <"$TMP/a1.bin" >"$TMP/alice.out" 2>"$TMP/alice.err" ||
    fail "keep-open: the first connect failed: $(cat "$TMP/alice.err" "$TMP/bob.err")"
p carol connect bob <"$TMP/a2.bin" >"$TMP/carol.out" 2>"$TMP/carol.err" ||
    fail "keep-open: the second connect failed: $(cat "$TMP/carol.err" "$TMP/bob.err")"
cmp -s "$TMP/b.txt" "$TMP/alice.out" && [ ! -s "$TMP/carol.out" ] ||
    fail "keep-open: alice got '$(cat "$TMP/alice.out")', carol $(stat -c %s "$TMP/carol.out") bytes"
kill -0 "$(pgrep -P "$bob")" 2>/dev/null || fail "keep-open: bob left after the streams: $(cat "$TMP/bob.err")"
stop "$bob"; rc=$?
[ "$rc" = 0 ] || fail "keep-open: bob exited $rc on SIGTERM: $(cat "$TMP/bob.err")"
wait "$reader"
cat "$TMP/a1.bin" "$TMP/a2.bin" | cmp -s - "$TMP/bob.out" ||
    fail "keep-open: bob's stdout is not both inputs in turn ($(stat -c %s "$TMP/bob.out") bytes)"
pass "listen --keep-open: two connects in turn, stdout (a pipe) has both (1 MiB + 300 kB), exit 0 on SIGTERM"

# 7. Usage errors name the bad input.
expect2() { local want=$1; shift; out=$("$PUNCH" --server "$server" "$@" 2>&1); local rc=$?
    [ "$rc" = 2 ] && grep -qF -- "$want" <<<"$out" || fail "$*: rc $rc, $out"; }
expect2 "--keep-open is for listen" connect bob --keep-open
expect2 "--max-connections: '0' is not 1 to 1000000" forward --listen 9000 bob:22 --max-connections 0
expect2 "--max-connections is for forward and listen --allow-forward" listen --max-connections 5
expect2 "--allow-forward: '0' is not a port" listen --allow-forward 22,0
expect2 "--allow-forward carries streams: not with --datagram" listen --allow-forward 22 --datagram
expect2 "--peer is for listen" connect bob --peer "bob@$(cut -d' ' -f2 "$TMP/allowed")"
expect2 "--any-peer is for listen" forward --any-peer --listen 9000 bob:22
expect2 "which local port? give --listen" forward bob:22
expect2 "'bob' is not PEER[@PUBKEY]:PORT" forward --listen 9000 bob
expect2 "--listen: 'x:y' is not [ADDR:]PORT" forward --listen x:y bob:22
expect2 "--datagram is for listen and connect" forward --datagram --listen 1 bob:22
"$PUNCH" forward --help | grep -q "allow-forward" || fail "forward --help"
pass "usage errors exit 2 naming the bad input"
