"""A small TCP server for the real services serve stands in for (Automate's HTTPS, a web page,
MySQL's greeting, a relay that only holds connections).

usage: ns_tcp_server.py MODE PORT PAYLOAD_HEX [CHAIN_PEM KEY_PEM]
MODE is one of
  https  TLS with CHAIN_PEM and KEY_PEM: reads a request, answers PAYLOAD, closes;
  http   reads a request, answers PAYLOAD, closes;
  echo-host  reads a request, answers 200 with its Host header as the Server header, closes;
  greet  speaks first (PAYLOAD), holds the connection a moment, closes;
  hold   accepts and holds every connection, never says a word.
One dual-stack socket on [::] (IPv4 too, IPV6_V6ONLY off), each connection in its own thread.
Prints "up" once it listens, and stops accepting after two minutes. Runs inside a test's own
network namespace only (tests/it/util.rs, NsTcpServer).
"""
import socket
import ssl
import sys
import threading
import time

mode, port, payload = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
ctx = None
if mode == 'https':
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[4], sys.argv[5])
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(('::', port))
s.listen(512)
s.settimeout(0.5)
held = []


def handle(c):
    try:
        c.settimeout(10)
        if mode == 'hold':
            held.append(c)
            return
        if ctx is not None:
            c = ctx.wrap_socket(c, server_side=True)
        request = b''
        if mode in ('https', 'http', 'echo-host'):
            while b'\r\n\r\n' not in request and len(request) < 65536:
                chunk = c.recv(4096)
                if not chunk:
                    return
                request += chunk
        if mode == 'echo-host':
            host = [line[5:].strip() for line in request.split(b'\r\n') if line.lower().startswith(b'host:')]
            payload_now = b'HTTP/1.1 200 OK\r\nServer: ' + (host[0] if host else b'(none)') + b'\r\nConnection: close\r\n\r\n'
            c.sendall(payload_now)
        else:
            c.sendall(payload)
        if mode == 'greet':
            time.sleep(0.2)
        if ctx is not None:
            c.settimeout(2)
            c = c.unwrap()
        c.close()
    except Exception:
        pass


print('up', flush=True)
end = time.time() + 120
while time.time() < end:
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    threading.Thread(target=handle, args=(c,), daemon=True).start()
