"""A small HTTP CONNECT proxy for the tests, like the proxies agents sit behind.

usage: connect_proxy.py PORT MODE [USER PASSWORD]
MODE: allow (opens the tunnel and relays both ways), deny (403), basic (407 with
Proxy-Authenticate: Basic unless the request carries USER and PASSWORD in
Proxy-Authorization, then as allow), ntlm (407 offering only NTLM and Negotiate, as Windows
proxies do), garbage (answers like no proxy). Listens on every address (IPv4 and IPv6) of
the namespace it runs in; prints "proxy ready", then one line "CONNECT target" per request
it got (basic: followed by "authorized", "no credentials" or "wrong credentials"). Stops
after 5 minutes. Runs inside a test's own network namespace only.
"""
import base64
import socket
import sys
import threading
import time

port, mode = int(sys.argv[1]), sys.argv[2]
credentials = sys.argv[3:5]


def pump(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


log_lock = threading.Lock()


def log(line):
    # print writes the line and its newline apart: two tunnels at once would run together.
    with log_lock:
        print(line, flush=True)


def authorization(headers):
    """What the request's Proxy-Authorization says about USER and PASSWORD."""
    for h in headers:
        name, _, value = h.partition(":")
        if name.strip().lower() != "proxy-authorization":
            continue
        scheme, _, token = value.strip().partition(" ")
        try:
            given = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except ValueError:
            return "wrong credentials"
        right = scheme.lower() == "basic" and given == ":".join(credentials)
        return "authorized" if right else "wrong credentials"
    return "no credentials"


def handle(c):
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 8192:
        chunk = c.recv(1)
        if not chunk:
            c.close()
            return
        head += chunk
    lines = head.decode("latin-1").split("\r\n")
    method, target = (lines[0].split(" ") + ["", ""])[:2]
    signed_in = authorization(lines[1:])
    log(f"{method} {target}" + (f" {signed_in}" if mode == "basic" else ""))
    if mode == "garbage":
        c.sendall(b"SSH-2.0-not-a-proxy\r\n\r\n")
    elif mode == "deny" or method != "CONNECT":
        c.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    elif mode == "basic" and signed_in != "authorized":
        c.sendall(b'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="lab"\r\nContent-Length: 0\r\n\r\n')
    elif mode == "ntlm":
        c.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: NTLM\r\nProxy-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n")
    else:
        host, _, p = target.rpartition(":")
        try:
            up = socket.create_connection((host.strip("[]"), int(p)), timeout=5)
        except OSError:
            c.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            c.close()
            return
        up.settimeout(None)
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        threading.Thread(target=pump, args=(c, up), daemon=True).start()
        pump(up, c)
        return
    time.sleep(0.2)
    c.close()


s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", port))
s.listen(128)
s.settimeout(300)
print("proxy ready", flush=True)
try:
    while True:
        conn, _ = s.accept()
        conn.settimeout(30)
        threading.Thread(target=handle, args=(conn,), daemon=True).start()
except socket.timeout:
    pass
