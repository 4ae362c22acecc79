"""`hushpost serve` cannot be held by slow clients, nor fed oversized requests.

A real `hushpost serve` (one worker process, two threads) on loopback: clients
that trickle their headers or their body a byte a second, more of them than
the server has threads, are cut off after HUSHPOST_REQUEST_TIMEOUT, and a normal
request meanwhile is answered.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.settings import _free_port

ROOT = Path(__file__).parent.parent
TIMEOUT = 3  # HUSHPOST_REQUEST_TIMEOUT for this server
CSRF_COOKIE = "csrftoken=" + "k" * 32  # with a cookie, Django reads the body to find the token


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("serve")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUSHPOST_", "DJANGO_"))}
    env |= {"HUSHPOST_MODE": "development", "HUSHPOST_DATA_DIR": str(data), "HUSHPOST_BIND": f"127.0.0.1:{port}",
            "HUSHPOST_BASE_URL": f"http://127.0.0.1:{port}", "HUSHPOST_REQUEST_TIMEOUT": str(TIMEOUT)}
    migrate = subprocess.run([sys.executable, "-m", "hushpost.cli", "migrate", "-v0"], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=180)
    assert migrate.returncode == 0, migrate.stderr
    process = subprocess.Popen([sys.executable, "-m", "hushpost.cli", "serve", "--workers", "1", "--threads", "2"],
                               env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2).close()
            break
        except OSError:
            assert time.monotonic() < deadline and process.poll() is None, "hushpost serve did not start"
            time.sleep(0.2)
    yield port
    process.terminate()
    _, err = process.communicate(timeout=30)
    assert "request cut off: its headers did not arrive in time (client 127.0.0.1)" in err
    assert "request cut off: its body did not arrive in time (client 127.0.0.1)" in err


class Trickle(threading.Thread):
    """A client sending ``head`` at once, then ``drip`` a byte a second, for 30 s at most."""

    def __init__(self, port: int, head: bytes, drip: bytes):
        super().__init__(daemon=True)
        self.port, self.head, self.drip = port, head, drip
        self.answer, self.sent, self.lasted = b"", 0, 0.0

    def run(self):
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            try:
                sock.sendall(self.head)
                for byte in self.drip:
                    if time.monotonic() - started > 30:
                        break
                    sock.sendall(bytes([byte]))
                    self.sent += 1
                    if select.select([sock], [], [], 1)[0]:
                        self.answer = sock.recv(4096)
                        break  # an answer, or the server closed the connection
            except OSError:  # cut off while sending
                pass
        self.lasted = time.monotonic() - started


def test_clients_that_trickle_are_cut_off_and_a_normal_request_is_answered(server):
    host = f"Host: 127.0.0.1:{server}\r\n"
    tricklers = [Trickle(server, b"", f"POST /login HTTP/1.1\r\n{host}X-Slow: {'a' * 100}".encode())
                 for _ in range(2)]
    tricklers += [Trickle(server, (f"POST /login HTTP/1.1\r\n{host}Cookie: {CSRF_COOKIE}\r\n"
                                   "Content-Type: application/x-www-form-urlencoded\r\n"
                                   "Content-Length: 10000\r\n\r\n").encode(), b"a" * 10000)
                  for _ in range(2)]
    for t in tricklers:
        t.start()
    time.sleep(1.5)  # both threads are taken by now
    started = time.monotonic()
    with urllib.request.urlopen(f"http://127.0.0.1:{server}/login", timeout=30) as page:
        assert page.status == 200
    # Generous: a bound on the protection (two rounds of the 3 s timeout), not a speed test.
    assert time.monotonic() - started < 15
    for t in tricklers:
        t.join(40)
    headers, bodies = tricklers[:2], tricklers[2:]
    for t in headers:  # told why, then closed
        assert t.answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), t.answer
        assert TIMEOUT - 1 < t.lasted < 15
    for t in bodies:  # cut off mid-body: the connection closes
        assert t.answer == b"" and t.sent < 20
        assert TIMEOUT - 1 < t.lasted < 15


def test_oversized_request_lines_and_headers_are_refused(server):
    def first_line(request: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", server), timeout=10) as sock:
            sock.sendall(request)
            return sock.recv(4096).split(b"\r\n", 1)[0]

    host = f"Host: 127.0.0.1:{server}\r\n".encode()
    assert first_line(b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n" + host + b"\r\n") == b"HTTP/1.1 414 URI Too Long"
    big = b"GET /login HTTP/1.1\r\n" + host + b"X-Big: " + b"b" * 9000 + b"\r\n\r\n"
    assert first_line(big) == b"HTTP/1.1 431 Request Header Fields Too Large"
    many = b"GET /login HTTP/1.1\r\n" + host + b"".join(b"X-%d: y\r\n" % i for i in range(120)) + b"\r\n"
    assert first_line(many) == b"HTTP/1.1 431 Request Header Fields Too Large"
    with urllib.request.urlopen(f"http://127.0.0.1:{server}/login", timeout=30) as page:
        assert page.status == 200
