# SPDX-License-Identifier: MIT
# Shared by the lab tests: a lab of our own under a unique prefix, torn down
# on any exit; helpers that poll (bounded) instead of sleeping.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "SKIP: lab tests need root"; exit 77; }
ip netns list >/dev/null 2>&1 || { echo "SKIP: no network namespaces"; exit 77; }
command -v ping >/dev/null || { echo "SKIP: no ping (scripts/setup installs iputils-ping)"; exit 77; }
TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PUNCH_LAB=${PUNCH_LAB:-$TESTS_DIR/../punch-lab}
UDP_TOOL=$TESTS_DIR/udp_tool.py
# t + test tag + our PID: unique among concurrent runs, [a-z0-9] only
TEST_PREFIX=t$(basename "$0" .sh | tr -dc 'a-z' | cut -c1-3)$$
TMP=$(mktemp -d)
lab() { "$PUNCH_LAB" --prefix "$TEST_PREFIX" "$@"; }
cleanup() { local rc=$?; lab down >/dev/null 2>&1 || true; rm -rf "$TMP"; exit $rc; }
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
# record FILE N: N in FILE by rename, so a reader never sees it empty
record() { echo "$2" >"$1.tmp" && mv -f "$1.tmp" "$1"; }
# wait_for FILE [SECONDS]
wait_for() {
    local i
    for ((i = 0; i < ${2:-5} * 200; i++)); do [ -s "$1" ] && return 0; sleep 0.005; done
    fail "timed out waiting for $1"
}
# start_echo PREFIX_TAG NODE ADDR:PORT... — UDP echo of the observed source
start_echo() {
    local node=$1; shift
    lab exec "$node" -- python3 "$UDP_TOOL" echo --ready "$TMP/echo-$node.ready" "$@" \
        </dev/null >"$TMP/echo-$node.log" 2>&1 &
    wait_for "$TMP/echo-$node.ready"
}
udp() { local node=$1; shift; lab exec "$node" -- python3 "$UDP_TOOL" run "$@"; }

# punchd's addresses in run_pair: two IPs (RFC 5780) unless a test says otherwise.
PAIR_PUNCHD_ARGS=(--listen 198.51.100.1:3478 --alt 198.51.100.2)
# run_pair TOPOLOGY-ARGS... [-- PUNCH-GLOBAL-OPTIONS...]: a lab with punchd
# (PAIR_PUNCHD_ARGS) on the server, `punch listen` on bob and `punch connect bob` on
# alice, each repeating a line until the other side has it, then 3 s for
# upgrades; leaves $TMP/c/{alice,bob}.{ev,out,err} and PAIR_RC (connect's
# exit code), and takes the lab down.
run_pair() {
    local args=() opts=() i
    while [ $# -gt 0 ] && [ "$1" != -- ]; do args+=("$1"); shift; done
    [ $# -gt 0 ] && shift && opts=("$@")
    rm -rf "$TMP/c" && mkdir -p "$TMP/c"
    lab up "${args[@]}" >/dev/null
    lab exec server -- "$PUNCHD" "${PAIR_PUNCHD_ARGS[@]}" \
        --key "$TMP/c/server.key" --events "$TMP/c/punchd.ev" 2>/dev/null </dev/null &
    wait_for "$TMP/c/punchd.ev"
    # Datagrams may be lost (loss cases): each side repeats its line until
    # the other side has it, as a datagram application would.
    (while [ ! -e "$TMP/c/stop" ]; do [ -s "$TMP/c/alice.out" ] || echo "hello alice"; sleep 0.3; done) |
        lab exec bob -- env XDG_CONFIG_HOME="$TMP/c/bob" "$PUNCH" --server 198.51.100.1 \
            --name bob --events "$TMP/c/bob.ev" "${opts[@]}" listen --datagram >"$TMP/c/bob.out" \
            2>"$TMP/c/bob.err" &
    local bob=$!
    for ((i = 0; i < 400; i++)); do grep -q registered "$TMP/c/bob.ev" 2>/dev/null && break; sleep 0.025; done
    PAIR_RC=0
    (for ((i = 0; i < 100; i++)); do [ -s "$TMP/c/alice.out" ] && [ -s "$TMP/c/bob.out" ] && break
         echo "hello bob"; sleep 0.3; done; sleep 3) |
        lab exec alice -- env XDG_CONFIG_HOME="$TMP/c/alice" timeout --foreground 40 "$PUNCH" \
            --server 198.51.100.1 --name alice --events "$TMP/c/alice.ev" "${opts[@]}" \
            connect bob --datagram --timeout 30 >"$TMP/c/alice.out" 2>"$TMP/c/alice.err" || PAIR_RC=$?
    touch "$TMP/c/stop"
    kill -TERM "$bob" 2>/dev/null || true
    wait "$bob" 2>/dev/null || true
    lab down >/dev/null
}
# last_path SIDE: "kind/technique" of SIDE's last path event in run_pair
last_path() {
    local last
    last=$(grep '"event":"path"' "$TMP/c/$1.ev" | tail -1)
    echo "$(grep -o '"kind":"[^"]*"' <<<"$last" | cut -d'"' -f4)/$(grep -o '"technique":"[^"]*"' <<<"$last" | cut -d'"' -f4)"
}
# birthday_runs N TOPOLOGY...: N run_pairs, each checked (both got the
# other's line, and PAIR_CHECK, a function, when set) and ending either
# direct by birthday on both sides (or on one, hole punching on the
# other) or on the relay on both; sets
# BIRTHDAY_DIRECT (how many went direct) and BIRTHDAY_TIMES (alice's first
# direct path of each, ms).
birthday_runs() {
    local n=$1 r a b; shift
    BIRTHDAY_DIRECT=0 BIRTHDAY_TIMES=()
    for ((r = 0; r < n; r++)); do
        run_pair "$@"
        [ "$PAIR_RC" = 0 ] || fail "run $r: connect exited $PAIR_RC: $(cat "$TMP/c/alice.err")"
        [ -z "${PAIR_CHECK:-}" ] || "$PAIR_CHECK" "$r"
        [ "$(sort -u "$TMP/c/bob.out")" = "hello bob" ] || fail "run $r: bob got '$(cat "$TMP/c/bob.out")'"
        [ "$(sort -u "$TMP/c/alice.out")" = "hello alice" ] || fail "run $r: alice got '$(cat "$TMP/c/alice.out")'"
        a=$(last_path alice) b=$(last_path bob)
        # A random probe may land on the port the other side's own socket
        # opened toward the prober (1 of the 257 it opened): that side then
        # calls its path hole punching, the prober birthday.
        if [[ "$a $b" =~ ^direct/(birthday|hole-punch)\ direct/(birthday|hole-punch)$ && "$a $b" == *birthday* ]]; then
            BIRTHDAY_DIRECT=$((BIRTHDAY_DIRECT + 1))
            BIRTHDAY_TIMES+=("$(first_path_ms alice direct)")
        elif [ "$a" != relay/relay ] || [ "$b" != relay/relay ]; then
            fail "run $r: ended $a / $b: neither birthday nor relay"
        fi
    done
}
# first_path_ms SIDE KIND: t_ms of SIDE's first path event of KIND
first_path_ms() {
    grep '"event":"path"' "$TMP/c/$1.ev" | grep "\"kind\":\"$2\"" | head -1 | grep -o '"t_ms":[0-9]*' | cut -d: -f2
}
