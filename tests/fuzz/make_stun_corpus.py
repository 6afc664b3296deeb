#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpus for fuzz_stun into tests/fuzz/corpus/stun/.

The RFC 5769 vectors byte for byte, plus a few small messages built here
(MACs and CRCs computed with the standard library). Re-running it rewrites
the same files.
"""
import hashlib
import hmac
import os
import struct
import zlib

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "stun")
COOKIE = 0x2112A442


def hx(s):
    return bytes.fromhex("".join(s.split()))


RFC5769 = {
    "rfc5769-2.1-request": hx("""
        00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
        80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
        00 24 00 04 6e 00 01 ff 80 29 00 08 93 2f f9 b1 51 26 3b 36
        00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
        00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
        80 28 00 04 e5 7a 3b cf"""),
    "rfc5769-2.2-ipv4-response": hx("""
        01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
        80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
        00 20 00 08 00 01 a1 47 e1 12 a6 43
        00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
        80 28 00 04 c0 7d 4c 96"""),
    "rfc5769-2.3-ipv6-response": hx("""
        01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
        80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
        00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
        00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
        80 28 00 04 c8 fb 0b 4c"""),
    "rfc5769-2.4-long-term-request": hx("""
        00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
        00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00
        00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46
        53 54 76 79 36 34 73 41
        00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
        00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66"""),
}

TXID = bytes(range(1, 13))
KEY = b"VOkJxbRl1RmTxUk/WvJxBt"  # the fuzz target's fixed key


class Msg:
    def __init__(self, mtype, txid=TXID, classic=False):
        self.b = bytearray(struct.pack(">HH", mtype, 0))
        self.b += txid if classic else struct.pack(">I", COOKIE) + txid
        self.fix()

    def fix(self, extra=0):
        struct.pack_into(">H", self.b, 2, len(self.b) - 20 + extra)

    def attr(self, t, v):
        self.b += struct.pack(">HH", t, len(v)) + v + b"\0" * (-len(v) % 4)
        self.fix()
        return self

    def integrity(self, key=KEY):
        self.fix(24)
        return self.attr(0x0008, hmac.new(key, bytes(self.b), hashlib.sha1).digest())

    def integrity_sha256(self, key=KEY):
        self.fix(36)
        return self.attr(0x001C, hmac.new(key, bytes(self.b), hashlib.sha256).digest())

    def fingerprint(self):
        self.fix(8)
        crc = (zlib.crc32(bytes(self.b)) ^ 0x5354554E) & 0xFFFFFFFF
        return self.attr(0x8028, struct.pack(">I", crc))


def xor_v4(ip, port):
    ipn = struct.unpack(">I", bytes(ip))[0]
    return struct.pack(">BBHI", 0, 1, port ^ (COOKIE >> 16), ipn ^ COOKIE)


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = dict(RFC5769)
    seeds["binding-request"] = bytes(Msg(0x0001).b)
    seeds["binding-request-fingerprint"] = bytes(Msg(0x0001).fingerprint().b)
    seeds["classic-binding-response"] = bytes(
        Msg(0x0101, txid=bytes(range(1, 17)), classic=True)
        .attr(0x0001, struct.pack(">BBH4B", 0, 1, 32853, 192, 0, 2, 1))
        .attr(0x0005, struct.pack(">BBH4B", 0, 1, 3479, 198, 51, 100, 2)).b)
    seeds["error-420-unknown-attributes"] = bytes(
        Msg(0x0111)
        .attr(0x0009, b"\0\0\x04\x14Unknown Attribute")
        .attr(0x000A, struct.pack(">HHH", 0x0031, 0x0032, 0x8000))
        .fingerprint().b)
    seeds["allocate-response-turn"] = bytes(
        Msg(0x0103)
        .attr(0x0016, xor_v4([198, 51, 100, 7], 49152))
        .attr(0x0020, xor_v4([203, 0, 113, 9], 40001))
        .attr(0x000D, struct.pack(">I", 600))
        .attr(0x0022, bytes(range(8)))
        .attr(0x8022, b"punch")
        .integrity().integrity_sha256().fingerprint().b)
    seeds["channel-bind-request"] = bytes(
        Msg(0x0009)
        .attr(0x000C, b"\x40\x01\0\0")
        .attr(0x0012, xor_v4([198, 51, 100, 7], 4000))
        .attr(0x0019, b"\x11\0\0\0")
        .attr(0x0003, b"\0\0\0\x06")
        .attr(0x0027, b"\x9c\x40\0\0")
        .attr(0x0026, b"\0" * 13).b)
    seeds["channeldata-padded"] = bytes.fromhex("40010005") + b"hello" + b"\0\0\0"
    for name, data in sorted(seeds.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(seeds)} files to {OUT}")


if __name__ == "__main__":
    main()
