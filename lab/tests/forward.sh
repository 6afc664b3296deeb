#!/usr/bin/env bash
# punch forward across the lab's NATs with real clients (issue 6): bob runs
# sshd and python's http.server on his loopback and `punch listen
# --allow-forward 22,8000`; alice runs `punch forward` for each and
#   1. ssh through the forward runs a command on bob and pipes 1 MiB back;
#   2. curl fetches a 4 MiB file through it, byte for byte;
#   3. a forward to a port bob does not allow (2222) is refused: curl fails
#      and alice's punch says why.
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

"${LABX[@]}" exec bob -- env XDG_CONFIG_HOME="$TMP/bob" "$PUNCH" --server 198.51.100.1 \
    --name bob --events "$TMP/bob.ev" listen --allow-forward 22,8000 </dev/null 2>"$TMP/bob.err" &
wait_grep "$TMP/bob.ev" registered 10 || fail "bob did not register: $(cat "$TMP/bob.err")"
fwd() { # fwd NAME LOCAL_PORT BOB_PORT
    "${LABX[@]}" exec alice -- env XDG_CONFIG_HOME="$TMP/$1" "$PUNCH" --server 198.51.100.1 \
        --name "$1" --events "$TMP/$1.ev" forward --listen "$2" "bob:$3" </dev/null 2>"$TMP/$1.err" &
    wait_grep "$TMP/$1.ev" '"event":"path"' 10 || fail "$1: no path: $(cat "$TMP/$1.err")"
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
