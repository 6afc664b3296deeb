#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The man pages punch(1), punchd(8) and punch-nat(8): each renders with
# man -l without a warning from groff, and names every long option its
# program's --help names (for punch, each command's --help too), so the
# pages cannot drift from the programs. Every option a page names is one
# of the three programs' options.
#
# usage: man_pages.sh MANDIR    (env PUNCH, PUNCHD, PUNCH_NAT: the programs)
set -u
dir=${1:?usage: man_pages.sh MANDIR}
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }
command -v man >/dev/null || fail "man is missing (scripts/setup installs man-db)"

options() { grep -oE -- '--[a-z][a-z0-9-]*[a-z0-9]' | sort -u; }
# The help texts of punch and of each of its commands.
punch_help() {
    "$PUNCH" --help
    "$PUNCH" --help | sed -n '/^Commands:/,/^$/p' | awk 'NF > 1 {print $1}' |
        while read -r cmd; do "$PUNCH" "$cmd" --help; done
}
all_options=$( { punch_help; "$PUNCHD" --help; "$PUNCH_NAT" --help; } | options)

check_page() { # check_page PAGE HELP-TEXT
    local page=$dir/$1 help=$2 out text missing= opt
    [ -f "$page" ] || fail "no $page"
    out=$(MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null)
    [ -z "$out" ] || fail "$1: man -l warns: $out"
    text=$(MANWIDTH=80 man -E UTF-8 -l "$page" 2>/dev/null)
    grep -q '^NAME' <<<"$text" && grep -q '^SYNOPSIS' <<<"$text" || fail "$1 renders without NAME or SYNOPSIS"
    # The roff source as plain text: \- is a dash, font changes go.
    local plain
    plain=$(sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$page")
    for opt in $(options <<<"$help"); do
        grep -qE -- "${opt}([^a-z0-9-]|\$)" <<<"$plain" || missing+=" $opt"
    done
    [ -z "$missing" ] || fail "$1 does not describe:$missing"
    for opt in $(options <<<"$plain"); do
        grep -qxF -- "$opt" <<<"$all_options" || fail "$1 names $opt, which no program has"
    done
    pass "$1: renders without warnings ($(wc -l <<<"$text") lines), describes its $(options <<<"$help" | wc -l) options"
}
check_page punch.1 "$(punch_help)"
check_page punchd.8 "$("$PUNCHD" --help)"
check_page punch-nat.8 "$("$PUNCH_NAT" --help)"
