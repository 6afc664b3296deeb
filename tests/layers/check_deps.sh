#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The layer graph is one-way and each layer uses only what it declares
# (CMakeLists.txt: punch_layer's DEPS; SPEC.md §2). Three checks:
#  - the declared graph has no cycle;
#  - a layer's sources include project headers ("X/...", X a layer) only of
#    itself and of the layers it depends on, directly or through others;
#  - its compiled library calls only functions defined in those layers
#    (what it leaves undefined and another layer's library defines).
#
# and, with CEILINGS, a fourth:
#  - a layer named there uses no more than it lists, however the graph is
#    declared (io may not gain crypto by a line in CMakeLists.txt).
#
# usage: check_deps.sh MANIFEST [CEILINGS]
# MANIFEST (written by tests/CMakeLists.txt), one layer a line:
#   NAME SOURCE_DIR LIBRARY DEP...      (SOURCE_DIR or LIBRARY "-": none)
# CEILINGS (tests/layers/ceilings), one layer a line: NAME LAYER...
set -u
{ [ $# = 1 ] || { [ $# = 2 ] && [ -f "$2" ]; }; } && [ -f "$1" ] ||
    { echo "usage: check_deps.sh MANIFEST [CEILINGS]" >&2; exit 2; }
declare -A dir lib deps allowed
names=()
while read -r name d l rest; do
    [ -n "$name" ] || continue
    names+=("$name")
    dir[$name]=$d
    lib[$name]=$l
    deps[$name]=$rest
done <"$1"
fail=0

for n in "${names[@]}"; do
    for d in ${deps[$n]}; do
        [ -n "${dir[$d]+x}" ] || { echo "check_deps: $n depends on '$d', which is no layer" >&2; fail=1; }
    done
done

# Everything n may use: its dependencies' closure. A layer met again on the
# way down from itself is a cycle.
closure() {
    local n=$1 path=$2 d
    for d in ${deps[$n]}; do
        [ -n "${dir[$d]+x}" ] || continue
        case " $path " in
            *" $d "*) echo "check_deps: the layer graph has a cycle: $path $d" >&2; fail=1; continue ;;
        esac
        case " ${allowed[$root]} " in *" $d "*) continue ;; esac
        allowed[$root]+=" $d"
        closure "$d" "$path $d"
    done
}
for root in "${names[@]}"; do
    allowed[$root]=""
    closure "$root" "$root"
done

# The ceilings: what a layer may use at most, whatever it declares.
if [ $# = 2 ]; then
    while read -r name most; do
        case "$name" in ''|'#'*) continue ;; esac
        [ -n "${dir[$name]+x}" ] || { echo "check_deps: $2 names '$name', which is no layer" >&2; fail=1; continue; }
        for d in ${allowed[$name]}; do
            case " $most " in *" $d "*) continue ;; esac
            echo "check_deps: $name may use $d, above its ceiling ($2: $name${most:+ $most})" >&2
            fail=1
        done
    done <"$2"
fi

may_use() { # may_use LAYER OTHER
    [ "$1" = "$2" ] && return 0
    case " ${allowed[$1]} " in *" $2 "*) return 0 ;; esac
    return 1
}

# Includes: "X/..." where X names a layer.
for n in "${names[@]}"; do
    [ "${dir[$n]}" != - ] || continue
    while IFS=: read -r file line text; do
        [[ $text =~ \"([^/\"]+)/ ]] || continue
        x=${BASH_REMATCH[1]}
        [ -n "${dir[$x]+x}" ] || continue
        if ! may_use "$n" "$x"; then
            echo "check_deps: $n may not use $x: $file:$line: $text" >&2
            fail=1
        fi
    done < <(grep -nEH '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^/"]+/' \
                 "${dir[$n]}"/*.c "${dir[$n]}"/*.h 2>/dev/null)
done

# Symbols: which layer's library defines each function.
declare -A owner
for n in "${names[@]}"; do
    [ "${lib[$n]}" != - ] || continue
    [ -f "${lib[$n]}" ] || { echo "check_deps: no such library: ${lib[$n]}" >&2; fail=1; continue; }
    while read -r sym; do
        owner[$sym]=$n
    done < <(nm --defined-only --extern-only --format=just-symbols "${lib[$n]}" | sort -u)
done
for n in "${names[@]}"; do
    [ "${lib[$n]}" != - ] && [ -f "${lib[$n]}" ] || continue
    while read -r sym; do
        o=${owner[$sym]:-}
        [ -n "$o" ] || continue # the C library, libsodium, ...
        may_use "$n" "$o" ||
            { echo "check_deps: $n ($(basename "${lib[$n]}")) calls $sym of $o, which it may not use" >&2; fail=1; }
    done < <(nm -u --format=just-symbols "${lib[$n]}" | sed 's/@.*//' | sort -u)
done

if [ "$fail" = 0 ]; then
    for n in "${names[@]}"; do
        echo "check_deps: $n uses${allowed[$n]:- nothing of ours}"
    done
fi
exit "$fail"
