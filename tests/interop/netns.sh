# SPDX-License-Identifier: MIT
# Sourced (instead of lib.sh) by the tests that run in a network namespace
# of their own where loopback is the only interface, so every probe stays
# on it: re-runs the test there (root only; SKIP otherwise), then lib.sh.
if [ -z "${PUNCH_IN_NETNS:-}" ]; then
    [ "$(id -u)" = 0 ] || { echo "SKIP: needs root for a network namespace"; exit 77; }
    exec unshare --net env PUNCH_IN_NETNS=1 bash "$0" "$@"
fi
ip link set lo up
. "$(dirname "$0")/lib.sh"
