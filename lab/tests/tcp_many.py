#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Many TCP connections at once, for punch forward's tests.

  tcp_many.py echo PORT --ready FILE
      echo server on 127.0.0.1:PORT: each connection gets its bytes back,
      and its end of input ends the answer; FILE is written once it listens.
  tcp_many.py clients PORT N SIZE [--refused K]
      N connections to 127.0.0.1:PORT, all open at the same time; each sends
      SIZE random bytes of its own, ends its output and must read the same
      bytes back. With --refused K, K of them must be closed by the other
      side before anything was sent (a limit reached) and the rest echoed.
Prints what it saw; exits 0 when every connection did what it should.
"""
import os
import selectors
import socket
import socketserver
import sys
import threading
import time


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(65536)
            if not data:
                break
            self.request.sendall(data)
        self.request.shutdown(socket.SHUT_WR)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 4096


def echo(port, ready):
    with Server(("127.0.0.1", port), Echo) as srv:
        with open(ready, "w") as f:
            f.write("ready\n")
        srv.serve_forever()


def exchange(sock, size):
    """Send size random bytes, end output, read them back: True when equal."""
    data = os.urandom(size)
    got = bytearray()
    sock.settimeout(60)
    try:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
    except OSError as e:
        print("connection failed: %s" % e, file=sys.stderr)
        return False
    finally:
        sock.close()
    return bytes(got) == data


def closed_early(socks, want, deadline_s=20):
    """Wait until `want` of socks are closed by the peer (no sleeping: a
    closed socket turns readable). Returns the set of closed ones."""
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    closed = set()
    end = time.monotonic() + deadline_s
    while len(closed) < want and time.monotonic() < end:
        for key, _ in sel.select(timeout=end - time.monotonic()):
            s = key.fileobj
            try:
                data = s.recv(1)
            except OSError:
                data = b""
            if data:
                print("a connection spoke before anything was sent", file=sys.stderr)
                return None
            sel.unregister(s)
            closed.add(s)
    return closed


def clients(port, n, size, refused):
    socks = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(n)]
    closed = set()
    if refused:
        closed = closed_early(socks, refused)
        if closed is None:
            return 1
        print("%d of %d closed at once" % (len(closed), n))
    results = []
    live = [s for s in socks if s not in closed]
    threads = [threading.Thread(target=lambda s=s: results.append(exchange(s, size))) for s in live]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    good = sum(results)
    print("%d of %d connections open at once echoed %d bytes intact" % (good, len(live), size))
    for s in closed:
        s.close()
    return 0 if good == len(live) and len(closed) == refused else 1


def main():
    if len(sys.argv) >= 5 and sys.argv[1] == "echo" and sys.argv[3] == "--ready":
        echo(int(sys.argv[2]), sys.argv[4])
        return 0
    if len(sys.argv) in (5, 7) and sys.argv[1] == "clients":
        refused = int(sys.argv[6]) if len(sys.argv) == 7 and sys.argv[5] == "--refused" else 0
        return clients(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), refused)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
