#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Who may connect to a listener (issue 12, finding 1): the attack of the
# review, for real, through a real punchd in a network namespace of its own
# (loopback only). bobf serves a web server with `listen --allow-forward
# 8080`; mallory, a fresh key that knows only the name, runs `punch forward
# --listen 9090 bobf:8080` and must get nothing (refused at its
# introduction: a peer-refused event naming it, its key and why, and a
# count), while alice, on the list, reads the page. Also: one impersonating
# alice's name with another key is refused; --allowed-peers FILE works and
# a bad FILE is named by line; --allow-forward without a list refuses to
# start; --any-peer lets anyone in, as it says.
. "$(dirname "$0")/netns.sh"
PUNCH=${PUNCH:?set PUNCH to the punch binary}

start_punchd --listen 127.0.0.1:0 --key "$TMP/server.key"
server=127.0.0.1:$(port_of 1)
p() { local who=$1; shift; XDG_CONFIG_HOME="$TMP/$who" timeout --foreground 60 "$PUNCH" --server "$server" --events "$TMP/$who.ev" "$@"; }
stop() { kill -TERM $(pgrep -P "$1") 2>/dev/null; wait "$1"; }
count() { grep -c -- "$2" "$1" 2>/dev/null || true; }
# bobf_up OPTIONS...: bobf serves 8080 to whom OPTIONS allow; $bobf is its job.
bobf_up() {
    p bobf --name bobf listen --allow-forward 8080 "$@" </dev/null 2>"$TMP/bobf.err" &
    bobf=$!
    wait_grep "$TMP/bobf.ev" registered || fail "bobf did not register: $(cat "$TMP/bobf.err")"
}
# through NAME PORT: NAME forwards PORT to bobf:8080 and reads the page whole.
through() {
    p "$1" --name "$1" forward --listen "$2" bobf:8080 </dev/null 2>"$TMP/$1.err" &
    local job=$!
    wait_grep "$TMP/$1.ev" '"event":"path"' || fail "no path for $1: $(cat "$TMP/$1.err" "$TMP/bobf.err")"
    curl -s --max-time 20 -o "$TMP/got.bin" "http://127.0.0.1:$2/secret.bin" || fail "curl through $1's forward failed"
    cmp -s "$TMP/www/secret.bin" "$TMP/got.bin" || fail "$1 got another file"
    stop "$job"
}

mkdir -p "$TMP/www" && head -c 200000 /dev/urandom >"$TMP/www/secret.bin"
(cd "$TMP/www" && exec python3 -m http.server --bind 127.0.0.1 8080 >/dev/null 2>&1) &
web=$!
trap 'kill $web 2>/dev/null; stop_punchd; rm -rf "$TMP"' EXIT
for _ in $(seq 400); do curl -s -o /dev/null http://127.0.0.1:8080/ && break; sleep 0.025; done

alice_key=$(XDG_CONFIG_HOME="$TMP/alice" "$PUNCH" keygen) || fail "keygen for alice"

# 1. --allow-forward alone refuses to start: exit 2, one line saying what to add.
out=$(p bobf --name bobf listen --allow-forward 8080 </dev/null 2>&1); rc=$?
[ "$rc" = 2 ] && [ "$(wc -l <<<"$out")" = 1 ] &&
    grep -qx "punch listen: --allow-forward needs to know who may connect: add --peer NAME@KEY or --allowed-peers FILE, or --any-peer to let anyone in" <<<"$out" ||
    fail "--allow-forward without a list: rc $rc, $out"
[ ! -e "$TMP/bobf.ev" ] || fail "bobf started anyway"
pass "listen --allow-forward without --peer, --allowed-peers or --any-peer: exit 2, one line"

# 2. The attack: a fresh key that knows only the name.
bobf_up --peer "alice@$alice_key"
p mallory --name mallory forward --listen 9090 bobf:8080 --timeout 4 </dev/null 2>"$TMP/mallory.err" &
mallory=$!
wait_grep "$TMP/bobf.ev" '"event":"peer-refused"' || fail "no peer-refused event: $(cat "$TMP/bobf.err")"
line=$(grep '"event":"peer-refused"' "$TMP/bobf.ev")
grep -q '"peer":"mallory","key":"[A-Za-z0-9+/]\{43\}=","reason":"not an allowed peer"' <<<"$line" ||
    fail "peer-refused event: $line"
curl -s --max-time 3 -o "$TMP/got.bin" http://127.0.0.1:9090/secret.bin; crc=$?
[ -s "$TMP/got.bin" ] && fail "mallory read $(stat -c %s "$TMP/got.bin") bytes of the service behind bobf"
wait "$mallory"; mrc=$?
[ "$mrc" = 1 ] || fail "mallory's forward exited $mrc, want 1 (no path): $(cat "$TMP/mallory.err")"
grep -q '"event":"path"' "$TMP/mallory.ev" && fail "mallory got a path to bobf"
[ "$(count "$TMP/bobf.ev" '"event":"path"')" = 0 ] || fail "bobf opened a path to mallory"
grep -q "warn: refusing mallory: not an allowed peer (key " "$TMP/bobf.err" || fail "no warning on bobf: $(cat "$TMP/bobf.err")"
pass "a fresh key knowing only the name: refused at its introduction (curl exit $crc, no path, forward exit 1): $line"

# 3. The allowed key reads the service through the same listener.
through alice 9091
pass "the allowed key (alice) reads the service: 200 kB identical"

stop "$bobf"; rc=$?
[ "$rc" = 0 ] || fail "bobf exited $rc on SIGTERM"
# Mallory's punch asks again while it has no path: each introduction refused, each counted.
c=$(grep '"event":"counters"' "$TMP/bobf.ev")
n=$(count "$TMP/bobf.ev" '"event":"peer-refused"')
[ "$(json_field "$c" peers_refused)" = "$n" ] && [ "$n" -ge 1 ] || fail "peers_refused $(json_field "$c" peers_refused), $n events"
pass "bobf counted every refusal: peers_refused $n in the counters event, $n peer-refused events"

# 4. Another key under alice's name: refused, the reason says the key is not
# the one allowed for the name. (A new punchd: the old one still gives the
# name to alice's key until she has been silent for 90 s.)
stop_punchd
start_punchd --listen 127.0.0.1:0 --key "$TMP/server.key"
server=127.0.0.1:$(port_of 1)
rm -f "$TMP/bobf.ev"
bobf_up --peer "alice@$alice_key"
p alice2 --name alice forward --listen 9092 bobf:8080 --timeout 4 </dev/null 2>"$TMP/alice2.err" &
alice2=$!
wait_grep "$TMP/bobf.ev" '"event":"peer-refused"' || fail "alice2 not refused: $(cat "$TMP/bobf.err")"
grep '"event":"peer-refused"' "$TMP/bobf.ev" | tail -1 |
    grep -q '"peer":"alice","key":"[^"]*","reason":"not the key allowed for this name"' ||
    fail "alice's name with another key: $(cat "$TMP/bobf.ev" "$TMP/bobf.err" "$TMP/alice2.err")"
grep '"event":"peer-refused"' "$TMP/bobf.ev" | tail -1 | grep -qF "\"key\":\"$alice_key\"" &&
    fail "the refused key is alice's own"
wait "$alice2"
stop "$bobf"
grep '"event":"path"' "$TMP/bobf.ev" && fail "bobf opened a path to the other alice"
pass "alice's name with another key: refused (not the key allowed for this name)"

# 5. --allowed-peers FILE: the same with the list in a file; a bad file is
# named by line; --any-peer lets mallory in, as it says.
stop_punchd # the name alice is alice2's there for 90 s
start_punchd --listen 127.0.0.1:0 --key "$TMP/server.key"
server=127.0.0.1:$(port_of 1)
rm -f "$TMP"/*.ev
printf '\n# bobf allows\n' >"$TMP/allowed"
out=$(p bobf --name bobf listen --allow-forward 8080 --allowed-peers "$TMP/allowed" </dev/null 2>&1); rc=$?
[ "$rc" = 2 ] && grep -qx "punch listen: --allowed-peers: $TMP/allowed:2: more than a name and a key on the line" <<<"$out" ||
    fail "bad allowed-peers file: rc $rc, $out"
printf 'carol@%s\n  alice   %s  \n' "$alice_key" "$alice_key" >"$TMP/allowed"
chmod 664 "$TMP/allowed"
out=$(p bobf --name bobf listen --allow-forward 8080 --allowed-peers "$TMP/allowed" </dev/null 2>&1); rc=$?
[ "$rc" = 1 ] && grep -qx "punch listen: --allowed-peers: $TMP/allowed may be written by others (mode 0664): refusing to use it; run chmod go-w $TMP/allowed" <<<"$out" ||
    fail "a group-writable allowed-peers file: rc $rc, $out"
chmod 644 "$TMP/allowed"
bobf_up --allowed-peers "$TMP/allowed"
p mallory --name mallory forward --listen 9093 bobf:8080 --timeout 4 </dev/null 2>"$TMP/mallory.err" &
mallory=$!
wait_grep "$TMP/bobf.ev" '"event":"peer-refused","t_ms":[0-9]*,"peer":"mallory"' || fail "mallory not refused with --allowed-peers"
wait "$mallory"
through alice 9094
stop "$bobf"
pass "--allowed-peers FILE: alice in, mallory refused; a bad line named as FILE:LINE (exit 2); a group-writable file refused (exit 1)"

rm -f "$TMP"/*.ev
bobf_up --any-peer
through mallory 9095
stop "$bobf"
grep -q peer-refused "$TMP/bobf.ev" && fail "--any-peer refused someone"
pass "--any-peer: anyone (mallory) is let in, as the help says"

# 6. punch vpn listen likewise: only alice's key gets the tunnel. Both TUNs
# live in this namespace; the HELLOs that cross the tunnel (vpn-peer events
# on both sides) show data flowed to alice, none to carol.
stop_punchd # alice's name is held by her last key there for 90 s
start_punchd --listen 127.0.0.1:0 --key "$TMP/server.key"
server=127.0.0.1:$(port_of 1)
rm -f "$TMP"/*.ev
v() { local who=$1; shift; p "$who" --name "$who" vpn "$@" </dev/null >/dev/null 2>"$TMP/$who.err"; }
v bobv listen --peer "alice@$alice_key" --address 10.99.0.2/24 --dev pa0 &
bobv=$!
wait_grep "$TMP/bobv.ev" registered || fail "bobv did not register: $(cat "$TMP/bobv.err")"
v carol connect bobv --address 10.98.0.1/24 --dev pa1 --timeout 4 &
carol=$!
wait_grep "$TMP/bobv.ev" '"event":"peer-refused","t_ms":[0-9]*,"peer":"carol","key":"[^"]*","reason":"not an allowed peer"' ||
    fail "carol not refused by vpn listen: $(cat "$TMP/bobv.ev" "$TMP/bobv.err")"
wait "$carol" && fail "carol's vpn connect exited 0"
v alice connect bobv --address 10.99.0.1/24 --dev pa2 &
alice=$!
wait_grep "$TMP/alice.ev" '"event":"vpn-peer","t_ms":[0-9]*,"peer":"bobv"' || fail "alice got no tunnel: $(cat "$TMP/alice.err" "$TMP/bobv.err")"
wait_grep "$TMP/bobv.ev" '"event":"vpn-peer","t_ms":[0-9]*,"peer":"alice"' || fail "bobv never heard alice in the tunnel"
grep -q '"event":"vpn-peer".*"peer":"carol"' "$TMP/bobv.ev" && fail "carol's HELLO reached bobv"
stop "$alice"; stop "$bobv"
grep '"event":"stopped"' "$TMP/bobv.ev" | grep -q '"refused_peers":[1-9]' || fail "vpn refusals not counted: $(grep stopped "$TMP/bobv.ev")"
pass "vpn listen --peer alice@KEY: carol refused before any data (peer-refused, refused_peers), alice's tunnel up"
