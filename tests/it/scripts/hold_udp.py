"""Holds a UDP port and does nothing with it, as a program that took the agent's tray port.

usage: hold_udp.py ADDRESS PORT
Prints "holding" once bound, then sleeps (the test kills it). Runs inside a test's own
network namespace only.
"""
import socket
import sys
import time

s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("holding", flush=True)
time.sleep(120)
