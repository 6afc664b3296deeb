#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# punchd reads a config file only when --config names it (issue 12): with
# the package's /etc/punch/punchd.conf present, a punchd started without
# --config (by hand, by a test) takes none of its settings, and says so on
# stderr; with --config the same file is read and named. In a mount
# namespace of its own, a tmpfs over /etc/punch holds a file that would
# make punchd refuse to start if it were read.
if [ -z "${PUNCH_IN_MOUNTNS:-}" ]; then
    [ "$(id -u)" = 0 ] || { echo "SKIP: needs root for a mount namespace"; exit 77; }
    exec unshare --mount --propagation private env PUNCH_IN_MOUNTNS=1 bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
mkdir -p /etc/punch
mount -t tmpfs tmpfs /etc/punch || fail "cannot mount a tmpfs over /etc/punch"
printf 'listen = 127.0.0.1:0\nmax-peers = lots\n' >/etc/punch/punchd.conf

# Without --config: the file is not read; punchd starts and says so.
start_punchd --listen 127.0.0.1:0 --log-level info
stop_punchd
grep -q "settings from the command line only (no --config)" "$TMP/punchd.err" ||
    fail "punchd did not say it read no config file: $(cat "$TMP/punchd.err")"
grep -q "punchd.conf" "$TMP/punchd.err" && fail "punchd without --config named a config file: $(cat "$TMP/punchd.err")"
pass "without --config, /etc/punch/punchd.conf (a bad one) was not read; punchd said so"

# With it: read, and its bad line named.
out=$(timeout --foreground 10 "$PUNCHD" --config /etc/punch/punchd.conf --listen 127.0.0.1:0 2>&1)
rc=$?
[ "$rc" = 2 ] && grep -q "^punchd: /etc/punch/punchd.conf:2: --max-peers: 'lots'" <<<"$out" ||
    fail "--config /etc/punch/punchd.conf was not read: $rc '$out'"
printf 'listen = 127.0.0.1:0\nmax-peers = 7\n' >/etc/punch/punchd.conf
: >"$TMP/punchd.err"
start_punchd --config /etc/punch/punchd.conf --log-level info
stop_punchd
grep -q "settings from /etc/punch/punchd.conf, then the command line" "$TMP/punchd.err" ||
    fail "punchd did not name the config file it read: $(cat "$TMP/punchd.err")"
pass "with --config the file is read (a bad line named FILE:LINE) and named on stderr"
