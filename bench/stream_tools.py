# SPDX-License-Identifier: MIT
"""The stream benchmarks' two ends (bench/stream_bench.sh, stream_loss_bench.sh).

  count [PORT READY_FILE]   read stdin, or the one TCP connection accepted on
                            PORT (READY_FILE created once listening); print
                            "BYTES RATE_Bps", timed from the first byte to
                            the end of the stream, so set-up is in no figure
  send HOST PORT BYTES [CC] send BYTES zero bytes over TCP, with congestion
                            control CC (bbr, cubic, ...; default the system's)
"""
import socket
import sys
import time


def count(argv):
    if argv:
        lsock = socket.socket()
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("0.0.0.0", int(argv[0])))
        lsock.listen(1)
        open(argv[1], "w").close()
        conn, _ = lsock.accept()
        read = lambda: conn.recv(1 << 20)
    else:
        read = lambda: sys.stdin.buffer.raw.read(1 << 20)
    n, t0 = 0, None
    while True:
        b = read()
        if not b:
            break
        if t0 is None:
            t0 = time.monotonic()
        n += len(b)
    dt = time.monotonic() - t0 if t0 else 0
    print(n, n / dt if dt else 0)


def send(argv):
    s = socket.socket()
    if len(argv) > 3:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, argv[3].encode())
    s.connect((argv[0], int(argv[1])))
    left, chunk = int(argv[2]), b"\0" * (1 << 20)
    while left > 0:
        s.sendall(chunk[:min(left, len(chunk))])
        left -= min(left, len(chunk))
    s.close()


if __name__ == "__main__":
    {"count": count, "send": send}[sys.argv[1]](sys.argv[2:])
