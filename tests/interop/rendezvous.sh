#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Rendezvous and relay through a real punchd on loopback: a small client
# (python3, with its own X25519 and BLAKE2b MACs, so it shares no code with
# punchd) registers alice and bob, connects alice to bob, relays both ways,
# and tries what must fail; punchd's events must tell the same story.
. "$(dirname "$0")/lib.sh"

key="$TMP/conf/server.key"
start_punchd --listen 127.0.0.1:0 --key "$key" --relay-max-bytes 200
port=$(port_of 1)
[ "$(stat -c %a "$key")" = 600 ] || fail "--key file $key has mode $(stat -c %a "$key"), want 600"
cat >"$TMP/client.py" <<'PY'
import hashlib, os, socket, struct, sys, time
port, keyfile, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
SERVER = ("127.0.0.1", port)
P = 2**255 - 19

def x25519(k, u):  # RFC 7748 §5
    k = bytearray(k); k[0] &= 248; k[31] &= 127; k[31] |= 64
    k = int.from_bytes(k, "little"); x1 = int.from_bytes(u, "little") & ((1 << 255) - 1)
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in reversed(range(255)):
        kt = (k >> t) & 1; swap ^= kt
        if swap: x2, x3, z2, z3 = x3, x2, z3, z2
        swap = kt
        a, b, c, d = x2 + z2, x2 - z2, x3 + z3, x3 - z3
        aa, bb, da, cb = a * a, b * b, d * a, c * b
        e = aa - bb
        x3, z3 = (da + cb) ** 2 % P, x1 * (da - cb) ** 2 % P
        x2, z2 = aa * bb % P, e * (aa + 121665 * e) % P
    if swap: x2, z2 = x3, z3
    return (x2 * pow(z2, P - 2, P) % P).to_bytes(32, "little")

BASE = (9).to_bytes(32, "little")
import base64
server_secret = base64.b64decode(open(keyfile).read().strip())
server_pub = x25519(server_secret, BASE)

def mac(key, data): return hashlib.blake2b(data, digest_size=16, key=key).digest()
def endpoint(ip, port): return bytes([4]) + struct.pack("!H", port) + socket.inet_aton(ip) + bytes(12)
def parse_endpoint(b): return "%s:%d" % (socket.inet_ntoa(b[3:7]), struct.unpack("!H", b[1:3])[0])

class Peer:
    def __init__(self, name, seed):
        self.name, self.secret = name, hashlib.sha256(seed).digest()
        self.pub = x25519(self.secret, BASE)
        shared = x25519(self.secret, server_pub)
        lo, hi = sorted([self.pub, server_pub])
        self.key = hashlib.blake2b(shared + lo + hi, digest_size=32, key=b"punch signalling v0").digest()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0)); self.sock.settimeout(5)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.n = 0
    def txid(self):
        self.n += 1; return struct.pack("!Q", self.n) 
    def send(self, data): self.sock.sendto(data, SERVER)
    def recv(self, want_type):
        data, src = self.sock.recvfrom(4096)
        assert src == SERVER, src
        assert data[0] == 0x70 and data[1] == want_type, (self.name, data[:2].hex(), want_type)
        return data
    def signed(self, body): return body + mac(self.key, body)
    def check_mac(self, data): assert mac(self.key, data[:-16]) == data[-16:], "bad MAC from server"
    def register(self):
        hello = b"\x70\x01" + self.txid() + bytes(86)
        self.send(hello)
        cookie = self.recv(0x02)
        assert len(cookie) <= len(hello), "COOKIE larger than HELLO"
        assert cookie[2:10] == hello[2:10] and cookie[26:58] == server_pub, "COOKIE"
        t = self.txid()
        reg = self.signed(b"\x70\x03" + t + cookie[10:26] + self.pub + bytes([len(self.name)]) +
                          self.name.encode() + b"\x01" + endpoint("10.0.0.2", 5000) +
                          struct.pack("!H", 12) +  # rtt_ms to the server
                          struct.pack("!BHH", 3, 2, 40000) +  # NAT: apdm, step 2, last port
                          b"\x01" +  # its one private endpoint is a port mapping
                          struct.pack("!Q", int(time.monotonic() * 1000)) +  # sequence
                          b"\x00")  # no address-validation token: the cookie proves it
        self.send(reg)
        r = self.recv(0x04); self.check_mac(r)
        assert r[2:10] == t and parse_endpoint(r[10:29]) == self.addr, "REGISTERED"
        self.keepalive = struct.unpack("!H", r[45:47])[0]
        assert r[47] == 24 and len(r) == 48 + 24 + 16, "REGISTERED carries a 24-byte token"
    def connect(self, name, pinned=bytes(32)):
        t = self.txid()
        self.send(self.signed(b"\x70\x05" + t + self.pub + pinned + bytes([len(name)]) + name.encode()))
        return t

def parse_introduce(d):
    session, key, n = d[10:18], d[18:50], d[50]
    name = d[51:51 + n].decode(); at = 51 + n
    public = parse_endpoint(d[at:at + 19]); at += 19
    nprv = d[at]; at += 1
    private = [parse_endpoint(d[at + 19 * i: at + 19 * (i + 1)]) for i in range(nprv)]
    at += 19 * nprv
    return dict(txid=d[2:10], session=session, key=key, name=name, public=public,
                private=private, flags=d[at], rtt_ms=struct.unpack("!H", d[at + 1:at + 3])[0],
                nat=struct.unpack("!BHH", d[at + 3:at + 8]), mapped=d[at + 8])

alice, bob, mallory = Peer("alice", b"a"), Peer("bob", b"b"), Peer("mallory", b"m")
alice.register(); bob.register()
assert alice.keepalive == 25

if mode == "no-relay":
    t = alice.connect("bob")
    ia = alice.recv(0x06); alice.check_mac(ia); ia = parse_introduce(ia)
    ib = bob.recv(0x06); bob.check_mac(ib); ib = parse_introduce(ib)
    assert ia["flags"] == 1 and ib["flags"] == 0, (ia, ib)  # INITIATOR, no RELAY
    alice.send(b"\x70\x08" + ia["session"] + b"dropped")
    t = alice.connect("nobody"); alice.recv(0x07)          # a round trip
    print(base64.b64encode(server_pub).decode())
    sys.exit(0)

t = alice.connect("bob")
ia = alice.recv(0x06); alice.check_mac(ia); ia = parse_introduce(ia)
ib = bob.recv(0x06); bob.check_mac(ib); ib = parse_introduce(ib)
assert ia["txid"] == t and ia["flags"] == 3 and ib["flags"] == 2, (ia, ib)
assert ia["rtt_ms"] == 12 and ib["rtt_ms"] == 12, (ia, ib)  # each the other's, passed on
assert ia["nat"] == (3, 2, 40000) and ib["nat"] == (3, 2, 40000), (ia, ib)
assert ia["mapped"] == 1 and ib["mapped"] == 1, (ia, ib)  # passed on too
assert ia["name"] == "bob" and ia["key"] == bob.pub and ia["public"] == bob.addr, ia
assert ib["name"] == "alice" and ib["key"] == alice.pub and ib["public"] == alice.addr, ib
assert ia["private"] == ["10.0.0.2:5000"] and ia["session"] == ib["session"]
session = ia["session"]

def relay(payload): return b"\x70\x08" + session + payload
alice.send(relay(b"ping from alice"))
assert bob.recv(0x08) == relay(b"ping from alice")
# The session's first datagram relayed: both learn the relay's rates
# (RELAY_RATE, MAC'd: session, the other's key, bytes and datagrams a
# second, the least of punchd's limits: here its per-session defaults).
def relay_rate(p, other):
    r = p.recv(0x0a); p.check_mac(r)
    assert len(r) == 2 + 8 + 32 + 8 + 16 and r[2:10] == session and r[10:42] == other.pub, r.hex()
    return struct.unpack("!II", r[42:50])
assert relay_rate(alice, bob) == relay_rate(bob, alice) == (256 * 1024, 1000)
# A third address may not use the session: bob's next datagram is alice's.
mallory.sock.sendto(relay(b"spoof"), SERVER)
bob.send(relay(b"pong from bob"))
assert alice.recv(0x08) == relay(b"pong from bob")
alice.send(relay(b"second"))
assert bob.recv(0x08) == relay(b"second")

# Refusals: no such peer, a pinned key that is not bob's, not registered.
t = alice.connect("nobody")
r = alice.recv(0x07); alice.check_mac(r); assert r[2:10] == t and r[10:12] == b"\x00\x03"
t = alice.connect("bob", pinned=mallory.pub)
r = alice.recv(0x07); alice.check_mac(r); assert r[10:12] == b"\x00\x04"
t = mallory.connect("bob")
r = mallory.recv(0x07); mallory.check_mac(r); assert r[10:12] == b"\x00\x06"
# mallory claims bob's name: taken.
hello = b"\x70\x01" + mallory.txid() + bytes(86); mallory.send(hello)
cookie = mallory.recv(0x02)
mallory.send(mallory.signed(b"\x70\x03" + mallory.txid() + cookie[10:26] + mallory.pub + b"\x03bob\x00" + bytes(8) + bytes(8) + b"\x00"))  # ... no NAT, sequence 0, no token
r = mallory.recv(0x07); mallory.check_mac(r); assert r[10:12] == b"\x00\x02"

# The byte cap (--relay-max-bytes 200) closes the session.
for i in range(12):
    alice.send(relay(b"x" * 20))
bob.send(relay(b"after the cap"))  # dropped: no session any more
t = alice.connect("nobody")        # a round trip: everything before it was handled
alice.recv(0x07)
print(base64.b64encode(server_pub).decode(), alice.addr, bob.addr, base64.b64encode(session).decode())
PY
out=$(python3 "$TMP/client.py" "$port" "$key" full) || fail "the client script failed"
read -r server_pub alice_addr bob_addr session_b64 <<<"$out"
session=$(python3 -c 'import base64,sys; print(base64.b64decode(sys.argv[1]).hex())' "$session_b64")
pass "register, connect, relay both ways, refusals (client side)"

e=$(next_event registered) || fail "no registered event"
grep -q "\"name\":\"alice\",\"key\":\"[^\"]*\",\"public\":\"$alice_addr\",\"private\":\[\"10.0.0.2:5000\"\]" <<<"$e" ||
    fail "registered event for alice: $e"
e=$(next_event registered) || fail "no second registered event"
grep -q "\"name\":\"bob\"" <<<"$e" && grep -q "\"public\":\"$bob_addr\"" <<<"$e" || fail "registered event for bob: $e"
e=$(next_event introduced) || fail "no introduced event"
grep -q "\"name\":\"alice\"" <<<"$e" && grep -q "\"peer\":\"bob\"" <<<"$e" &&
    grep -q "\"peer_public\":\"$bob_addr\"" <<<"$e" && grep -q "\"session\":\"$session\"" <<<"$e" &&
    grep -q '"relay":true' <<<"$e" || fail "introduced event: $e"
e=$(next_event relay-opened) || fail "no relay-opened event"
grep -q "\"session\":\"$session\"" <<<"$e" || fail "relay-opened event: $e"
e=$(next_event relay-closed) || fail "no relay-closed event"
grep -q '"reason":"byte cap"' <<<"$e" || fail "relay-closed event: $e"
# Datagrams are 10 bytes + payload: alice's 15 and 6, bob's 13, then alice's
# 30-byte ones until the next would pass 200 (64 + 4 x 30 = 184).
[ "$(json_field "$e" bytes_from_name)" = $(( (10 + 15) + (10 + 6) + 4 * 30 )) ] &&
    [ "$(json_field "$e" bytes_from_peer)" = $((10 + 13)) ] || fail "relay-closed byte counts: $e"
pass "events: registered x2, introduced, relay-opened, relay-closed"

kill -USR1 "$PUNCHD_PID"
c=$(next_event counters) || fail "no counters event"
[ "$(json_field "$c" peers)" = 2 ] && [ "$(json_field "$c" introductions)" = 1 ] &&
    [ "$(json_field "$c" relay_wrong_source)" = 1 ] && [ "$(json_field "$c" refused_no_peer)" = 2 ] &&
    [ "$(json_field "$c" refused_key_mismatch)" = 1 ] &&
    [ "$(json_field "$c" refused_not_registered)" = 1 ] &&
    [ "$(json_field "$c" refused_name_taken)" = 1 ] || fail "counters: $c"
pass "counters: $c"

# The same --key file gives the same server key after a restart; --no-relay
# introduces without the relay flag.
stop_punchd
start_punchd --listen 127.0.0.1:0 --key "$key" --no-relay
out=$(python3 "$TMP/client.py" "$(port_of 1)" "$key" no-relay) || fail "the --no-relay client failed"
[ "$out" = "$server_pub" ] || fail "restart with --key: server key $out, want $server_pub"
next_event introduced | grep -q '"relay":false' || fail "--no-relay: introduced event offers relay"
kill -USR1 "$PUNCHD_PID"
c=$(next_event counters) || fail "no counters event"
[ "$(json_field "$c" relay_unknown)" = 1 ] && [ "$(json_field "$c" relayed)" = 0 ] || fail "--no-relay relayed: $c"
pass "--key kept the server key across restarts ($server_pub); --no-relay introduces only"
