#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Size limits of the sources (STYLE.md, issue 11): no file under src/ over
# MAX_FILE lines, no function over MAX_FUNC lines (from the first line of its
# signature to its closing brace). The folders named with --strict fail the
# check when over; every other folder under the root is reported only.
# A function is what the code style writes: a signature starting in column
# 0, its body opened by "{" and closed by "}" alone in column 0.
#
# usage: check_sizes.sh --root SRC_DIR [--strict NAME]... [--max-file N] [--max-func N]
#        check_sizes.sh --lengths FILE...   (print LENGTH NAME FILE per function)
set -u
root="" max_file=1000 max_func=80 strict=() lengths=0
while [ $# -gt 0 ]; do
    case "$1" in
        --root) root="$2"; shift 2 ;;
        --strict) strict+=("$2"); shift 2 ;;
        --max-file) max_file="$2"; shift 2 ;;
        --max-func) max_func="$2"; shift 2 ;;
        --lengths) lengths=1; shift; break ;;
        *) echo "check_sizes: unknown argument '$1'" >&2; exit 2 ;;
    esac
done

# LENGTH NAME FILE for every function of the files given.
function_lengths() {
    awk '
        FNR == 1 { in_fn = 0; sig = 0; text = "" }
        !in_fn && /^[A-Za-z_]/ && !/;[[:space:]]*$/ { if (!sig) { sig = FNR; text = "" } }
        !in_fn && sig { text = text " " $0 }
        !in_fn && /;[[:space:]]*$/ { sig = 0 }
        !in_fn && /^\{$/ && sig {
            in_fn = 1; start = sig
            t = text; gsub(/__attribute__\(\([^;{]*\)\)\)/, "", t)
            name = "?"
            if (match(t, /[A-Za-z_][A-Za-z_0-9]*[[:space:]]*\(/)) {
                name = substr(t, RSTART, RLENGTH); sub(/[[:space:]]*\($/, "", name)
            }
            next
        }
        in_fn && /^\}$/ { print FNR - start + 1, name, FILENAME; in_fn = 0; sig = 0 }
    ' "$@"
}

if [ "$lengths" = 1 ]; then
    function_lengths "$@"
    exit 0
fi
[ -d "$root" ] || { echo "check_sizes: no such folder: '$root'" >&2; exit 2; }

is_strict() {
    local d
    for d in "${strict[@]}"; do [ "$d" = "$1" ] && return 0; done
    return 1
}

fail=0 reported=0
for dir in "$root"/*/; do
    name=$(basename "$dir")
    files=("$dir"*.c "$dir"*.h)
    [ -e "${files[0]}" ] || continue
    files=($(ls "$dir"*.c "$dir"*.h 2>/dev/null))
    if is_strict "$name"; then kind="over"; else kind="over (reported only)"; fi
    while read -r n f; do
        [ "$f" = total ] && continue
        [ "$n" -gt "$max_file" ] || continue
        echo "check_sizes: $kind: ${f#"$root"/} has $n lines (at most $max_file)"
        if is_strict "$name"; then fail=1; else reported=$((reported + 1)); fi
    done < <(wc -l "${files[@]}")
    while read -r n fn f; do
        [ "$n" -gt "$max_func" ] || continue
        echo "check_sizes: $kind: ${f#"$root"/}: $fn has $n lines (at most $max_func)"
        if is_strict "$name"; then fail=1; else reported=$((reported + 1)); fi
    done < <(function_lengths "${files[@]}")
done

if [ "$fail" = 0 ]; then
    echo "check_sizes: strict folders (${strict[*]}) within $max_file lines a file," \
         "$max_func a function; $reported over elsewhere (reported only)"
fi
exit "$fail"
