#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The bash completions of punch and punchd: sourced into bash, asked as
# bash asks on TAB (COMP_WORDS, COMP_CWORD), they offer what is typed
# next: commands, a command's options, option values, peers from
# known_peers; and together they offer every long option the --help texts
# name (punch's and each command's, punchd's).
#
# usage: completion.sh DIR    (DIR holds punch and punchd; env PUNCH, PUNCHD)
set -u
dir=${1:?usage: completion.sh DIR}
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# shellcheck source=/dev/null
. "$dir/punch" && . "$dir/punchd" || fail "the completions do not source"

# complete_line FUNCTION WORDS...: what FUNCTION offers for the last word.
complete_line() {
    local fn=$1; shift
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    "$fn"
    printf '%s\n' "${COMPREPLY[@]}" | sort | paste -sd' '
}
expect() { # expect WANT FUNCTION WORDS...
    local want=$1 got; shift
    got=$(complete_line "$@")
    [ "$got" = "$want" ] || fail "'${*:2}<TAB>' offers '$got', want '$want'"
}
expect 'connect' _punch punch con
expect 'listen' _punch punch --server example.org:3478 --name bob li
expect '--keep-open' _punch punch listen --keep
expect 'debug' _punch punch --log-level de
expect 'natpmp' _punch punch --portmap nat
expect 'connect listen' _punch punch vpn ''
mkdir -p "$TMP/conf/punch"
printf 'bob %s\nbobby %s\ncarol %s\n' "$(printf 'A%.0s' {1..43})=" "$(printf 'B%.0s' {1..43})=" \
    "$(printf 'C%.0s' {1..43})=" >"$TMP/conf/punch/known_peers"
XDG_CONFIG_HOME=$TMP/conf expect 'bob bobby' _punch punch --name alice connect bo
expect '--max-tcp --max-tcp-per-ip' _punchd punchd --max-t
expect 'off' _punchd punchd --second-port o
touch "$TMP/punchd.conf"
expect "$TMP/punchd.conf" _punchd punchd --config "$TMP/punchd."
pass "punch: commands, options before and after the command, levels, portmap modes, vpn's modes, peers from known_peers; punchd: options, --second-port off, --config files"

# Every option of every --help is offered somewhere.
offered() { # offered FUNCTION WORDS...: the options offered for '-'
    complete_line "$@" | tr ' ' '\n'
}
{
    offered _punch punch -
    for cmd in $(compgen -W "$_punch_commands"); do offered _punch punch "$cmd" -; done
} | sort -u >"$TMP/punch.offered"
offered _punchd punchd - | sort -u >"$TMP/punchd.offered"
options() { grep -oE -- '--[a-z][a-z0-9-]*[a-z0-9]' | sort -u; }
{
    "$PUNCH" --help
    "$PUNCH" --help | sed -n '/^Commands:/,/^$/p' | awk 'NF > 1 {print $1}' |
        while read -r cmd; do
            grep -qxF "$cmd" <<<"$(compgen -W "$_punch_commands")" || fail "command $cmd is not completed"
            "$PUNCH" "$cmd" --help
        done
} | sed 's/punchd --[a-z-]*//g' | options >"$TMP/punch.help"  # punchd's named in punch's help
"$PUNCHD" --help | options >"$TMP/punchd.help"
missing=$(comm -23 "$TMP/punch.help" "$TMP/punch.offered" | paste -sd' ')
[ -z "$missing" ] || fail "punch's completion does not offer: $missing"
missing=$(comm -23 "$TMP/punchd.help" "$TMP/punchd.offered" | paste -sd' ')
[ -z "$missing" ] || fail "punchd's completion does not offer: $missing"
pass "every option of punch's $(wc -l <"$TMP/punch.help") and punchd's $(wc -l <"$TMP/punchd.help") in --help is offered"
