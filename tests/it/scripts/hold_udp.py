"""Holds a UDP port and does nothing with it, as a program that took the agent's tray port.

usage: hold_udp.py ADDRESS PORT [LAST]
Holds PORT, or every port from PORT to LAST. Prints "holding" once bound, then sleeps (the test kills it). Runs inside a test's own
network namespace only.
"""
import socket
import sys
import time

first = int(sys.argv[2])
last = int(sys.argv[3]) if len(sys.argv) > 3 else first
held = []
for port in range(first, last + 1):
    s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((sys.argv[1], port))
    held.append(s)
print("holding", flush=True)
time.sleep(120)
