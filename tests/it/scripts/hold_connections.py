"""A slowloris: keeps COUNT TCP connections from SRC to DST's PORTS open for SECONDS,
sending nothing and opening a new one whenever one is closed.

usage: hold_connections.py SRC DST PORTS(comma) COUNT SECONDS
Prints "holding" once COUNT connects are under way, then at the end how many it opened and
how many the far side closed. Runs inside a test's own network namespace only.
"""
import errno
import selectors
import socket
import sys
import time

src, dst, ports, count, seconds = sys.argv[1], sys.argv[2], [int(p) for p in sys.argv[3].split(",")], int(sys.argv[4]), float(sys.argv[5])
family = socket.AF_INET6 if ":" in dst else socket.AF_INET
sel = selectors.DefaultSelector()
opened = closed = 0


def connect(i):
    global opened
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setblocking(False)
    s.bind((src, 0))
    err = s.connect_ex((dst, ports[i % len(ports)]))
    if err not in (0, errno.EINPROGRESS):
        s.close()
        return
    opened += 1
    sel.register(s, selectors.EVENT_READ, i)


for i in range(count):
    connect(i)
print("holding", flush=True)
end = time.monotonic() + seconds
while time.monotonic() < end:
    for key, _ in sel.select(timeout=0.05):
        s = key.fileobj
        try:
            data = s.recv(64)
        except OSError:
            data = b""
        if not data:
            closed += 1
            sel.unregister(s)
            s.close()
            connect(key.data)
print("opened", opened, "closed", closed, flush=True)
