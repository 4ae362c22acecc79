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

import contextlib
import logging
import math
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
STOP_SECONDS = 50.0  # how long stopping waits for a process to finish what it stores (systemd allows 60)
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


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
        # A stop signal arriving before the new process has its own handlers waits for them:
        # it is held back across the fork, and released by the process once they are set.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the new gateway process
            code = 1
            try:
                code = _serve(self.bind, self.sockets, self.limits.for_process(row), parent)
            finally:
                os._exit(code)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
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
        deadline = time.monotonic() + STOP_SECONDS
        waiting = set(self.children)
        while waiting:
            for pid in list(waiting):
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done = pid
                if done:
                    waiting.discard(pid)
            if waiting and time.monotonic() > deadline:
                for pid in waiting:  # stuck: what it had not stored, the client sends again
                    log.error("gateway process %d did not stop in %.0f s; killing it", pid, STOP_SECONDS)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                deadline = math.inf
            time.sleep(0.05)
        self.children.clear()


def _serve(bind: str | None, sockets: list[socket.socket], limits: SharedLimits, parent: int) -> int:
    """One gateway process, serving the shared sockets until SIGTERM (or Ctrl-C), or until the
    first process is gone (nothing would restart or stop it, and it would hold the port)."""
    stop = threading.Event()
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda *_: stop.set())
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    try:
        gateway = server.build(bind, sockets=sockets, limits=limits)
        gateway.start()
    except Exception:
        log.exception("a gateway process could not start")
        return 1
    try:
        while not stop.wait(1):
            if os.getppid() != parent:
                log.error("the first gateway process is gone; this one stops too")
                break
    finally:
        gateway.stop()
    return 0
