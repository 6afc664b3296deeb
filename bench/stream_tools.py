# SPDX-License-Identifier: MIT
"""The stream benchmarks' two ends (bench/stream_bench.sh, stream_loss_bench.sh).

  count [PORT READY_FILE]   read stdin, or the one TCP connection accepted on
                            PORT (READY_FILE created once listening); print
                            "BYTES RATE_Bps", timed from the first byte to
                            the end of the stream, so set-up is in no figure
  send HOST PORT BYTES [CC] send BYTES zero bytes over TCP, with congestion
                            control CC (bbr, cubic, ...; default the system's)
  grow FILE BYTES READY     poll FILE's size every millisecond until it holds
                            BYTES (or stops growing for 30 s; READY created
                            once polling); print "SIZE
                            RATE_Bps" as count does, first byte to last: times
                            a program that writes its download into a file
                            (bench/transport_compare.sh: ngtcp2's client,
                            whose loop stops on a full pipe)
  cpu OUT CMD...            run CMD (stdin and stdout its own), exit with its
                            status, and write to OUT "USER_S SYS_S WAIT_S": the
                            CPU time CMD used and the time it waited for a CPU
                            while runnable (/proc/PID/schedstat, read every
                            10 ms while it runs), so a figure taken on a
                            loaded machine says how loaded
"""
import os
import resource
import socket
import subprocess
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


def grow(argv):
    path, want = argv[0], int(argv[1])
    size, t0, t_last = 0, None, time.monotonic()
    open(argv[2], "w").close()
    while size < want and time.monotonic() - t_last < 30:
        try:
            now_size = os.stat(path).st_size
        except OSError:
            now_size = 0
        now = time.monotonic()
        if now_size > size:
            t0 = now if t0 is None else t0
            size, t_last = now_size, now
        time.sleep(0.001)
    dt = t_last - t0 if t0 is not None else 0
    print(size, size / dt if dt else 0)


def schedstat_wait(pid):
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def cpu(argv):
    # Children reaped before CMD count too (a site hook of the interpreter
    # may run some at start-up): only what CMD adds is CMD's.
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    child = subprocess.Popen(argv[1:])
    wait = 0.0
    while child.poll() is None:
        w = schedstat_wait(child.pid)  # gone with the process: the last read counts
        wait = w if w is not None else wait
        time.sleep(0.01)
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(argv[0], "w") as f:
        print(f"{ru.ru_utime - ru0.ru_utime:.3f} {ru.ru_stime - ru0.ru_stime:.3f} {wait:.3f}", file=f)
    sys.exit(child.returncode)


if __name__ == "__main__":
    {"count": count, "send": send, "grow": grow, "cpu": cpu}[sys.argv[1]](sys.argv[2:])
