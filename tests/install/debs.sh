#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Debian packages of scripts/package, as a user gets them: installed on
# this machine with apt, the programs run from /usr/bin and /usr/sbin,
# examples/punch_chat.c built against libpunch-dev (pkg-config and
# find_package) and run through the installed punchd, then every package
# removed again. scripts/test runs it (it changes the machine, so it is no
# CTest test); it needs root or sudo.
#
# usage: tests/install/debs.sh DIR    (DIR holds the .deb files)
set -u
dir=$(cd "${1:?usage: debs.sh DIR}" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
packages=(libpunch0 libpunch-dev punch punchd punch-nat)
sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
apt_get() {
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=120 -y -qq "$@"
}
tmp=$(mktemp -d)
# The packaged config keeps punchd's key in /var/lib/punchd: an installed
# punchd run here without --key makes it. Gone with the packages unless it
# was there before.
state_before=$([ -e /var/lib/punchd ] && echo yes)
cleanup() {
    [ -n "$state_before" ] || $sudo rm -rf /var/lib/punchd
    apt_get purge "${packages[@]}" >"$tmp/purge.log" 2>&1 ||
        echo "debs: apt-get purge failed: $(cat "$tmp/purge.log")" >&2
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

debs=()
for p in "${packages[@]}"; do
    deb=$(ls "$dir/${p}"_*.deb 2>/dev/null | head -1)
    [ -n "$deb" ] || fail "no ${p}_*.deb in $dir"
    debs+=("$deb")
done
apt_get install "${debs[@]}" >"$tmp/install.log" 2>&1 || fail "apt-get install: $(cat "$tmp/install.log")"
pass "installed: $(dpkg-query -W -f='${Package} ${Version}\n' "${packages[@]}" | paste -sd, | sed 's/,/, /g')"

for p in /usr/bin/punch /usr/sbin/punchd /usr/sbin/punch-nat; do
    out=$("$p" --version 2>&1) || fail "$p --version: $out"
    pass "$p --version: $out"
done

# What operators get (issue 13): the man pages, the completions, the unit,
# the config file as a conffile that the installed punchd reads.
for page in punch punchd punch-nat; do
    man -w "$page" >/dev/null 2>&1 || fail "man $page: no page installed"
done
for f in /usr/share/bash-completion/completions/punch /usr/share/bash-completion/completions/punchd \
         /usr/lib/systemd/system/punchd.service /etc/punch/punchd.conf; do
    [ -f "$f" ] || fail "$f is not installed"
done
dpkg-query -W -f='${Conffiles}' punchd | grep -q '^ */etc/punch/punchd.conf ' ||
    fail "/etc/punch/punchd.conf is not a conffile of punchd"
if command -v systemd-analyze >/dev/null; then
    out=$(systemd-analyze verify /usr/lib/systemd/system/punchd.service 2>&1) && [ -z "$out" ] ||
        fail "systemd-analyze verify punchd.service: $out"
fi
/usr/sbin/punchd --config /etc/punch/punchd.conf --listen 127.0.0.1:0 --key "$tmp/server.key" --events "$tmp/ev" 2>"$tmp/punchd.err" &
pid=$!
for _ in $(seq 400); do grep -q '"event":"started"' "$tmp/ev" 2>/dev/null && break; sleep 0.025; done
kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
grep -q '"event":"started"' "$tmp/ev" || fail "/usr/sbin/punchd with /etc/punch/punchd.conf: $(cat "$tmp/punchd.err")"
pass "man punch, punchd, punch-nat; completions; punchd.service verified; /etc/punch/punchd.conf a conffile the installed punchd reads"

# A program of one's own against the installed libpunch-dev.
# shellcheck disable=SC2046 # pkg-config's words are separate flags
cc -std=c11 -Wall -Wextra -Werror "$src/examples/punch_chat.c" -o "$tmp/chat-pc" \
    $(pkg-config --cflags --libs punch) >"$tmp/cc.log" 2>&1 || fail "cc with pkg-config: $(cat "$tmp/cc.log")"
cmake -S "$src/examples" -B "$tmp/build" -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" >"$tmp/cmake.log" 2>&1 &&
    cmake --build "$tmp/build" >>"$tmp/cmake.log" 2>&1 || fail "find_package(punch): $(cat "$tmp/cmake.log")"
packaged=$(dpkg -L libpunch0 | grep '/libpunch\.so\.0$')
for chat in "$tmp/chat-pc" "$tmp/build/punch_chat"; do
    lib=$(ldd "$chat" | awk '$1 == "libpunch.so.0" {print $3}')
    [ -n "$lib" ] && [ "$lib" -ef "$packaged" ] ||
        fail "$chat loads libpunch.so.0 from '$lib', not libpunch0's $packaged"
    PUNCHD=/usr/sbin/punchd PUNCH_CHAT=$chat bash "$src/tests/interop/example.sh" >"$tmp/run.log" 2>&1 ||
        fail "$chat through /usr/sbin/punchd: $(cat "$tmp/run.log")"
done
pass "punch_chat built with pkg-config and find_package against $packaged, a line each way through /usr/sbin/punchd"

trap - EXIT
cleanup
for p in /usr/bin/punch /usr/sbin/punchd "$packaged" /etc/punch/punchd.conf; do
    [ ! -e "$p" ] || fail "$p is still there after apt-get purge"
done
pass "removed again: ${packages[*]}"
