"""UDP datagrams from rotating spoofed sources (raw sockets), for serve's flood tests.

usage: spoof_flood.py DST4 DST6 PORT TOTAL SECONDS
Half go out over IPv4 from random addresses in 198.18.0.0/15, half over IPv6 from a random
address in a random /64 of 2001:db8::/32. A third are one byte, a third look like probes
(the right magic and length, so serve has to check their MAC), a third random junk. The
sending is paced to last SECONDS. Runs inside a test's own network namespace only.
"""
import os
import random
import socket
import struct
import sys
import time

dst4, dst6, port, total, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
d4 = socket.inet_pton(socket.AF_INET, dst4)
d6 = socket.inet_pton(socket.AF_INET6, dst6)
s4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def payload(i):
    kind = i % 3
    if kind == 0:
        return b"\x01"
    if kind == 1:
        return b"APRB\x02\x01\x00\x00" + os.urandom(58)
    return os.urandom(random.randint(0, 200))


start = time.monotonic()
print("started", flush=True)
for i in range(total):
    data = payload(i // 2)
    sport = random.randint(1024, 65535)
    length = 8 + len(data)
    if i % 2 == 0:
        src = struct.pack("!I", 0xC6120000 + random.randint(1, 0x1FFFE))
        udp = struct.pack("!HHHH", sport, port, length, 0) + data
        # Total length and header checksum are filled in by the kernel.
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + length, i & 0xFFFF, 0, 64, 17, 0, src, d4)
        s4.sendto(ip + udp, (dst4, 0))
    else:
        src = bytes.fromhex("20010db8") + os.urandom(12)
        pseudo = src + d6 + struct.pack("!I3xB", length, 17)
        udp = struct.pack("!HHHH", sport, port, length, 0) + data
        udp = udp[:6] + struct.pack("!H", checksum(pseudo + udp) or 0xFFFF) + udp[8:]
        ip = struct.pack("!IHBB16s16s", 0x60000000, length, 17, 64, src, d6)
        s6.sendto(ip + udp, (dst6, 0))
    ahead = start + seconds * (i + 1) / total - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)
print("sent", total, flush=True)
