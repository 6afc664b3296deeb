#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# punch-nat on real packets, beyond mapping and filtering: ICMP errors of
# translated flows come back to the inside host (RFC 5508), TCP connections
# work, an unsolicited SYN is answered with RST when syn=rst, mappings are
# reported as events, and SIGHUP forgets them all.
. "$(dirname "$0")/lib.sh"
[ -x "${PUNCH_BUILD_DIR:-/nonexistent}/apps/punch-nat" ] || fail "build punch-nat first"

lab up different-nats --backend punch-nat --nat-a port-restricted-cone,syn=rst >/dev/null
ev=$(ls /run/punch-lab/"$TEST_PREFIX"/logs/punch-nat-nat-a.events)
py() { local node=$1; shift; lab exec "$node" -- python3 -c "$@"; }

# A TCP echo on the server, ready when its file appears.
py server "
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('198.51.100.1', 7000)); s.listen(8)
open('$TMP/tcp.ready', 'w').write('1')
while True:
    c, _ = s.accept(); c.sendall(c.recv(100)); c.close()
" </dev/null >/dev/null 2>&1 &
wait_for "$TMP/tcp.ready"

# 1. UDP to a closed port: the server's ICMP port unreachable must reach
#    alice's socket, translated back through the NAT.
out=$(py alice "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect(('198.51.100.1', 9)); s.settimeout(0.5)
for i in range(6):
    s.send(b'x')
    try:
        s.recv(10)
    except ConnectionRefusedError:
        print('refused'); break
    except socket.timeout:
        pass
else:
    print('no ICMP error came back')
")
[ "$out" = refused ] || fail "ICMP port unreachable not translated back: $out"
ok "ICMP error of a translated UDP flow reached the inside host"

# 2. TCP through the NAT.
out=$(py alice "
import socket
c = socket.create_connection(('198.51.100.1', 7000), timeout=5); c.sendall(b'through'); print(c.recv(100).decode())
")
[ "$out" = through ] || fail "TCP echo through punch-nat: '$out'"
ok "TCP connection through punch-nat"

# 3. An unsolicited SYN to the NAT's public address gets a RST at once.
out=$(py server "
import socket, time
t = time.time()
try:
    socket.create_connection(('203.0.113.1', 7001), timeout=3); print('connected?!')
except ConnectionRefusedError:
    print('rst' if time.time() - t < 1 else 'late')
except socket.timeout:
    print('timeout')
")
[ "$out" = rst ] || fail "unsolicited SYN with syn=rst: $out"
ok "unsolicited SYN answered with RST (syn=rst)"

# 4. Events and SIGHUP.
alice=$(lab addr alice | head -1)
grep -q "\"event\":\"mapping-created\",\"t_ms\":[0-9]*,\"proto\":\"tcp\",\"inside\":\"$alice:" "$ev" ||
    fail "no mapping-created event for the TCP flow: $(cat "$ev")"
pid=$(cat /run/punch-lab/"$TEST_PREFIX"/pids/punch-nat-nat-a.pid)
before=$(grep -c mapping-created "$ev")
kill -HUP "$pid"
for _ in $(seq 500); do grep -q '"event":"reset"' "$ev" && break; sleep 0.01; done
grep -q '"event":"reset"' "$ev" || fail "no reset event after SIGHUP"
py alice "
import socket
c = socket.create_connection(('198.51.100.1', 7000), timeout=5); c.sendall(b'again'); c.recv(100)
" >/dev/null || fail "no connection after the reset"
[ "$(grep -c mapping-created "$ev")" -gt "$before" ] || fail "no new mapping after the reset"
ok "mapping events; SIGHUP forgot the mappings and new ones were made"
