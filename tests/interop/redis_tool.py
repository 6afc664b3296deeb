#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Two stand-ins for interop.cluster, loopback only:

  silent PORT READY            a "Redis" that takes connections and commands
                               and never answers (until killed); touches
                               READY once it listens
  capture PORT CHANNEL FILE    subscribe to CHANNEL at the Redis on PORT,
                               touch FILE.ready once subscribed, write the
                               first message's exact bytes to FILE, exit
"""
import socket
import sys


def silent(port, ready):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(16)
    open(ready, "w").close()
    held = []
    while True:
        conn, _ = srv.accept()
        held.append(conn)  # read nothing, answer nothing


def read_line(f):
    line = f.readline()
    if not line:
        raise SystemExit("capture: Redis closed the connection")
    return line.rstrip(b"\r\n")


def read_reply(f):
    """One RESP reply: bytes, int or a list of them."""
    line = read_line(f)
    kind, rest = line[:1], line[1:]
    if kind in (b"+", b"-"):
        return rest
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:n]
    if kind == b"*":
        return [read_reply(f) for _ in range(int(rest))]
    raise SystemExit("capture: not RESP: %r" % line)


def capture(port, channel, path):
    s = socket.create_connection(("127.0.0.1", port))
    ch = channel.encode()
    s.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n" % (len(ch), ch))
    f = s.makefile("rb")
    while True:
        reply = read_reply(f)
        if reply[0] == b"subscribe":
            open(path + ".ready", "w").close()
        elif reply[0] == b"message":
            with open(path, "wb") as out:
                out.write(reply[2])
            return


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "silent":
        silent(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "capture":
        capture(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
