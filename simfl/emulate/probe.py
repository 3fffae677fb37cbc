"""A TCP transfer between two namespaces, timed: what the shaping tests measure links with.

    python -m simfl.emulate.probe serve PORT                # accept one connection, read everything, reply
    python -m simfl.emulate.probe send HOST PORT NBYTES     # send NBYTES, print seconds until the reply
    python -m simfl.emulate.probe fetch HOST PORT NBYTES    # ask for NBYTES, print seconds to receive them
"""

from __future__ import annotations

import socket
import sys
import time

CHUNK = 1 << 16


def serve(port: int) -> None:
    with socket.create_server(("0.0.0.0", port)) as s:
        print("ready", flush=True)
        conn, _ = s.accept()
        with conn:
            head = conn.recv(16)
            if head.startswith(b"FETCH"):
                n = int(head[5:].strip())
                buf = b"\0" * CHUNK
                while n > 0:
                    conn.sendall(buf[:min(n, CHUNK)])
                    n -= min(n, CHUNK)
                return
            while conn.recv(CHUNK):
                pass
            conn.sendall(b"ok")


def send(host: str, port: int, n: int) -> None:
    with socket.create_connection((host, port), timeout=120) as c:
        c.sendall(b"SEND".ljust(16))
        t0 = time.perf_counter()
        buf = b"\0" * CHUNK
        left = n
        while left > 0:
            c.sendall(buf[:min(left, CHUNK)])
            left -= min(left, CHUNK)
        c.shutdown(socket.SHUT_WR)
        c.recv(2)
        print(time.perf_counter() - t0)


def fetch(host: str, port: int, n: int) -> None:
    with socket.create_connection((host, port), timeout=120) as c:
        t0 = time.perf_counter()
        c.sendall(f"FETCH{n}".encode().ljust(16))
        got = 0
        while got < n:
            data = c.recv(CHUNK)
            if not data:
                break
            got += len(data)
        print(time.perf_counter() - t0)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "serve":
        serve(int(sys.argv[2]))
    elif cmd == "send":
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        fetch(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
