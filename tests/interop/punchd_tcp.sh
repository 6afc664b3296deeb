#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# punchd's TCP side on loopback: framed HELLO and STUN Binding answered on
# the connection; bad input (zero length, a length over the maximum, a
# frame cut short, a slow-loris sender, more connections than --max-tcp, a
# UDP datagram from a TCP connection's address and port) is counted, and
# punchd keeps serving TCP and UDP. A connection that punchd never answered
# REGISTERED on is closed 10 s after it came, whatever frames it sends
# (issue 12, finding 6: garbage once kept one for good). One IP cannot hold
# more than --max-tcp-per-ip connections while another IP still gets in
# (one IPv6 /64 neither: interop.punchd_tcp_64).
. "$(dirname "$0")/lib.sh"

# closed_by_server and the per-source limit check (tests/interop/tcp_probe.py).
probe_dir=$(cd "$(dirname "$0")" && pwd)

start_punchd --listen 127.0.0.1:0 --max-tcp 8
port=$(port_of 1)
out=$(PYTHONPATH=$probe_dir python3 - "$port" <<'PY'
import os, socket, struct, sys, time
from tcp_probe import closed_by_server
port = int(sys.argv[1])
ADDR = ("127.0.0.1", port)

def frame(b): return struct.pack("!H", len(b)) + b
def hello(): return bytes([0x70, 0x01]) + os.urandom(8) + bytes(86)
def binding(txid): return struct.pack("!HHI", 0x0001, 0, 0x2112A442) + txid

def read_frame(s):
    def exactly(n):
        b = b""
        while len(b) < n:
            got = s.recv(n - len(b))
            if not got: sys.exit("connection closed inside an answer")
            b += got
        return b
    n = struct.unpack("!H", exactly(2))[0]
    return exactly(n)

def served(s):
    """A HELLO on this connection is answered with a COOKIE."""
    s.sendall(frame(hello()))
    a = read_frame(s)
    if a[:2] != b"\x70\x02": sys.exit("no COOKIE: %r" % a[:4])

def conn():
    s = socket.create_connection(ADDR, timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

good = conn()
good.settimeout(5)
served(good)
txid = os.urandom(12)
good.sendall(frame(binding(txid)))
a = read_frame(good)
if a[:2] != b"\x01\x01" or a[8:20] != txid: sys.exit("no Binding answer over TCP")
# A slow-loris sender: one byte of a header, then nothing. Checked last
# (punchd gives a new connection 10 s for its first frame).
loris = conn(); loris.sendall(b"\x00")
# A whole frame of garbage: dropped and counted like a bad datagram, the
# connection stays.
good.sendall(frame(b"\x70\xee" + os.urandom(40)) + frame(os.urandom(30)))
served(good)
# Zero length, a length over 2048: the connection is closed.
for bad in (b"\x00\x00" + b"\x70\x01", b"\x08\x01" + bytes(64), b"\xff\xff" + bytes(8)):
    s = conn(); s.sendall(bad)
    if not closed_by_server(s, 5): sys.exit("a bad length %s did not close the connection" % bad[:2].hex())
    s.close()
# A frame cut short by the end of the stream.
s = conn(); s.sendall(b"\x00\x64" + bytes(10)); s.shutdown(socket.SHUT_WR)
if not closed_by_server(s, 5): sys.exit("a cut frame did not end the connection")
s.close()
# A UDP datagram from the very address and port of a TCP connection must
# not pass for that connection's peer: dropped, counted, unanswered.
clash = None
for _ in range(20):
    t = socket.socket(); t.bind(("127.0.0.1", 0))
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(t.getsockname())
    except OSError:
        t.close(); u.close(); continue
    t.connect(ADDR); clash = (t, u); break
if not clash: sys.exit("no port free for both TCP and UDP")
t, u = clash
t.settimeout(5)
served(t)  # the TCP connection is known to punchd now
u.settimeout(0.5)
u.sendto(hello(), ADDR)
try:
    u.recvfrom(2048); sys.exit("a UDP HELLO from a TCP connection's address was answered")
except (socket.timeout, TimeoutError):
    pass
# More connections than --max-tcp 8: good, loris and t hold 3, so 5 more
# fit; of 20 more, 15 are closed at once.
extra = [conn() for _ in range(20)]
open_, refused = [], 0
for s in extra:
    if closed_by_server(s, 0.5): refused += 1
    else: open_.append(s)
if refused != 15 or len(open_) != 5: sys.exit("over --max-tcp: %d closed, %d open" % (refused, len(open_)))
for s in open_:
    s.settimeout(5); served(s)
served(good)
# A garbage frame every second does not keep a connection: it is closed
# 10 s after it came (+1 s of sweep), as if it had sent nothing.
junk, came = open_[0], time.monotonic()
while not closed_by_server(junk, 1):
    junk.sendall(frame(b"\x70\xee\x00"))
    if time.monotonic() - came > 20: sys.exit("garbage every second kept a connection 20 s")
held = time.monotonic() - came
if held > 12: sys.exit("garbage every second kept a connection %.1f s" % held)
# The slow loris, and every connection that only asked HELLO and Binding,
# are closed the same way (10 s).
for s in [loris, good, t] + open_[1:]:
    if not closed_by_server(s, 15): sys.exit("a connection that never registered was not closed")
fresh = conn(); fresh.settimeout(5); served(fresh)
print("garbage every second: closed after %.1f s" % held, file=sys.stderr)
# UDP still answered.
u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u2.settimeout(5)
txid = os.urandom(12); u2.sendto(binding(txid), ADDR)
a, _ = u2.recvfrom(2048)
if a[8:20] != txid: sys.exit("no Binding answer over UDP")
print("ok")
PY
) || fail "the probe script failed: $out"
kill -USR1 "$PUNCHD_PID"
c=$(next_event counters) || fail "no counters event"
for want in tcp_bad_frames=3 tcp_truncated=1 tcp_refused_full=15 tcp_idle_closed=8 tcp_clash=1; do
    [ "$(json_field "$c" "${want%=*}")" = "${want#*=}" ] || fail "want ${want/=/ } in $c"
done
[ "$(json_field "$c" malformed)" -ge 2 ] || fail "garbage frames not counted malformed: $c"
kill -0 "$PUNCHD_PID" || fail "punchd died"
pass "TCP framing: HELLO and Binding answered; 3 bad lengths, 1 cut frame closed; 8 never registered closed at 10 s (1 slow loris, 1 sending garbage every second); 15 of 20 over --max-tcp refused; a UDP clash dropped; still serving"
pass "counters: $c"

# One source IP holds at most --max-tcp-per-ip of the --max-tcp connections.
stop_punchd
start_punchd --listen 127.0.0.1:0 --max-tcp 20 --max-tcp-per-ip 4
port=$(port_of 1)
expect_tcp_per_source_limit "per-IP limit" 127.0.0.1 "$port" 127.0.0.2 \
    $(for _ in $(seq 10); do echo 127.0.0.1; done)
pass "--max-tcp-per-ip 4: 6 of 10 connections from one IP refused, another IP still served"
