"""``hushpost smtpd --processes N``: several gateway processes on one port.

One process serves SMTP on one core at most (its threads share one interpreter
lock), so a busy gateway runs several.  The first process binds the listening
sockets and forks the others, which all accept on those sockets: a connection
goes to whichever is free to take it.  It restarts a process that dies, and on
SIGTERM stops them all, each as one gateway stops (no new connections, the
messages being stored finished).  The connection limits count the connections
of all of them together (:class:`SharedLimits`).  Each process has its own
worker threads, database connections and reader processes, and rides out a
database restart as one gateway does.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time

from django.conf import settings
from django.db import connections

from hushpost.gateway import server
from hushpost.gateway.session import SharedLimits

log = logging.getLogger("hushpost.gateway")
RESTART_PAUSE = 1.0  # seconds between restarts of a process that keeps failing to start


class Processes:
    """The first process: binds, forks ``count`` gateways, keeps them running, stops them."""

    def __init__(self, bind: str | None, count: int):
        self.bind, self.count = bind, max(1, count)
        self.gateway = server.build(bind)  # the settings are checked once, here, before any fork
        self.sockets: list[socket.socket] = []
        self.limits = SharedLimits(settings.SMTPD_MAX_CONNECTIONS, settings.SMTPD_MAX_PER_CLIENT, self.count)
        self.children: dict[int, tuple[int, float]] = {}  # pid: (its row in the limits, started at)

    def listen(self) -> None:
        self.sockets = server.listen(self.bind)
        self.gateway.controller.port = self.sockets[0].getsockname()[1]

    def run(self, stop: threading.Event) -> None:
        """Fork the gateways and keep them running until ``stop`` is set; then stop them."""
        connections.close_all()  # a connection must not be shared with the forked processes
        self.gateway.controller.loop.close()
        self.gateway.executor.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            for row in range(self.count):
                self._fork(row)
            while not stop.wait(0.2):
                self._restart_the_dead(stop)
        finally:
            self._stop_all()
            for sock in self.sockets:
                sock.close()

    def _fork(self, row: int) -> None:
        pid = os.fork()
        if pid == 0:  # the new gateway process
            code = 1
            try:
                code = _serve(self.bind, self.sockets, self.limits.for_process(row))
            finally:
                os._exit(code)
        self.children[pid] = (row, time.monotonic())

    def _restart_the_dead(self, stop: threading.Event) -> None:
        for pid, (row, started) in list(self.children.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done == 0:
                continue
            del self.children[pid]
            self.limits.forget(row)  # its connections went with it
            log.warning("gateway process %d exited with status %d; starting another", pid,
                        os.waitstatus_to_exitcode(status))
            if stop.is_set() or (time.monotonic() - started < RESTART_PAUSE and stop.wait(RESTART_PAUSE)):
                return
            self._fork(row)

    def _stop_all(self) -> None:
        for pid in self.children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid in self.children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        self.children.clear()


def _serve(bind: str | None, sockets: list[socket.socket], limits: SharedLimits) -> int:
    """One gateway process, serving the shared sockets until SIGTERM (or Ctrl-C)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        gateway = server.build(bind, sockets=sockets, limits=limits)
        gateway.start()
    except Exception:
        log.exception("a gateway process could not start")
        return 1
    try:
        while not stop.wait(1):
            pass
    finally:
        gateway.stop()
    return 0
