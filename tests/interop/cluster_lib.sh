# SPDX-License-Identifier: MIT
# Sourced by the cluster tests (after netns.sh): a real redis-server and
# punchd members on loopback, punch peers at them, bounded waits.
PUNCH=${PUNCH:?set PUNCH to the punch binary}
command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
    { echo "SKIP: redis-server not installed (scripts/setup)"; exit 77; }

REDIS_PID=; M1=; M2=; M3=; BOB=; SILENT=; CAPTURE=
TOOL="$(dirname "$0")/redis_tool.py"
cleanup() {
    touch "$TMP/stop"
    [ -z "${KEEP:-}" ] || cp -r "$TMP" "$KEEP"
    [ -z "$REDIS_PID" ] || kill -CONT "$REDIS_PID" 2>/dev/null
    for p in $BOB $M1 $M2 $M3 $SILENT $CAPTURE $REDIS_PID; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
head -c 32 /dev/urandom >"$TMP/secret"
CLUSTER=(--cluster redis://127.0.0.1:6379/3 --cluster-secret-file "$TMP/secret")

start_redis() {
    redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no \
        >>"$TMP/redis.log" 2>&1 &
    REDIS_PID=$!
    for _ in $(seq 400); do redis-cli -p 6379 ping 2>/dev/null | grep -q PONG && return; sleep 0.025; done
    cat "$TMP/redis.log"; fail "redis-server did not start"
}
stop_redis() { kill "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null; REDIS_PID=; }

# member N PORT [REDIS]: punchd member N serving on 127.0.0.1:PORT, events
# in mN.ev, the cluster's Redis (or REDIS, redis://...).
member() {
    "$PUNCHD" --listen "127.0.0.1:$2" --no-tcp --log-level debug --events "$TMP/m$1.ev" \
        --metrics "127.0.0.1:947$1" \
        "${CLUSTER[@]}" ${3:+--cluster "$3"} 2>"$TMP/m$1.err" &
    eval "M$1=$!"
}
# count FILE REGEX: matching lines so far.
count() { grep -c -- "$2" "$1" 2>/dev/null || true; }
# wait_more FILE REGEX N: bounded wait until more than N lines match.
wait_more() {
    for _ in $(seq 400); do [ "$(count "$1" "$2")" -gt "$3" ] && return 0; sleep 0.025; done
    return 1
}
UP='"event":"cluster".*"state":"up"'
DOWN='"event":"cluster".*"state":"down"'

# listen NAME SERVER [WHO]: NAME waits for one peer, says "hello from
# NAME" until alice has it (datagrams: a line may be lost, as on any
# path, or reach a peer whose side of the session is not up yet); WHO
# (default NAME) is whose key it has; LISTEN_ARGS: more listen options.
listen() {
    local who=${3:-$1}
    rm -f "$TMP/stop" "$TMP/$who.ev"
    (while [ ! -e "$TMP/stop" ]; do [ -s "$TMP/alice.out" ] || echo "hello from $1"; sleep 0.1; done) |
        XDG_CONFIG_HOME="$TMP/$who" "$PUNCH" --server "$2" --name "$1" --events "$TMP/$who.ev" \
            listen --datagram ${LISTEN_ARGS:-} >"$TMP/$who.out" 2>"$TMP/$who.err" &
    BOB=$!
    wait_grep "$TMP/$who.ev" '"event":"registered"' || { cat "$TMP/$who.err"; fail "$1 did not register"; }
}
stop_listen() { touch "$TMP/stop"; kill -TERM "$BOB" 2>/dev/null; wait "$BOB" 2>/dev/null; BOB=; }
# connect PEER SERVER ARGS...: alice says "hello PEER", waits for an answer.
connect() {
    local peer=$1 server=$2; shift 2
    rm -f "$TMP/alice.out"
    (for _ in $(seq 200); do [ -s "$TMP/alice.out" ] && [ -s "$TMP/$peer.out" ] && break
         echo "hello $peer"; sleep 0.1; done) |
        XDG_CONFIG_HOME="$TMP/alice" timeout --foreground 30 "$PUNCH" --server "$server" \
            --name alice --events "$TMP/alice.ev" connect --datagram "$peer" "$@" \
            >"$TMP/alice.out" 2>"$TMP/alice.err"
}
# refused_connect PEER SERVER: alice's connect, expected to be refused
# (stdin stays open without holding the test up once punch exits).
refused_connect() {
    XDG_CONFIG_HOME="$TMP/alice" timeout --foreground 10 "$PUNCH" --server "$2" --name alice \
        --events "$TMP/alice.ev" connect --datagram "$1" --timeout 5 \
        >"$TMP/alice.out" 2>"$TMP/alice.err" < <(exec sleep 12) && return 1
    grep -q "no such peer" "$TMP/alice.err" || fail "alice was not told: $(cat "$TMP/alice.err")"
}
member_id() { grep -o '"event":"cluster".*' "$TMP/m$1.ev" | head -1 | grep -o '"member":"[0-9a-f]*"' | cut -d'"' -f4; }
