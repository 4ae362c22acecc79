"""Doors between a network namespace of its own and the machine outside it.

docs/operations.md is run in a namespace with only a loopback interface, so that its services
listen on the ports the guide gives (80, 443, 8000) without meeting anything else on the test
machine. It needs three things from outside: PostgreSQL (reached through its Unix socket, which
the namespace shares), the package index for ``pip install``, and the mail relay. A door is a
TCP port inside (``inside``, run as a script there) passing each connection to a Unix socket on
the shared filesystem, where the test listens (``Outside``) and connects on to a TCP address
outside, or, for pip's proxy, to the host an HTTP ``CONNECT`` asks for (port 443 only).
"""

from __future__ import annotations

import socket
import sys
import threading
from pathlib import Path


def _pump(a: socket.socket, b: socket.socket) -> None:
    """Copy ``a`` to ``b`` until ``a`` ends, then end ``b``'s sending side."""
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    finally:
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def _join(a: socket.socket, b: socket.socket) -> None:
    back = threading.Thread(target=_pump, args=(b, a), daemon=True)
    back.start()
    _pump(a, b)
    back.join()
    a.close()
    b.close()


def _serve(listener: socket.socket, handle) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return  # closed
        threading.Thread(target=handle, args=(client,), daemon=True).start()


class Outside:
    """The outer end of a door: a Unix socket at ``path`` that connects on to ``target``
    (host, port), or acts as an HTTPS proxy when ``target`` is None."""

    def __init__(self, path: Path, target: tuple[str, int] | None) -> None:
        self.path, self.target = path, target
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(64)
        threading.Thread(target=_serve, args=(self.listener, self._handle), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        try:
            target = self.target or self._connect_request(client)
            upstream = socket.create_connection(target, timeout=30)
            upstream.settimeout(None)
        except (OSError, ValueError):
            client.close()
            return
        if self.target is None:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        _join(client, upstream)

    @staticmethod
    def _connect_request(client: socket.socket) -> tuple[str, int]:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk or len(head) > 16384:
                raise ValueError("no complete request")
            head += chunk
        method, address, _ = head.split(b"\r\n", 1)[0].decode("ascii").split(" ", 2)
        host, _, port = address.rpartition(":")
        if method != "CONNECT" or port != "443":
            client.sendall(b"HTTP/1.1 403 Forbidden\r\n\r\n")
            raise ValueError(f"not allowed: {method} {address}")
        return host, 443

    def close(self) -> None:
        self.listener.close()


def inside(specs: list[str]) -> None:
    """Listen on each ``127.0.0.1:PORT=/path/to/socket`` and pass connections to the socket."""
    listeners = []
    for spec in specs:
        address, path = spec.split("=", 1)
        host, port = address.rsplit(":", 1)
        listener = socket.create_server((host, int(port)))
        listeners.append(listener)

        def handle(client: socket.socket, path: str = path) -> None:
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(path)
            except OSError:
                client.close()
                return
            _join(client, upstream)

        threading.Thread(target=_serve, args=(listener, handle), daemon=True).start()
    print("doors open", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    inside(sys.argv[1:])
