#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# punch listen / punch connect through a real punchd, in a network
# namespace of its own where loopback is the only interface (so every probe
# stays on it): data both ways, keys learned on first use and a changed key
# refused loudly, a pinned key enforced, and the errors a user meets.
. "$(dirname "$0")/netns.sh"
PUNCH=${PUNCH:?set PUNCH to the punch binary}

start_punchd --listen 127.0.0.1:0 --key "$TMP/server.key"
server=127.0.0.1:$(port_of 1)

# listen [NAME]: bob's side (as bob, or NAME with bob's key); says "hello
# alice" and keeps stdin open until $TMP/stop appears.
listen() {
    (echo "hello alice"; while [ ! -e "$TMP/stop" ]; do sleep 0.05; done) |
        XDG_CONFIG_HOME="$TMP/bob" "$PUNCH" --server "$server" --name "${1:-bob}" \
            --events "$TMP/bob.ev" listen --datagram >"$TMP/bob.out" 2>"$TMP/bob.err" &
    BOB=$!
    for _ in $(seq 400); do grep -q registered "$TMP/bob.ev" 2>/dev/null && return; sleep 0.025; done
    cat "$TMP/bob.err"; fail "bob did not register"
}
# connect ARGS...: alice's side; says "hello bob", waits for an answer.
connect() {
    (echo "hello bob"; for _ in $(seq 200); do [ -s "$TMP/alice.out" ] && break; sleep 0.05; done) |
        XDG_CONFIG_HOME="$TMP/alice" timeout --foreground 30 "$PUNCH" --server "$server" --name alice \
            --events "$TMP/alice.ev" connect --datagram "$@" >"$TMP/alice.out" 2>"$TMP/alice.err"
}
# refused ARGS...: a connect that must fail; nothing waits for an answer.
refused() {
    echo "hello bob" | XDG_CONFIG_HOME="$TMP/alice" timeout --foreground 30 "$PUNCH" --server "$server" \
        --name alice connect --datagram "$@" >"$TMP/alice.out" 2>"$TMP/alice.err"
}
stop_bob() { touch "$TMP/stop"; kill -TERM "$BOB" 2>/dev/null; wait "$BOB" 2>/dev/null; rm -f "$TMP/stop" "$TMP/bob.ev"; }

listen
connect bob --timeout 20 || { cat "$TMP/alice.err"; fail "connect failed"; }
stop_bob
[ "$(cat "$TMP/bob.out")" = "hello bob" ] || fail "bob got '$(cat "$TMP/bob.out")'"
[ "$(cat "$TMP/alice.out")" = "hello alice" ] || fail "alice got '$(cat "$TMP/alice.out")'"
grep -q '"event":"path".*"peer":"bob","kind":"direct"' "$TMP/alice.ev" || fail "no direct path: $(cat "$TMP/alice.ev")"
grep -q '^bob ' "$TMP/alice/punch/known_peers" || fail "alice did not remember bob's key"
grep -q '^alice ' "$TMP/bob/punch/known_peers" || fail "bob did not remember alice's key"
[ "$(stat -c %a "$TMP/alice/punch/key")" = 600 ] || fail "alice's key is not mode 600"
pass "hello both ways on a direct path; keys learned and kept"

# The cipher (issue 14): both ends run on this machine, so AES-256-GCM where
# it has AES-NI and PCLMUL (libsodium's test), ChaCha20-Poly1305 otherwise,
# on both sides alike; and ChaCha20-Poly1305 when one side says --no-aes.
cipher=chacha20-poly1305
grep -qw aes /proc/cpuinfo && grep -qw pclmulqdq /proc/cpuinfo && cipher=aes-256-gcm
grep -q '"event":"path".*"peer":"bob","kind":"direct".*"cipher":"'$cipher'"' "$TMP/alice.ev" ||
    fail "alice's path is not $cipher: $(grep '"path"' "$TMP/alice.ev")"
listen
(echo "hello bob"; for _ in $(seq 200); do [ -s "$TMP/alice.out" ] && break; sleep 0.05; done) |
    XDG_CONFIG_HOME="$TMP/alice" timeout --foreground 30 "$PUNCH" --server "$server" --name alice \
        --no-aes --events "$TMP/alice.ev" connect --datagram bob --timeout 20 \
        >"$TMP/alice.out" 2>"$TMP/alice.err" || { cat "$TMP/alice.err"; fail "--no-aes connect failed"; }
grep -q '"event":"path".*"kind":"direct".*"cipher":"chacha20-poly1305"' "$TMP/bob.ev" ||
    fail "bob's path with alice --no-aes is not chacha20-poly1305: $(grep '"path"' "$TMP/bob.ev")"
stop_bob
[ "$(cat "$TMP/alice.out")" = "hello alice" ] || fail "alice (--no-aes) got '$(cat "$TMP/alice.out")'"
grep '"event":"path"' "$TMP/alice.ev" | tail -1 | grep -q '"cipher":"chacha20-poly1305"' ||
    fail "alice's path with --no-aes is not chacha20-poly1305: $(grep '"path"' "$TMP/alice.ev")"
pass "cipher: $cipher by default, chacha20-poly1305 when one side says --no-aes"

# A name starting with '#' is pinned like any other (issue 12, finding 4):
# known_peers has no comment syntax.
listen '#bobz'
connect '#bobz' --timeout 20 || { cat "$TMP/alice.err"; fail "connect to #bobz failed"; }
stop_bob
grep -q '^#bobz ' "$TMP/alice/punch/known_peers" || fail "alice did not remember #bobz's key"
[ "$(grep -c . "$TMP/alice/punch/known_peers")" = 2 ] || fail "known_peers: $(cat "$TMP/alice/punch/known_peers")"
[ "$(stat -c %a "$TMP/alice/punch/known_peers")" = 600 ] || fail "known_peers is not mode 600"
pass "#bobz reached and its key remembered like bob's"

# Bob comes back with another key: alice must refuse, loudly.
bob_key=$(grep '^bob ' "$TMP/alice/punch/known_peers" | cut -d' ' -f2)
"$PUNCH" --key "$TMP/bob/punch/key" keygen --force >/dev/null
stop_punchd   # the old bob's name binding goes with the server's state
start_punchd --listen 127.0.0.1:0 --key "$TMP/server.key"
server=127.0.0.1:$(port_of 1)
listen
refused bob --timeout 10; rc=$?
stop_bob
[ "$rc" = 1 ] || fail "connect to a changed key exited $rc, want 1"
grep -q "REFUSING bob: its key changed" "$TMP/alice.err" || fail "no loud refusal: $(cat "$TMP/alice.err")"
[ ! -s "$TMP/alice.out" ] || fail "data came from a peer with a changed key"
pass "a changed key is refused loudly (exit 1)"
# The refusal says how to replace the stale key; doing so lets bob in.
hint=$(grep -o "sed -i '/^bob /d' '[^']*'" "$TMP/alice.err") || fail "no command to replace the key: $(cat "$TMP/alice.err")"
grep -qF "or pin it: connect bob@$("$PUNCH" --key "$TMP/bob/punch/key" keygen --public)" "$TMP/alice.err" ||
    fail "no hint to pin bob's new key: $(cat "$TMP/alice.err")"
cp "$TMP/alice/punch/known_peers" "$TMP/known_peers.before"
eval "$hint"
listen
connect bob --timeout 20 || { cat "$TMP/alice.err"; fail "connect after the hinted command failed"; }
stop_bob
new_key=$(grep '^bob ' "$TMP/alice/punch/known_peers" | cut -d' ' -f2)
[ -n "$new_key" ] && [ "$new_key" != "$bob_key" ] || fail "bob's new key was not learnt after: $hint"
cp "$TMP/known_peers.before" "$TMP/alice/punch/known_peers"  # the stale key again, for what follows
pass "the refusal's own command ($hint) replaces the stale key; the next connect learns the new one"
listen '#bobz'
refused '#bobz' --timeout 10; rc=$?
stop_bob
[ "$rc" = 1 ] && grep -q "REFUSING #bobz: its key changed" "$TMP/alice.err" ||
    fail "#bobz with a changed key: rc $rc, $(cat "$TMP/alice.err")"
[ ! -s "$TMP/alice.out" ] || fail "data came from #bobz with a changed key"
[ "$(grep -c '^#bobz ' "$TMP/alice/punch/known_peers")" = 1 ] || fail "#bobz's line was doubled: $(cat "$TMP/alice/punch/known_peers")"
pass "a changed key for #bobz is refused like for bob (exit 1), its line kept once"

# A pinned key: the old one no longer matches bob at the server.
listen
refused "bob@$bob_key" --timeout 10; rc=$?
stop_bob
[ "$rc" = 1 ] && grep -q "another key than the pinned one" "$TMP/alice.err" ||
    fail "pinned key mismatch: rc $rc, $(cat "$TMP/alice.err")"
pass "a pinned key that does not match is refused (exit 1)"

refused nobody --timeout 10; rc=$?
[ "$rc" = 1 ] && grep -q "no such peer at the server" "$TMP/alice.err" ||
    fail "no such peer: rc $rc, $(cat "$TMP/alice.err")"
pass "no such peer: exit 1 with the server's reason"

out=$("$PUNCH" --server "$server" connect 2>&1); rc=$?
[ "$rc" = 2 ] && grep -q "which peer" <<<"$out" || fail "connect without a peer: rc $rc, $out"
out=$("$PUNCH" --server "$server" listen --tcp 2>&1); rc=$?
[ "$rc" = 2 ] && grep -q -- "--tcp is for connect" <<<"$out" || fail "listen --tcp: rc $rc, $out"
out=$("$PUNCH" --server "$server" connect 'bad name' 2>&1); rc=$?
[ "$rc" = 2 ] && grep -q "'bad name' is not a peer name" <<<"$out" || fail "bad name: rc $rc, $out"
out=$("$PUNCH" --server "$server" connect bob@short 2>&1); rc=$?
[ "$rc" = 2 ] && grep -q "'short' is not a public key" <<<"$out" || fail "bad key: rc $rc, $out"
out=$(env -u PUNCH_SERVER "$PUNCH" connect bob 2>&1); rc=$?
[ "$rc" = 2 ] && grep -q "no server" <<<"$out" || fail "no server: rc $rc, $out"
pass "usage errors exit 2 naming the bad input"
