"""Riding out database restarts and outages in long-running processes.

The web answers each request on a fresh or checked connection, so it recovers
by itself; the worker and the gateway keep theirs for hours and must notice a
dead one, wait with backoff and reconnect, never exit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import InterfaceError, OperationalError, connections

log = logging.getLogger("hushpost.database")
T = TypeVar("T")

# What a lost connection, a restart or a stopped server raise through Django.
DATABASE_ERRORS = (OperationalError, InterfaceError)


def reset_connections() -> None:
    """Drop this thread's connections so the next query opens new ones."""
    for conn in connections.all(initialized_only=True):
        if conn.in_atomic_block:
            continue  # a caller's transaction: it sees the error and unwinds
        try:
            conn.close()
        except DATABASE_ERRORS:
            conn.connection = None


class Outage:
    """Backoff while the database is unreachable: one log line when it goes,
    one when it is back, and waits of 0.1 s doubling up to ``longest``."""

    def __init__(self, *, longest: float = 5.0, stop: threading.Event | None = None) -> None:
        self.longest = longest
        self.stop = stop
        self.since: float | None = None
        self.delay = 0.1

    def wait(self, exc: BaseException) -> None:
        if self.since is None:
            self.since = time.monotonic()
            log.warning("database unavailable (%s); retrying until it is back",
                        str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__)
        reset_connections()
        if self.stop is not None:
            self.stop.wait(self.delay)
        else:
            time.sleep(self.delay)
        self.delay = min(self.delay * 2, self.longest)

    def ended(self) -> None:
        if self.since is not None:
            log.warning("database reachable again after %.1f s", time.monotonic() - self.since)
        self.since, self.delay = None, 0.1


def through_outages(write: Callable[[], T], *, stop: threading.Event | None = None) -> T:
    """Run ``write`` until the database takes it, waiting out outages.

    For a record that must not be lost, such as the relay having accepted an
    e-mail. Gives up (raises) only when ``stop`` is set.
    """
    outage = Outage(longest=1.0, stop=stop)
    while True:
        try:
            result = write()
        except DATABASE_ERRORS as exc:
            if any(c.in_atomic_block for c in connections.all(initialized_only=True)):
                raise  # inside a caller's transaction: retrying here cannot help
            if stop is not None and stop.is_set():
                raise
            outage.wait(exc)
            continue
        outage.ended()
        return result
