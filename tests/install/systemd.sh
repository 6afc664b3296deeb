#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# punchd.service as cmake --install writes it: systemd-analyze verify finds
# nothing wrong (its ExecStart pointed at the punchd just built, its
# Documentation= at the man page just installed), it is Type=notify with
# ExecReload sending SIGHUP, and its hardening is measured with
# systemd-analyze security (the exposure printed, held to at most 2.0).
# No systemd needs to run. Skipped (77) without systemd-analyze.
#
# usage: systemd.sh BUILD_DIR    (env PUNCHD)
set -u
build=${1:?usage: systemd.sh BUILD_DIR}
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }
command -v systemd-analyze >/dev/null || { echo "skip: no systemd-analyze"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" --component server >"$tmp/install.log" 2>&1 ||
    fail "cmake --install --component server: $(cat "$tmp/install.log")"
unit=$(find "$tmp/prefix" -name punchd.service -print -quit)
[ -n "$unit" ] || fail "no punchd.service installed: $(cat "$tmp/install.log")"
conf=$(find "$tmp/prefix" -name punchd.conf -print -quit)
[ -n "$conf" ] || fail "no punchd.conf installed"
"$PUNCHD" --config "$conf" --listen 127.0.0.1:0 --key "$tmp/key" --help >/dev/null ||
    fail "punchd does not take the installed $conf"
grep -qx 'Type=notify' "$unit" && grep -qx 'ExecReload=/bin/kill -HUP $MAINPID' "$unit" &&
    grep -qx 'DynamicUser=yes' "$unit" || fail "$unit: not Type=notify with a SIGHUP reload and a dynamic user"
sed "s|^ExecStart=[^ ]*|ExecStart=$PUNCHD|" "$unit" >"$tmp/punchd.service"
out=$(MANPATH=$tmp/prefix/share/man systemd-analyze verify "$tmp/punchd.service" 2>&1) ||
    fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify warns: $out"
exposure=$(systemd-analyze security --offline=yes "$tmp/punchd.service" 2>&1 |
    sed -n 's/.*Overall exposure level for punchd.service: \([0-9.]*\).*/\1/p')
[ -n "$exposure" ] || fail "systemd-analyze security said no exposure level"
awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' || fail "exposure $exposure, want at most 2.0"
pass "punchd.service: systemd-analyze verify clean, Type=notify, exposure $exposure (0 best, 10 worst)"
