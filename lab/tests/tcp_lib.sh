# SPDX-License-Identifier: MIT
# Shared by the TCP path tests (tcp_punch.sh, tcp_open.sh): a lab with
# punchd, `punch listen` and `punch connect --tcp`, each side feeding 50
# numbered lines once its TCP path is up, and the checks of where each side
# ends. Source after lib.sh.
B=${PUNCH_BUILD_DIR:?}
PUNCH=$B/apps/punch PUNCHD=$B/apps/punchd
D=$TMP/c
N=50

lines() { for ((n = 0; n < N; n++)); do echo "$1 $n"; done; }
# tcp_up SIDE: SIDE's events show a TCP path in use
tcp_up() { grep '"event":"path"' "$D/$1.ev" 2>/dev/null | tail -1 | grep -q '"technique":"\(tcp-simultaneous-open\|reversal\|tcp-direct\)"'; }
# feed SIDE PEER: once SIDE is on a TCP path (or after 15 s), its N lines;
# then wait (bounded) until PEER has them, or the test says stop
feed() {
    local i
    for ((i = 0; i < 300; i++)); do tcp_up "$1" && break; [ -e "$D/fallback" ] && break; sleep 0.05; done
    lines "from-$1"
    for ((i = 0; i < 300; i++)); do
        [ -e "$D/stop" ] && break
        [ "$(grep -c "^from-$1 " "$D/$2.out" 2>/dev/null)" = "$N" ] && [ -e "$D/$2.done" ] && break
        [ "$(grep -c "^from-$2 " "$D/$1.out" 2>/dev/null)" = "$N" ] && touch "$D/$1.done"
        sleep 0.05
    done
    touch "$D/$1.done"
    sleep 0.5
}

# pair LISTENER CONNECTOR TOPOLOGY-ARGS...: the lab, punchd, `punch listen`
# on LISTENER and `punch connect --tcp LISTENER` on CONNECTOR; leaves the
# events and outputs in $D and RC (connect's exit code). FALLBACK=1: the
# feeders do not wait for a TCP path. AFTER_UP=FUNC: run FUNC once the lab is up.
pair() {
    local l=$1 c=$2
    shift 2
    rm -rf "$D" && mkdir -p "$D"
    [ "${FALLBACK:-0}" = 1 ] && touch "$D/fallback"
    lab up "$@" >/dev/null
    [ -z "${AFTER_UP:-}" ] || "$AFTER_UP"
    lab exec server -- "$PUNCHD" --listen 198.51.100.1:3478 --alt 198.51.100.2 \
        --key "$D/server.key" --events "$D/punchd.ev" 2>/dev/null </dev/null &
    wait_for "$D/punchd.ev"
    feed "$l" "$c" | lab exec "$l" -- env XDG_CONFIG_HOME="$D/$l" "$PUNCH" --server 198.51.100.1 \
        --name "$l" --events "$D/$l.ev" listen --datagram >"$D/$l.out" 2>"$D/$l.err" &
    local lp=$! i
    for ((i = 0; i < 400; i++)); do grep -q registered "$D/$l.ev" 2>/dev/null && break; sleep 0.025; done
    RC=0
    feed "$c" "$l" | lab exec "$c" -- env XDG_CONFIG_HOME="$D/$c" timeout --foreground 40 "$PUNCH" \
        --server 198.51.100.1 --name "$c" --events "$D/$c.ev" connect "$l" --datagram --tcp --timeout 30 \
        >"$D/$c.out" 2>"$D/$c.err" || RC=$?
    touch "$D/stop"
    kill -TERM "$lp" 2>/dev/null || true
    wait "$lp" 2>/dev/null || true
    lab down >/dev/null
}

last_path() { grep '"event":"path"' "$D/$1.ev" | tail -1; }
field() { grep -o "\"$1\":\"[^\"]*\"" | head -1 | cut -d'"' -f4; }

# case_ LISTENER CONNECTOR TOPOLOGY-ARGS... -- TECHNIQUE
case_() {
    local l=$1 c=$2 args=() want
    shift 2
    while [ "$1" != -- ]; do args+=("$1"); shift; done
    want=$2
    pair "$l" "$c" "${args[@]}"
    local what="$c -> $l, ${args[*]}" side
    [ "$RC" = 0 ] || fail "$what: connect exited $RC: $(cat "$D/$c.err")"
    for side in "$l" "$c"; do
        local p; p=$(last_path "$side")
        [ "$(field kind <<<"$p")/$(field technique <<<"$p")" = "direct/$want" ] ||
            fail "$what: $side ends on '$p', want direct/$want (paths: $(grep -E '"(path|attempt)"' "$D/$side.ev"))"
    done
    [ "$(cat "$D/$l.out")" = "$(lines "from-$c")" ] ||
        fail "$what: $l got $(wc -l <"$D/$l.out") lines, not $c's $N in order: $(head -3 "$D/$l.out")"
    [ "$(cat "$D/$c.out")" = "$(lines "from-$l")" ] ||
        fail "$what: $c got $(wc -l <"$D/$c.out") lines, not $l's $N in order: $(head -3 "$D/$c.out")"
    local t; t=$(grep '"event":"path"' "$D/$c.ev" | grep "\"technique\":\"$want\"" | head -1 | grep -o '"t_ms":[0-9]*' | cut -d: -f2)
    ok "$what: direct via $want at $t ms, $N lines each way intact ($(last_path "$c" | field local) <-> $(last_path "$c" | field remote))"
}
