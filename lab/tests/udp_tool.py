#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""UDP probes for the lab tests (run inside lab nodes with `punch-lab exec`).

  udp_tool.py echo [--ready FILE] ADDR:PORT...
      Answer every datagram with the source address it came from ("ip:port").
      A datagram "other-port" is answered from a fresh socket (same address,
      new port), "other-addr:IP" from a fresh socket on IP: both are the
      unsolicited packets a filtering NAT must drop.

  udp_tool.py run --port P [--timeout S] STEP...
      One socket bound to P, then the steps in order, one line of output each:
        echo:IP:PORT[>FILE]    ask the echo server; print (and store) our mapping
        ask:KIND:IP:PORT       send KIND (other-port / other-addr:IP), print
                               "got FROM" or "none" (bounded by --timeout)
        send:IP:PORT:TEXT      send TEXT
        sendfile:FILE:TEXT     send TEXT to the "ip:port" in FILE (waits for it)
        waitfile:FILE          wait (bounded) until FILE exists
        ready:FILE             create FILE
        recv                   print "from IP:PORT TEXT" or "none"
        reply:TEXT             send TEXT to whoever we last received from

  udp_tool.py blast IP:PORT COUNT RATE
      Send COUNT numbered datagrams at RATE per second (paced per millisecond).

  udp_tool.py count --port P --ready FILE COUNT IDLE
      Count numbered datagrams until COUNT arrived or none for IDLE seconds;
      print "received N reordered K".
"""
import os
import select
import socket
import sys
import time


def hostport(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


def write_atomic(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def wait_file(path, timeout):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            sys.exit(f"udp_tool: gave up waiting for {path}")
        time.sleep(0.005)


def echo(args):
    ready = None
    if args[:1] == ["--ready"]:
        ready, args = args[1], args[2:]
    socks = []
    for a in args:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(hostport(a))
        socks.append(s)
    if ready:
        write_atomic(ready, "ready\n")
    while True:
        r, _, _ = select.select(socks, [], [])
        for s in r:
            data, src = s.recvfrom(2048)
            answer = f"{src[0]}:{src[1]}".encode()
            text = data.decode(errors="replace")
            if text == "other-port" or text.startswith("other-addr:"):
                ip = s.getsockname()[0] if text == "other-port" else text.split(":", 1)[1]
                o = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                o.bind((ip, 0))
                o.sendto(answer, src)
                o.close()
            else:
                s.sendto(answer, src)


def run(args):
    port, timeout = 0, 1.0
    while args and args[0].startswith("--"):
        if args[0] == "--port":
            port = int(args[1])
        elif args[0] == "--timeout":
            timeout = float(args[1])
        else:
            sys.exit(f"udp_tool: unknown option '{args[0]}'")
        args = args[2:]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    last = None

    def receive():
        r, _, _ = select.select([s], [], [], timeout)
        if not r:
            return None, None
        data, src = s.recvfrom(2048)
        return data.decode(errors="replace"), src

    for step in args:
        kind, _, rest = step.partition(":")
        if kind == "echo":
            target, _, store = rest.partition(">")
            mapped = None
            for _ in range(3):          # UDP: a few tries, each bounded
                s.sendto(b"echo", hostport(target))
                data, src = receive()
                if data is not None:
                    mapped = data
                    break
            print(f"echo {target} {mapped or 'none'}", flush=True)
            if store and mapped:
                write_atomic(store, mapped)
        elif kind == "ask":
            what, _, target = rest.rpartition(":")
            what, _, tport = what.rpartition(":")
            target = f"{tport}:{target}"
            s.sendto(what.encode(), hostport(target))
            data, src = receive()
            print(f"ask {what} {target} " + (f"got {src[0]}:{src[1]}" if data else "none"), flush=True)
        elif kind == "send":
            ip, p, text = rest.split(":", 2)
            s.sendto(text.encode(), (ip, int(p)))
        elif kind == "sendfile":
            path, _, text = rest.rpartition(":")
            wait_file(path, 5)
            with open(path) as f:
                s.sendto(text.encode(), hostport(f.read().strip()))
        elif kind == "waitfile":
            wait_file(rest, 5)
        elif kind == "ready":
            write_atomic(rest, "ready\n")
        elif kind == "recv":
            data, src = receive()
            if data is None:
                print("recv none", flush=True)
            else:
                last = src
                print(f"recv from {src[0]}:{src[1]} {data}", flush=True)
        elif kind == "reply":
            if last:
                s.sendto(rest.encode(), last)
        else:
            sys.exit(f"udp_tool: unknown step '{step}'")


def blast(args):
    target, count, rate = hostport(args[0]), int(args[1]), float(args[2])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    payload = bytearray(100)
    start = time.monotonic()
    for i in range(count):
        if i % 64 == 0:                 # pace: stay on schedule, in small bursts
            ahead = start + i / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        payload[0:4] = i.to_bytes(4, "big")
        while True:
            try:
                s.sendto(payload, target)
                break
            except BlockingIOError:
                time.sleep(0.0001)
    print(f"sent {count} in {time.monotonic() - start:.3f} s", flush=True)


def count(args):
    port, ready = int(args[1]), args[3]
    want, idle = int(args[4]), float(args[5])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, 33, 32 << 20)   # SO_RCVBUFFORCE: absorb bursts
    s.bind(("0.0.0.0", port))
    write_atomic(ready, "ready\n")
    got = reordered = 0
    last = -1
    s.settimeout(idle)
    while got < want:
        try:
            data = s.recv(2048)
        except socket.timeout:
            break
        n = int.from_bytes(data[0:4], "big")
        if n < last:
            reordered += 1
        last = max(last, n)
        got += 1
    print(f"received {got} reordered {reordered}", flush=True)


if __name__ == "__main__":
    cmds = {"echo": echo, "run": run, "blast": blast, "count": count}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]](sys.argv[2:])
