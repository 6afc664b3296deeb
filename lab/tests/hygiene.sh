#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `down` leaves nothing behind — no namespace, no link in the host's
# namespace, no process — after a clean run, after daemons were killed with
# SIGKILL, and after `up` itself was killed halfway. Two labs run side by side
# without touching each other.
. "$(dirname "$0")/lib.sh"

root_links() { ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | sort; }
ours() { ip netns list | awk '{ print $1 }' | grep "^$1-" || true; }
our_procs() { our_procs_all "$1" | sort -u; }
our_procs_all() {   # processes inside our namespaces or naming our state directory
    local n p
    for n in $(ours "$1"); do ip netns pids "$n"; done
    for p in $(pgrep -f "/run/punch-lab/$1/" || true); do
        st=$(cat /proc/$p/stat 2>/dev/null) || continue; st=${st##*) }
        [ "${st%% *}" = Z ] || echo "$p"
    done
}
check_clean() {   # check_clean PREFIX WHAT
    [ -z "$(ours "$1")" ] || fail "$2: namespaces left: $(ours "$1" | tr '\n' ' ')"
    local new; new=$(comm -13 "$TMP/links.before" <(root_links))
    [ -z "$new" ] || fail "$2: new links in the host namespace: $new"
    [ -z "$(our_procs "$1")" ] || fail "$2: processes left: $(our_procs "$1" | tr '\n' ' ')"
    [ ! -e "/run/punch-lab/$1" ] || fail "$2: state directory left"
    ok "$2: nothing left (namespaces, host links, processes, state)"
}
root_links >"$TMP/links.before"
echo "before: $(ip netns list | wc -l) namespaces, $(wc -l <"$TMP/links.before") host links"

# 1. clean cycle: linkem on three links, a user's daemon in alice
lab up different-nats --delay 1ms --loss 1%
n=$(ours "$TEST_PREFIX" | wc -l)
[ "$n" = 11 ] || fail "expected 11 namespaces (8 nodes + 3 links), got $n"
[ "$(our_procs "$TEST_PREFIX" | wc -l)" = 3 ] || fail "expected 3 linkem processes"
lab exec alice -- sleep 1000 </dev/null >/dev/null 2>&1 &
for ((i = 0; i < 500; i++)); do [ "$(our_procs "$TEST_PREFIX" | wc -l)" = 4 ] && break; sleep 0.01; done
lab down
check_clean "$TEST_PREFIX" "clean down"

# 2. crash: every daemon killed with SIGKILL, then down
lab up same-nat --delay 1ms
kill -9 $(our_procs "$TEST_PREFIX")
lab down
check_clean "$TEST_PREFIX" "down after kill -9 of the link emulators"

# 3. crash of up itself, halfway (after some namespaces and a linkem exist)
"$PUNCH_LAB" --prefix "$TEST_PREFIX" up multi-level --delay 1ms >/dev/null 2>&1 &
up=$!
for ((i = 0; i < 1000; i++)); do
    [ "$(ours "$TEST_PREFIX" | wc -l)" -ge 6 ] && [ -n "$(our_procs "$TEST_PREFIX")" ] && break
    sleep 0.005
done
kill -9 $up 2>/dev/null || true
wait $up 2>/dev/null || true
echo "killed up halfway: $(ours "$TEST_PREFIX" | wc -l) namespaces, $(our_procs "$TEST_PREFIX" | wc -l) processes"
lab up public 2>/dev/null && fail "up over a half-built lab should refuse"
lab down
check_clean "$TEST_PREFIX" "down after kill -9 of up halfway"

# 4. two labs at once, same topology: both work, one's down spares the other
other=${TEST_PREFIX}b
lab2() { "$PUNCH_LAB" --prefix "$other" "$@"; }
trap 'lab2 down >/dev/null 2>&1 || true; cleanup' EXIT
lab up different-nats --delay-a 1ms
lab2 up different-nats --delay-a 1ms
lab exec alice -- ping -c 1 -W 2 -q 198.51.100.1 >/dev/null || fail "lab 1 alice cannot reach server"
lab2 exec alice -- ping -c 1 -W 2 -q 198.51.100.1 >/dev/null || fail "lab 2 alice cannot reach server"
lab down
lab2 exec alice -- ping -c 1 -W 2 -q 198.51.100.1 >/dev/null || fail "lab 2 broken by lab 1's down"
check_clean "$TEST_PREFIX" "parallel labs: first one down"
lab2 down
check_clean "$other" "parallel labs: second one down"
