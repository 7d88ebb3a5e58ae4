"""A plain TCP listener, not serve: accepts and holds every connection, never says a word.

usage: plain_listener.py ADDR PORT
Prints "up" once it listens, and stops accepting after 60 s. Runs inside a test's own network
namespace only (tests/it/util.rs, PlainListener).
"""
import socket
import sys
import time

addr, port = sys.argv[1], int(sys.argv[2])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(512)
print("up", flush=True)
conns = []
end = time.time() + 60
while time.time() < end:
    c, _ = s.accept()
    conns.append(c)
