#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A peer killed without a goodbye comes back (issue 10). Bob listens, alice
# connects; once data crosses on a direct path, bob's punch is killed with
# SIGKILL (the process itself, not the `lab exec` around it) and started
# again, asking for alice (`punch connect alice`) while alice still holds
# the dead session. Both must be direct again and hear each other within
# RESTART_BOUND_MS of bob's new start (the time of a fresh connect, cookie
# round trip included, is about 200 ms here; 2 s leaves room for a loaded
# machine). On a punchd that gives the new CONNECT the pair's old session,
# alice takes it as news of the dead one and nothing crosses.
# With RESTART_AS=listen, before alice took bob's new message 1 as
# the peer starting over elsewhere, she kept sending to his dead endpoint
# until a keepalive went unanswered: 2.4-2.6 s.
. "$(dirname "$0")/lib.sh"
B=${PUNCH_BUILD_DIR:?}
PUNCH=$B/apps/punch PUNCHD=$B/apps/punchd
RESTART_BOUND_MS=${RESTART_BOUND_MS:-2000}
# RESTART_AS=listen (lab.restart_listen): bob comes back as `punch listen`,
# which sends no CONNECT: punchd sees his REGISTER from a new endpoint and
# introduces him again to alice, in the session they had (issue 12).
RESTART_AS=${RESTART_AS:-connect}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# wait_line FILE REGEX SECONDS: poll (bounded) until FILE has a line matching
wait_line() {
    local i
    for ((i = 0; i < $3 * 100; i++)); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.01; done
    return 1
}
# feed FILE LINE: LINE every 50 ms until $TMP/stop exists
feed() { while [ ! -e "$TMP/stop" ]; do echo "$1"; sleep 0.05; done; }
# side NODE RUN ARGS...: punch on NODE, its PID (punch's own: exec) in
# $TMP/NODE-RUN.pid, events in $TMP/NODE-RUN.ev, output in $TMP/NODE-RUN.out
side() {
    local node=$1 run=$2; shift 2
    feed "to $node's peer from $node-$run" |
        lab exec "$node" -- sh -c 'echo $$ >"$0"; exec "$@"' "$TMP/$node-$run.pid" \
            env XDG_CONFIG_HOME="$TMP/$node" "$PUNCH" --server 198.51.100.1 --name "$node" \
            --events "$TMP/$node-$run.ev" "$@" >"$TMP/$node-$run.out" 2>"$TMP/$node-$run.err" &
}

lab up different-nats --nat-a port-restricted-cone --nat-b port-restricted-cone >/dev/null
lab exec server -- "$PUNCHD" --listen 198.51.100.1:3478 --alt 198.51.100.2 \
    --key "$TMP/server.key" --events "$TMP/punchd.ev" 2>/dev/null </dev/null &
wait_for "$TMP/punchd.ev"
side bob 1 listen --datagram
wait_line "$TMP/bob-1.ev" registered 10 || fail "bob did not register"
t0=$(now_ms)
side alice 1 connect bob --datagram --timeout 60
wait_line "$TMP/alice-1.out" "from bob-1" 10 && wait_line "$TMP/bob-1.out" "from alice-1" 10 ||
    fail "the first connect: no data (alice: $(cat "$TMP/alice-1.err"))"
wait_line "$TMP/alice-1.ev" '"kind":"direct"' 5 || fail "the first connect is not direct"
fresh=$(($(now_ms) - t0))
# The session settles (past punchd's window for CONNECTs that cross).
sleep 1.5
bob_pid=$(cat "$TMP/bob-1.pid")
[ "$(cat /proc/"$bob_pid"/comm)" = punch ] || fail "pid $bob_pid is not punch"
kill -KILL "$bob_pid"
for ((i = 0; i < 200; i++)); do kill -0 "$bob_pid" 2>/dev/null || break; sleep 0.01; done
kill -0 "$bob_pid" 2>/dev/null && fail "bob's punch survived SIGKILL"
: >"$TMP/alice-1.out"
t1=$(now_ms)
if [ "$RESTART_AS" = listen ]; then
    side bob 2 listen --datagram
else
    side bob 2 connect alice --datagram --timeout 60
fi
wait_line "$TMP/bob-2.out" "from alice-1" 5 && wait_line "$TMP/alice-1.out" "from bob-2" 5 ||
    fail "bob restarted: no data both ways within 5 s (bob: $(tail -2 "$TMP/bob-2.err"))"
back=$(($(now_ms) - t1))
grep '"event":"path"' "$TMP/bob-2.ev" | tail -1 | grep -q '"kind":"direct"' ||
    fail "bob restarted: his path is $(grep '"event":"path"' "$TMP/bob-2.ev" | tail -1)"
grep '"event":"path"' "$TMP/alice-1.ev" | tail -1 | grep -q '"kind":"direct"' ||
    fail "bob restarted: alice's path is $(grep '"event":"path"' "$TMP/alice-1.ev" | tail -1)"
[ "$back" -le "$RESTART_BOUND_MS" ] || fail "bob restarted: data both ways after $back ms (bound $RESTART_BOUND_MS)"
touch "$TMP/stop"
ok "bob killed (SIGKILL) and back as punch $RESTART_AS: direct both ways after $back ms (a fresh connect took $fresh ms)"
