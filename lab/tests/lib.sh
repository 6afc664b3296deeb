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
