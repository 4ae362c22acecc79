"""The gunicorn worker ``hushpost serve`` runs: gthread, with deadlines for reading requests.

gunicorn's threaded worker hands a connection to a thread once its first bytes
arrive, then reads the request with blocking socket calls and no time limit: a
client that trickles its headers or its body a byte every few seconds holds a
thread for as long as it likes, and a handful of them stop the server.  A
socket timeout does not help, since it bounds each read, not the request.

So each request gets a deadline, kept by one watchdog thread per worker
process: the headers must have arrived within ``HUSHPOST_REQUEST_TIMEOUT`` seconds
of the thread taking the connection, and the body gets as long again plus one
second per ``HUSHPOST_REQUEST_MIN_RATE`` bytes received (Apache's mod_reqtimeout
rule: a large upload on a slow but steady line goes through; a trickle does not).  Past it,
the watchdog shuts the socket down, which ends the thread's blocked read; a
client still sending headers is told ``408`` first.  Once the body is read the
request has no deadline: the application's work and the response (a download
can take hours) are not the client's delay.
"""

from __future__ import annotations

import socket
import threading
import time

from django.conf import settings
from gunicorn.workers.gthread import ThreadWorker

_SAID = b"The request took too long to arrive.\n"
TIMED_OUT = (b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\n"
             b"Content-Length: %d\r\n\r\n%s" % (len(_SAID), _SAID))


class Deadlines:
    """Sockets being read, each with the time its request must have arrived by."""

    def __init__(self, log):
        self.log = log
        self._lock = threading.Lock()
        self._due: dict[socket.socket, tuple[float, bool]] = {}
        threading.Thread(target=self._watch, name="hushpost-read-deadlines", daemon=True).start()

    def set(self, sock: socket.socket, due: float, *, headers: bool) -> None:
        with self._lock:
            self._due[sock] = (due, headers)

    def clear(self, sock: socket.socket) -> None:
        with self._lock:
            self._due.pop(sock, None)

    def _watch(self) -> None:
        while True:
            time.sleep(0.25)
            now = time.monotonic()
            with self._lock:
                late = [(sock, headers) for sock, (due, headers) in self._due.items() if due < now]
                for sock, headers in late:
                    del self._due[sock]
                    self._cut(sock, headers)

    def _cut(self, sock: socket.socket, headers: bool) -> None:
        try:
            peer = sock.getpeername()
            if headers:  # nothing has been written yet: the client may as well know why
                sock.send(TIMED_OUT, socket.MSG_DONTWAIT)
            sock.shutdown(socket.SHUT_RDWR)  # the blocked read returns: the thread is free
        except OSError:  # already closed, or the client went away
            return
        self.log.info("request cut off: its %s did not arrive in time (client %s)",
                      "headers" if headers else "body", peer[0] if isinstance(peer, tuple) else peer)


class TimedBody:
    """A request body whose deadline moves on with what arrives, and ends with it."""

    def __init__(self, body, sock: socket.socket, deadlines: Deadlines, length: int | None):
        self.body, self.sock, self.deadlines, self.length = body, sock, deadlines, length
        self.started, self.received = time.monotonic(), 0
        self.deadlines.set(sock, self.started + settings.REQUEST_TIMEOUT, headers=False)

    def _progress(self, data: bytes) -> bytes:
        self.received += len(data)
        if not data or (self.length is not None and self.received >= self.length):
            self.deadlines.clear(self.sock)
        else:
            due = self.started + settings.REQUEST_TIMEOUT + self.received / settings.REQUEST_MIN_RATE
            self.deadlines.set(self.sock, due, headers=False)
        return data

    def read(self, size=None):
        return self._progress(self.body.read(size))

    def readline(self, size=None):
        return self._progress(self.body.readline(size))

    def readlines(self, size=None):
        return [self._progress(line) for line in self.body.readlines(size)]

    def __iter__(self):
        return self

    def __next__(self):
        return self._progress(next(self.body))


class Worker(ThreadWorker):
    def run(self):
        self.deadlines = Deadlines(self.log)
        super().run()

    def handle(self, conn):
        sock = conn.sock
        self.deadlines.set(sock, time.monotonic() + settings.REQUEST_TIMEOUT, headers=True)
        try:
            return super().handle(conn)
        finally:
            self.deadlines.clear(sock)

    def handle_request(self, req, conn):
        # The headers are in (gunicorn has checked them); a body, if any, has a deadline of its own.
        headers = dict(req.headers)
        chunked = "chunked" in headers.get("TRANSFER-ENCODING", "").lower()
        length = int(headers.get("CONTENT-LENGTH") or 0)
        if chunked or length:
            req.body = TimedBody(req.body, conn.sock, self.deadlines, None if chunked else length)
        else:
            self.deadlines.clear(conn.sock)
        return super().handle_request(req, conn)
