# SPDX-License-Identifier: MIT
# Shared by the shell tests: start punchd, wait for its events, stop it.
# Tests never sleep to wait: they block on punchd's own event stream with a
# bounded read.
set -u
PUNCHD=${PUNCHD:?set PUNCHD to the punchd binary}
TMP=$(mktemp -d)
PUNCHD_PID=
trap 'stop_punchd; rm -rf "$TMP"' EXIT

# Programs under test run as `timeout --foreground N PROG`: without
# --foreground, timeout follows the TERM it relays with a SIGCONT to the
# whole process group, and a SIGCONT landing while LeakSanitizer stops the
# exiting program for its leak check cancels the tracer's SIGSTOP, so both
# wait for each other forever (seen in CI under ASan: interop.allow hung).
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }
# record FILE N: N in FILE by rename, so a reader never sees it empty
record() { echo "$2" >"$1.tmp" && mv -f "$1.tmp" "$1"; }

# start_punchd ARGS...: run punchd with its events on a pipe; sets PD_LISTEN
# to the addresses from its "started" event, one per line.
start_punchd() {
    coproc PD { exec "$PUNCHD" --events - "$@" 2>>"$TMP/punchd.err"; }
    PUNCHD_PID=$PD_PID
    # bash forgets PD once punchd exits; keep the pipe on a descriptor of ours.
    exec {PD_OUT}<&"${PD[0]}"
    local line
    line=$(next_event started) || { cat "$TMP/punchd.err" >&2; fail "punchd did not start"; }
    PD_LISTEN=$(grep -o '"listen":\[[^]]*\]' <<<"$line" | grep -oE '"[^"]+"' | tr -d '"' | grep -v '^listen$')
}

# next_event NAME: print the next event line named NAME (10 s bound).
next_event() {
    local line
    while IFS= read -r -t 10 -u "$PD_OUT" line; do
        case "$line" in *"\"event\":\"$1\""*) echo "$line"; return 0 ;; esac
    done
    return 1
}

# port_of N: the port of the Nth listen address (1-based).
port_of() { sed -n "${1}p" <<<"$PD_LISTEN" | sed 's/.*://'; }

# json_field LINE KEY: a number field of an event line.
json_field() { grep -o "\"$2\":[0-9]*" <<<"$1" | cut -d: -f2; }

stop_punchd() {
    [ -n "${PUNCHD_PID:-}" ] || return 0
    kill "$PUNCHD_PID" 2>/dev/null
    wait "$PUNCHD_PID" 2>/dev/null
    PUNCHD_PID=
}

# wait_grep FILE REGEX: bounded poll (10 s) until a line of FILE matches.
# expect_tcp_per_source_limit WHAT HOST PORT OTHER SOURCE...: against a
# punchd started with --max-tcp 20 --max-tcp-per-ip 4 on HOST:PORT, ten
# connections from SOURCE... (one IP, or one IPv6 /64) keep 4, one from
# OTHER is served, and the counters say 6 refused per source, none full.
expect_tcp_per_source_limit() {
    local what=$1 host=$2 port=$3 other=$4 out c
    shift 4
    out=$(python3 "$(dirname "${BASH_SOURCE[0]}")/tcp_probe.py" "$host" "$port" "$other" "$@" 2>&1) ||
        fail "$what: $out"
    kill -USR1 "$PUNCHD_PID"
    c=$(next_event counters) || fail "no counters event"
    [ "$(json_field "$c" tcp_refused_per_ip)" = 6 ] && [ "$(json_field "$c" tcp_refused_full)" = 0 ] ||
        fail "$what: want tcp_refused_per_ip 6, tcp_refused_full 0 in $c"
}

wait_grep() { for _ in $(seq 400); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.025; done; return 1; }

# free_udp_port: a port the kernel just gave out and took back.
free_udp_port() {
    python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
