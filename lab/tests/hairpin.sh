#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Hairpin (draft §3.3.2, §3.3.3): a host reaches another host of the same NAT
# through the NAT's public address; the receiver sees the sender's own public
# mapping (the one the server saw), so a reply or a punch toward that mapping
# works. Off: such packets are dropped.
. "$(dirname "$0")/lib.sh"
S=198.51.100.1:3478

# exchange: bob learns his mapping, punches toward alice's (when PUNCH=1) and
# waits; alice learns hers, sends to bob's mapping, waits for his reply.
exchange() {
    rm -f "$TMP"/ma "$TMP"/mb "$TMP"/bob.ready
    local steps=(echo:$S\>"$TMP/mb")
    [ "${PUNCH:-0}" = 1 ] && steps+=(sendfile:"$TMP/ma":punch)
    udp bob --port 6000 --timeout 1 "${steps[@]}" ready:"$TMP/bob.ready" recv reply:pong \
        >"$TMP/bob.out" &
    local bob=$!
    udp alice --port 5000 --timeout 1 echo:$S\>"$TMP/ma" waitfile:"$TMP/bob.ready" \
        sendfile:"$TMP/mb":ping recv >"$TMP/alice.out"
    wait $bob
    echo "alice: $(tr '\n' ' ' <"$TMP/alice.out")"; echo "bob:   $(tr '\n' ' ' <"$TMP/bob.out")"
}

lab up same-nat --hairpin on
start_echo server $S
exchange
ma=$(cat "$TMP/ma") mb=$(cat "$TMP/mb")
grep -q "^recv from $ma ping" "$TMP/bob.out" || fail "same-nat hairpin on: bob did not get ping from alice's mapping $ma"
grep -q "^recv from $mb pong" "$TMP/alice.out" || fail "same-nat hairpin on: alice did not get pong from bob's mapping $mb"
ok "same-nat, hairpin on: alice→$mb reached bob from $ma, and back"
lab down

lab up same-nat --hairpin off
start_echo server $S
exchange
grep -q "^recv none" "$TMP/bob.out" || fail "same-nat hairpin off: packet got through"
ok "same-nat, hairpin off: dropped"
lab down

# multi-level: both inner NATs are port-restricted, so bob punches first
lab up multi-level --hairpin on
start_echo server $S
PUNCH=1 exchange
ma=$(cat "$TMP/ma") mb=$(cat "$TMP/mb")
case $ma in 203.0.113.1:*) ;; *) fail "multi-level: alice's mapping $ma is not nat-x's public address" ;; esac
grep -q "^recv from $ma ping" "$TMP/bob.out" || fail "multi-level hairpin on: bob did not get ping from $ma"
grep -q "^recv from $mb pong" "$TMP/alice.out" || fail "multi-level hairpin on: alice did not get pong from $mb"
ok "multi-level, hairpin on at nat-x: hole punched through nat-a and nat-b via $ma / $mb"
lab down

lab up multi-level --hairpin off
start_echo server $S
PUNCH=1 exchange
grep -q "^recv none" "$TMP/bob.out" || fail "multi-level hairpin off: packet got through"
ok "multi-level, hairpin off at nat-x: dropped"
