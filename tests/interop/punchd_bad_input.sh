#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Bad input on the wire: punchd counts and drops it, keeps answering, and
# holds each source to its rate.
. "$(dirname "$0")/lib.sh"

start_punchd --listen 127.0.0.1:0 --rate-limit 50
port=$(port_of 1)
out=$(python3 - "$port" <<'PY'
import random, socket, struct, sys
port = int(sys.argv[1])
rng = random.Random(5769)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
def binding(txid, extra=b""):
    return struct.pack("!HHI", 0x0001, len(extra), 0x2112A442) + txid + extra
def round_trip():
    """A valid request answered: everything sent before it was handled, and
    the socket buffers are empty again. Resent like a real client would."""
    txid = rng.randbytes(12)
    for attempt in range(10):
        s.sendto(binding(txid), ("127.0.0.1", port))
        try:
            while True:
                data, _ = s.recvfrom(2048)
                if data[8:20] == txid and struct.unpack("!H", data[:2])[0] == 0x0101:
                    return
        except socket.timeout:
            continue
    sys.exit("no answer to a valid request")
s.settimeout(0.5)
sent_bad = 0
# Random bytes, then STUN-looking datagrams with broken lengths and attributes,
# in groups small enough that no socket buffer overflows.
for i in range(300):
    s.sendto(bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200))), ("127.0.0.1", port)); sent_bad += 1
    if i % 50 == 49: round_trip()
for i in range(100):
    good = binding(rng.randbytes(12), struct.pack("!HH", 0x8022, 4) + b"abcd")
    cut = rng.randint(0, len(good) - 1)
    s.sendto(good[:cut], ("127.0.0.1", port)); sent_bad += 1
    bad_len = bytearray(good); bad_len[7 + 20 - 4] = 200  # attribute length past the end
    s.sendto(bytes(bad_len), ("127.0.0.1", port)); sent_bad += 1
    if i % 25 == 24: round_trip()
s.sendto(b"\x00" * 65000, ("127.0.0.1", port)); sent_bad += 1  # larger than any STUN message we take
round_trip()
# Rate: 200 requests at once from a fresh source IP; its bucket holds 100
# (2 x 50/s), plus what trickles in while the burst is sent.
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.3", 0))
for i in range(200):
    s.sendto(binding(struct.pack("!IQ", 7, i)), ("127.0.0.1", port))
answered = 0
s.settimeout(1)
try:
    while True:
        s.recvfrom(2048); answered += 1
except socket.timeout:
    pass
print(sent_bad, answered)
PY
) || fail "the probe script failed"
read -r sent_bad answered <<<"$out"
kill -USR1 "$PUNCHD_PID"
c=$(next_event counters) || fail "no counters event"
[ "$(json_field "$c" malformed)" = "$sent_bad" ] || fail "sent $sent_bad malformed datagrams, counted: $c"
[ "$answered" -ge 100 ] && [ "$answered" -le 110 ] || fail "rate limit: $answered of 200 burst requests answered, want about 100"
[ "$(json_field "$c" rate_limited)" -ge 90 ] || fail "rate-limited requests not counted: $c"
pass "$sent_bad malformed datagrams dropped and counted, still answering; burst of 200 -> $answered answered"
pass "counters: $c"
