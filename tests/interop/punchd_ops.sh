#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# punchd for operators (issue 13), the real binary on loopback: the config
# file (a flag overrides a key, a bad line is named FILE:LINE), --metrics
# scraped with curl (counters move after a registration by the real punch;
# a garbage request is a counted drop), SIGHUP (the events file rotated and
# reopened, the peer still registered), readiness on a NOTIFY_SOCKET the
# test listens on, and timestamps on log lines unless stderr is the journal.
. "$(dirname "$0")/lib.sh"
PUNCH=${PUNCH:?set PUNCH to the punch binary}
command -v curl >/dev/null || fail "curl is missing (scripts/setup installs it)"

# --- the config file -------------------------------------------------------
conf="$TMP/punchd.conf"
cat >"$conf" <<CONF
# punchd settings for this test
listen = 127.0.0.1:0
log-level = error    # a comment after a value
max-peers = 7
no-relay
events = $TMP/from-conf.ev
CONF
# run_conf NAME ARGS...: punchd until its started event in $TMP/NAME.ev,
# then stopped; its stderr in $TMP/NAME.err.
run_conf() {
    local name=$1 pid; shift
    "$PUNCHD" "$@" 2>"$TMP/$name.err" &
    pid=$!
    wait_grep "$TMP/$name.ev" '"event":"started"' || { kill $pid; fail "$name: punchd did not start: $(cat "$TMP/$name.err")"; }
    kill $pid; wait $pid
}
run_conf file --config "$conf" --events "$TMP/file.ev"
[ ! -e "$TMP/from-conf.ev" ] || fail "the file's events key won over --events"
grep -q '"listen":\["127.0.0.1:[0-9]*"\]' "$TMP/file.ev" || fail "the file's listen was not used: $(head -1 "$TMP/file.ev")"
! grep -q 'info:' "$TMP/file.err" || fail "the file's log-level error was not used: $(cat "$TMP/file.err")"
run_conf flags --config "$conf" --events "$TMP/flags.ev" --log-level info --listen 127.0.0.2:0
grep -q 'info: listening on 127.0.0.2:' "$TMP/flags.err" || fail "--log-level info did not override the file's error: $(cat "$TMP/flags.err")"
grep -q '"listen":\["127.0.0.2:[0-9]*"\]' "$TMP/flags.ev" || fail "--listen did not replace the file's: $(head -1 "$TMP/flags.ev")"
pass "--config: listen and log-level from the file; --events, --log-level and --listen on the command line override them"

expect_usage() { # expect_usage PATTERN ARGS...: exit 2 and a line matching PATTERN
    local pattern=$1 out rc; shift
    out=$("$PUNCHD" "$@" 2>&1); rc=$?
    [ "$rc" = 2 ] || { echo "$out"; fail "'punchd $*' exited $rc, want 2"; }
    grep -qE -- "$pattern" <<<"$out" || { echo "$out"; fail "'punchd $*' did not say /$pattern/"; }
}
printf 'listen = 127.0.0.1:0\n\nmax-peers = lots\n' >"$TMP/bad1.conf"
expect_usage "^punchd: $TMP/bad1.conf:3: --max-peers: 'lots' is not a number" --config "$TMP/bad1.conf"
printf 'listen 127.0.0.1:0\n' >"$TMP/bad2.conf"
expect_usage "^punchd: $TMP/bad2.conf:1: not a key .*'listen 127.0.0.1:0'" --config "$TMP/bad2.conf"
printf '# two\n\nfrobnicate = 3\n' >"$TMP/bad3.conf"
expect_usage "^punchd: $TMP/bad3.conf:3: 'frobnicate' is not a setting" --config "$TMP/bad3.conf"
printf 'no-tcp = maybe\n' >"$TMP/bad4.conf"
expect_usage "^punchd: $TMP/bad4.conf:1: no-tcp: 'maybe' is not yes or no" --config "$TMP/bad4.conf"
printf 'key =\n' >"$TMP/bad5.conf"
expect_usage "^punchd: $TMP/bad5.conf:1: no value after '=' for 'key'" --config "$TMP/bad5.conf"
printf 'events\n' >"$TMP/bad6.conf"
expect_usage "^punchd: $TMP/bad6.conf:1: events needs a value" --config "$TMP/bad6.conf"
out=$("$PUNCHD" --config "$TMP/none.conf" 2>&1); rc=$?
[ "$rc" = 1 ] && grep -q "cannot read config file $TMP/none.conf" <<<"$out" || fail "a missing --config: $rc '$out'"
pass "config errors: a bad value, a line without '=', an unknown key, a bad flag value, an empty value, a missing file"

# --- readiness, metrics, SIGHUP ----------------------------------------------
# A NOTIFY_SOCKET of our own: what punchd sends there, one line a datagram.
cat >"$TMP/notify.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + sys.argv[1][1:] if sys.argv[1].startswith("@") else sys.argv[1])
open(sys.argv[2] + ".ready", "w").close()
with open(sys.argv[2], "a") as out:
    while True:
        data = s.recv(4096)
        out.write(data.decode() + "\n"); out.flush()
PY
python3 "$TMP/notify.py" "$TMP/notify.sock" "$TMP/notify.log" &
NOTIFY_PID=$!
PEERS=()
trap 'kill $NOTIFY_PID "${PEERS[@]}" 2>/dev/null; stop_punchd; rm -rf "$TMP"' EXIT
for _ in $(seq 400); do [ -e "$TMP/notify.log.ready" ] && break; sleep 0.025; done
[ -e "$TMP/notify.log.ready" ] || fail "the notify listener did not start"

ev="$TMP/punchd.ev"
printf 'listen = 127.0.0.1:0\nmetrics = 127.0.0.1:0\nlog-level = info\n' >"$TMP/live.conf"
NOTIFY_SOCKET="$TMP/notify.sock" "$PUNCHD" --config "$TMP/live.conf" --events "$ev" 2>"$TMP/live.err" &
PUNCHD_PID=$!
wait_grep "$ev" '"event":"started"' || fail "punchd did not start: $(cat "$TMP/live.err")"
wait_grep "$TMP/notify.log" '^READY=1$' || fail "no READY=1 on NOTIFY_SOCKET: '$(cat "$TMP/notify.log")'"
# ...and on one in the abstract namespace ("@name").
abstract="@punch-test-notify-$$"
python3 "$TMP/notify.py" "$abstract" "$TMP/notify2.log" &
NOTIFY2_PID=$!
for _ in $(seq 400); do [ -e "$TMP/notify2.log.ready" ] && break; sleep 0.025; done
NOTIFY_SOCKET=$abstract "$PUNCHD" --listen 127.0.0.1:0 --events "$TMP/abstract.ev" 2>"$TMP/abstract.err" &
pid=$!
wait_grep "$TMP/notify2.log" '^READY=1$' || { kill $pid $NOTIFY2_PID; fail "no READY=1 on $abstract: $(cat "$TMP/abstract.err")"; }
kill $pid $NOTIFY2_PID; wait $pid 2>/dev/null
pass "READY=1 on the NOTIFY_SOCKET once punchd serves (a path, and $abstract)"
started=$(grep '"event":"started"' "$ev")
server=$(grep -o '"listen":\["[^"]*"' <<<"$started" | grep -oE '[0-9.]+:[0-9]+')
metrics=$(grep -o '"metrics":"[^"]*"' <<<"$started" | cut -d'"' -f4)
[ -n "$metrics" ] || fail "no metrics address in the started event: $started"

scrape() { curl -sS --max-time 5 "http://$metrics/metrics"; }
metric() { grep -E "^punchd_$1 " <<<"$2" | awk '{print $2}'; }
before=$(scrape) || fail "curl http://$metrics/metrics failed"
[ "$(metric peers "$before")" = 0 ] || fail "punchd_peers before any registration: $(metric peers "$before")"
[ "$(metric registrations_total "$before")" = 0 ] || fail "registrations before any: $before"
grep -q '^# TYPE punchd_drops_total counter$' <<<"$before" || fail "no drops family: $before"

# register NAME: a real punch listening as NAME, its stdin open until
# $TMP/stop.NAME appears (or $TMP goes).
register() {
    (while [ -d "$TMP" ] && [ ! -e "$TMP/stop.$1" ]; do sleep 0.05; done) |
        XDG_CONFIG_HOME="$TMP/$1" "$PUNCH" --server "$server" --name "$1" --portmap off \
            --events "$TMP/$1.ev" listen --keep-open >/dev/null 2>"$TMP/$1.err" &
    PEERS+=($!)
    wait_grep "$TMP/$1.ev" '"event":"registered"' || fail "$1 did not register: $(cat "$TMP/$1.err")"
}
register alice
after=$(scrape) || fail "curl failed after the registration"
printf '%s\n' "$after" >"$TMP/after.prom"
[ "$(metric peers "$after")" = 1 ] || fail "punchd_peers after alice registered: $(metric peers "$after")"
[ "$(metric registrations_total "$after")" -ge 1 ] || fail "registrations_total did not move: $after"
[ "$(metric 'received_total\{service="rendezvous"\}' "$after")" -ge 2 ] || fail "rendezvous received did not move"
[ "$(metric metrics_requests_total "$after")" = 2 ] || fail "metrics_requests_total: $(metric metrics_requests_total "$after")"
pass "scraped with curl: punchd_peers 0 -> 1, registrations_total 0 -> $(metric registrations_total "$after")"

# The text as Prometheus' own client library parses it (Debian's
# python3-prometheus-client, with Debian's python3).
/usr/bin/python3 - "$TMP/after.prom" <<'PY' >"$TMP/parsed" 2>&1 || fail "prometheus_client cannot parse /metrics: $(cat "$TMP/parsed")"
import sys
from prometheus_client.parser import text_string_to_metric_families
families = list(text_string_to_metric_families(open(sys.argv[1]).read()))
names = [f.name for f in families]
assert all(n.startswith("punchd_") for n in names), names
assert len(set(names)) == len(names), "a family twice"
samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}
assert samples[("punchd_peers", ())] == 1, samples
print(len(families), "families,", len(samples), "samples")
PY
pass "prometheus_client parses it: $(cat "$TMP/parsed")"

# alice's name for another key: refused, with when it frees.
out=$(XDG_CONFIG_HOME="$TMP/other" timeout --foreground 20 "$PUNCH" --server "$server" --name alice --portmap off \
      listen </dev/null 2>&1); rc=$?
[ "$rc" = 1 ] && grep -q "the name belongs to another key; punchd frees it 90 s after that key's last keepalive" <<<"$out" ||
    fail "a taken name: rc $rc, '$out'"
pass "a taken name is refused (exit 1) saying when it frees"

# Garbage instead of HTTP: answered 400 and counted as a drop.
exec {http}<>"/dev/tcp/${metrics%:*}/${metrics##*:}"
printf '\x16\x03\x01 not http at all\r\n\r\n' >&"$http"
reply=$(timeout 5 head -1 <&"$http")
exec {http}>&-
[[ "$reply" == "HTTP/1.1 400 "* ]] || fail "garbage got '$reply', want a 400"
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "http://$metrics/nothing-here")
[ "$code" = 404 ] || fail "GET /nothing-here answered $code"
now=$(scrape)
[ "$(metric 'drops_total\{reason="http_bad_request"\}' "$now")" = 1 ] || fail "the garbage request is not a counted drop: $(grep http_bad "$now")"
pass "a garbage request: 400 and punchd_drops_total{reason=\"http_bad_request\"} 1; another path: 404"

# Eight idle connections (the most it holds) do not keep a scraper out:
# the oldest without a whole request gives way (issue 12's review).
idle=()
for _ in 1 2 3 4 5 6 7 8; do
    exec {fd}<>"/dev/tcp/${metrics%:*}/${metrics##*:}"
    idle+=("$fd")
done
held=$(scrape) || fail "a scrape past 8 idle connections failed"
for fd in "${idle[@]}"; do exec {fd}>&-; done
[ "$(metric metrics_pushed_out_total "$held")" -ge 1 ] || fail "no idle connection gave way: $(grep metrics_ "$held")"
pass "a scrape past 8 idle connections: answered, punchd_metrics_pushed_out_total $(metric metrics_pushed_out_total "$held")"

# Rotation: the events file moved away, SIGHUP, events go on in a new file
# at the old name; alice stays registered, bob registers after.
mv "$ev" "$ev.1"
printf 'listen = 127.0.0.1:0\nmetrics = 127.0.0.1:0\nlog-level = debug\nmax-peers = 5\n' >"$TMP/live.conf"
kill -HUP "$PUNCHD_PID"
wait_grep "$ev" '"event":"reloaded"' || fail "no reloaded event in a new $ev: $(cat "$TMP/live.err")"
kill -0 "$PUNCHD_PID" 2>/dev/null || fail "punchd died of SIGHUP"
grep -q '"event":"reloaded".*"peers":1' "$ev" || fail "alice was dropped on SIGHUP: $(cat "$ev")"
grep -q "'max-peers' changed; it takes effect when punchd restarts" "$TMP/live.err" ||
    fail "the max-peers change was not reported: $(cat "$TMP/live.err")"
wait_grep "$TMP/notify.log" '^RELOADING=1$' || fail "no RELOADING=1: $(cat "$TMP/notify.log")"
register bob
grep -q '"event":"registered","t_ms":[0-9]*,"name":"bob"' "$ev" || fail "bob's registration is not in the new file"
! grep -q '"name":"bob"' "$ev.1" || fail "bob's registration went to the rotated file"
[ "$(metric peers "$(scrape)")" = 2 ] || fail "punchd_peers after SIGHUP and bob: $(metric peers "$(scrape)")"
grep -q 'debug: registered bob' "$TMP/live.err" || fail "log-level debug was not applied on SIGHUP"
pass "SIGHUP: events reopened at $ev (bob there, not in $ev.1), alice still registered, log-level applied, max-peers named for a restart"

# A bad file on SIGHUP keeps the running settings.
printf 'listen = 127.0.0.1:0\nmax-peers = many\n' >"$TMP/live.conf"
kill -HUP "$PUNCHD_PID"
wait_grep "$TMP/live.err" 'SIGHUP: .*live.conf not applied' || fail "a bad file on SIGHUP: $(cat "$TMP/live.err")"
grep -q "live.conf:2: --max-peers: 'many'" "$TMP/live.err" || fail "the bad line is not named: $(cat "$TMP/live.err")"
[ "$(metric peers "$(scrape)")" = 2 ] || fail "peers lost after a bad reload"
pass "a bad line on SIGHUP: named FILE:LINE, the running settings kept, both peers registered"
touch "$TMP/stop.alice" "$TMP/stop.bob"
kill "${PEERS[@]}" 2>/dev/null
stop_punchd
wait_grep "$TMP/notify.log" '^STOPPING=1$' || fail "no STOPPING=1 at exit"

# --- log lines ---------------------------------------------------------------
stamp='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z punchd: cannot listen on 192.0.2.1:3478'
"$PUNCHD" --listen 192.0.2.1:3478 2>"$TMP/log.err"
grep -qE "$stamp" "$TMP/log.err" || fail "no timestamp on a log line: $(cat "$TMP/log.err")"
# stderr as the journal: JOURNAL_STREAM names its device and inode.
exec {journal}>"$TMP/journal.err"
JOURNAL_STREAM=$(stat -L -c '%d:%i' "/proc/self/fd/$journal") "$PUNCHD" --listen 192.0.2.1:3478 2>&"$journal"
exec {journal}>&-
grep -qE '^punchd: cannot listen on 192.0.2.1:3478' "$TMP/journal.err" ||
    fail "a timestamp with stderr on the journal: $(cat "$TMP/journal.err")"
JOURNAL_STREAM=1:1 "$PUNCHD" --listen 192.0.2.1:3478 2>"$TMP/other.err"
grep -qE "$stamp" "$TMP/other.err" || fail "JOURNAL_STREAM of another stream dropped the timestamp"
pass "log lines stamped (UTC, ms) unless JOURNAL_STREAM names stderr"
