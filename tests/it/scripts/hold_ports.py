"""Listens on TCP and binds UDP ports on every IPv4 address, as a server's services would.

usage: hold_ports.py TCP_PORTS(comma) UDP_PORTS(comma)
Prints "holding" once every port is held, then sleeps (the test kills it). Runs inside a
test's own network namespace only.
"""
import socket
import sys
import time

held = []
for port in filter(None, sys.argv[1].split(",")):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(port)))
    s.listen(16)
    held.append(s)
for port in filter(None, sys.argv[2].split(",")):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", int(port)))
    held.append(s)
print("holding", flush=True)
time.sleep(120)
