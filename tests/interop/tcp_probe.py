# SPDX-License-Identifier: MIT
"""What punchd_tcp.sh and punchd_tcp_64.sh share: whether punchd closed a
TCP connection, and the per-source limit check. Run as a program:

  tcp_probe.py HOST PORT OTHER SOURCE...

connects once from each SOURCE (10 of them, one source IP or one IPv6 /64,
as punchd counts) and then from OTHER, to a punchd started with
--max-tcp 20 --max-tcp-per-ip 4: exactly 4 of the first must be held and
OTHER served. Prints ok, or exits with what went wrong."""
import socket
import sys

IP_FREEBIND = 15  # bind to any address of a local route (punchd_tcp_64.sh)


def closed_by_server(s, within):
    """The server closes s (recv gives EOF) within `within` seconds."""
    s.settimeout(within)
    try:
        while True:
            if s.recv(4096) == b"": return True
    except (socket.timeout, TimeoutError): return False
    except ConnectionResetError: return True


def per_source_limit(host, port, other, sources):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    def conn(src):
        s = socket.socket(family)
        if family == socket.AF_INET6:
            s.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
        s.bind((src, 0)); s.connect((host, port)); return s
    first = [conn(src) for src in sources]
    held = [s for s in first if not closed_by_server(s, 0.5)]
    last = conn(other)
    if len(held) != 4:
        sys.exit("%d connections from %s hold %d, not 4" % (len(sources), ", ".join(sorted(set(sources))), len(held)))
    if closed_by_server(last, 0.5):
        sys.exit("%s was refused although the server has room" % other)
    print("ok")


if __name__ == "__main__":
    per_source_limit(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:])
