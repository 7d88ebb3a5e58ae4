#!/usr/bin/env python3
"""Writes fuzz/seeds/probe/ from PROTOCOL.md alone (an independent implementation): the
probe target checks at start-up that these bytes equal what the library encodes."""
import hashlib, hmac, os, struct

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds", "probe")
KEY = hashlib.pbkdf2_hmac("sha256", b"fuzzing-key-0123456789", b"automate-ports/2 probe key", 100_000, 32)
NOW, NONCE, PORT = 1_800_000_000_000, b"fuzz-nonce-0001!", 8002


def mac(b):
    return b + hmac.new(KEY, b, hashlib.sha256).digest()


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


os.makedirs(HERE, exist_ok=True)
probe = mac(b"APRB" + bytes([2, 1, 0, 0]) + struct.pack(">Q", NOW) + NONCE + struct.pack(">H", PORT))
write("valid-probe", probe)
write("wrong-key-probe", probe[:34] + bytes(32))
write("valid-reply", mac(b"APRB" + bytes([2, 2]) + struct.pack(">H", PORT) + NONCE))
write("other-port-reply", mac(b"APRB" + bytes([2, 2]) + struct.pack(">H", 8080) + NONCE))
write("stale-reply", mac(b"APRB" + bytes([2, 3]) + struct.pack(">H", PORT) + NONCE + struct.pack(">Q", NOW + 600_000)))
