#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# punch forward across the lab's NATs with real clients (issue 6): bob runs
# sshd and python's http.server on his loopback and `punch listen
# --allow-forward 22,8000`; alice runs `punch forward` for each and
#   1. ssh through the forward runs a command on bob and pipes 1 MiB back;
#   2. curl fetches a 4 MiB file through it, byte for byte;
#   3. a forward to a port bob does not allow (2222) is refused: curl fails
#      and alice's punch says why;
#   4. 300 TCP connections open at once through one forward (an echo server
#      on bob's 7000, lab/tests/tcp_many.py), each with 64 KiB of its own
#      that must come back intact;
#   5. past --max-connections 20, 10 more connections are closed at once,
#      counted (connections_refused), and said in one stderr line, while
#      the 20 carry their bytes.
. "$(dirname "$0")/lib.sh"
B=${PUNCH_BUILD_DIR:?}
PUNCH=$B/apps/punch PUNCHD=$B/apps/punchd
LABX=("$PUNCH_LAB" --prefix "$TEST_PREFIX")
for c in ssh ssh-keygen curl python3; do command -v $c >/dev/null || { echo "SKIP: no $c"; exit 77; }; done
[ -x /usr/sbin/sshd ] || { echo "SKIP: no sshd (scripts/setup installs openssh-server)"; exit 77; }
wait_grep() { local i; for ((i = 0; i < $3 * 40; i++)); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.025; done; return 1; }

lab up different-nats --nat-a port-restricted-cone --nat-b port-restricted-cone >/dev/null
"${LABX[@]}" exec server -- "$PUNCHD" --listen 198.51.100.1:3478 --key "$TMP/server.key" \
    --events "$TMP/punchd.ev" 2>/dev/null </dev/null &
wait_for "$TMP/punchd.ev"

# bob: sshd on 127.0.0.1:22 with a key of alice's only, a web server on 8000.
mkdir -p "$TMP/ssh" "$TMP/www" && chmod 700 "$TMP/ssh"
ssh-keygen -q -t ed25519 -N '' -f "$TMP/ssh/host"
ssh-keygen -q -t ed25519 -N '' -f "$TMP/ssh/alice"
cp "$TMP/ssh/alice.pub" "$TMP/ssh/authorized_keys"
mkdir -p /run/sshd
"${LABX[@]}" exec bob -- /usr/sbin/sshd -D -e -f /dev/null -h "$TMP/ssh/host" \
    -o ListenAddress=127.0.0.1:22 -o AuthorizedKeysFile="$TMP/ssh/authorized_keys" \
    -o StrictModes=no -o PasswordAuthentication=no -o UsePAM=no -o PidFile=none \
    2>"$TMP/sshd.log" </dev/null &
head -c 4194304 /dev/urandom >"$TMP/www/f.bin"
(cd "$TMP/www" && exec "${LABX[@]}" exec bob -- python3 -m http.server --bind 127.0.0.1 8000 \
    >/dev/null 2>&1 </dev/null) &
for _ in $(seq 400); do lab exec bob -- curl -s -o /dev/null http://127.0.0.1:8000/ && break; sleep 0.025; done

# The forwarders' keys, made first: bob lets exactly them in (--peer).
allowed=()
for name in alice alice2 alice3 alice4 alice5; do
    allowed+=(--peer "$name@$(XDG_CONFIG_HOME="$TMP/$name" "$PUNCH" keygen)")
done
"${LABX[@]}" exec bob -- env XDG_CONFIG_HOME="$TMP/bob" "$PUNCH" --server 198.51.100.1 \
    --name bob --events "$TMP/bob.ev" listen --allow-forward 22,8000,7000 "${allowed[@]}" \
    </dev/null 2>"$TMP/bob.err" &
wait_grep "$TMP/bob.ev" registered 10 || fail "bob did not register: $(cat "$TMP/bob.err")"
fwd() { # fwd NAME LOCAL_PORT BOB_PORT [OPTION...]: FWD_PID is its punch
    local name=$1 port=$2 to=$3
    shift 3
    "${LABX[@]}" exec alice -- env XDG_CONFIG_HOME="$TMP/$name" "$PUNCH" --server 198.51.100.1 \
        --name "$name" --events "$TMP/$name.ev" forward --listen "$port" "bob:$to" "$@" \
        </dev/null 2>"$TMP/$name.err" &
    FWD_PID=$!
    wait_grep "$TMP/$name.ev" '"event":"path"' 10 || fail "$name: no path: $(cat "$TMP/$name.err")"
}
fwd alice 2022 22
fwd alice2 8080 8000
fwd alice3 2223 2222

# 1. ssh: a command on bob, 1 MiB back through the stream.
sum=$(lab exec alice -- timeout 60 ssh -p 2022 -i "$TMP/ssh/alice" -o BatchMode=yes \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR root@127.0.0.1 \
    'head -c 1048576 /dev/zero | sha256sum' 2>"$TMP/ssh.err" | sha256sum) ||
    fail "ssh through punch forward failed: $(cat "$TMP/ssh.err") / $(tail -5 "$TMP/sshd.log")"
[ "$sum" = "$(head -c 1048576 /dev/zero | sha256sum | sha256sum)" ] || fail "ssh: wrong output"
ok "ssh through punch forward (alice -> bob's 127.0.0.1:22): command run, output intact"

# 2. curl: 4 MiB, byte for byte.
lab exec alice -- timeout 60 curl -sf -o "$TMP/got.bin" http://127.0.0.1:8080/f.bin ||
    fail "curl through punch forward failed: $(cat "$TMP/alice2.err")"
cmp -s "$TMP/www/f.bin" "$TMP/got.bin" || fail "curl: the file differs"
ok "curl through punch forward: 4 MiB identical"

# 3. a port bob does not allow.
lab exec alice -- timeout 20 curl -sf -o /dev/null http://127.0.0.1:2223/ && fail "curl through a refused port worked"
wait_grep "$TMP/alice3.err" "refused port" 10 || true
grep -q "^punch forward: bob refused port 2222: port 2222 is not allowed (punch listen --allow-forward)$" \
    "$TMP/alice3.err" || fail "refused port: $(cat "$TMP/alice3.err")"
ok "port 2222 (not allowed) refused: curl fails, alice's punch says why"

# 4. 300 connections at once, each echoed intact.
"${LABX[@]}" exec bob -- python3 "$TESTS_DIR/tcp_many.py" echo 7000 --ready "$TMP/echo.ready" \
    </dev/null >/dev/null 2>&1 &
wait_for "$TMP/echo.ready"
fwd alice4 7001 7000
out=$(lab exec alice -- timeout 120 python3 "$TESTS_DIR/tcp_many.py" clients 7001 300 65536 2>&1) ||
    fail "300 connections through punch forward: $out / $(tail -3 "$TMP/alice4.err") / $(tail -3 "$TMP/bob.err")"
ok "punch forward: $out"

# 5. --max-connections 20: 30 clients, 10 closed at once and counted, one line on stderr.
fwd alice5 7002 7000 --max-connections 20
limited=$FWD_PID
out=$(lab exec alice -- timeout 120 python3 "$TESTS_DIR/tcp_many.py" clients 7002 30 4096 --refused 10 2>&1) ||
    fail "--max-connections 20: $out / $(cat "$TMP/alice5.err")"
kill -TERM "$limited"
wait "$limited" || fail "forward with --max-connections exited $? on SIGTERM"
want="punch forward: 20 connections open, new ones are refused (--max-connections) until one closes"
[ "$(grep -c "refused" "$TMP/alice5.err")" = 1 ] && grep -qxF "$want" "$TMP/alice5.err" ||
    fail "--max-connections 20: stderr was: $(cat "$TMP/alice5.err")"
grep -q '"connections_refused":10' "$TMP/alice5.ev" ||
    fail "--max-connections 20: $(grep -o '"connections_open.*' "$TMP/alice5.ev")"
ok "punch forward --max-connections 20: $(tr '\n' ' ' <<<"$out")and one line: $want"
