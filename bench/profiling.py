"""Stopwatches for the in-process profiles of ``make bench``: chosen calls, SQL, round trips.

A :class:`Breakdown` is unprofiled: it only counts and times, so the times it
gives are close to those of the real path; cProfile (CPU time) runs separately.
``bench/report.py`` turns its counts into the report's tables.
"""

from __future__ import annotations

import contextlib
import cProfile
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from unittest import mock


class Breakdown:
    """Unprofiled wall-time breakdown: counts and times chosen calls, SQL and round trips.

    ``timed`` wraps a function (module, class or instance attribute); a *scope*
    wrapper also attributes what runs inside it, so statements in Hushpost's own
    code and in the task queue's code are told apart.  PostgreSQL round trips =
    ORM statements + 2 per transaction (BEGIN, COMMIT) + Django's ``SELECT 1``
    connection health checks.
    """

    def __init__(self) -> None:
        self.calls: Counter = Counter()
        self.secs: Counter = Counter()
        self.scope: str | None = None
        self.statements: defaultdict = defaultdict(lambda: [0, 0.0])
        self._patches: list = []
        self._stack = contextlib.ExitStack()

    def record(self, label: str, dt: float) -> None:
        self.calls[label] += 1
        self.secs[label] += dt
        if self.scope and self.scope != label:
            self.calls[f"{label} @ {self.scope}"] += 1
            self.secs[f"{label} @ {self.scope}"] += dt

    def timed(self, obj, attr: str, label: str, scope: bool = False) -> None:
        original = getattr(obj, attr)

        def wrapper(*args, **kwargs):
            previous = self.scope
            if scope:
                self.scope = label
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.scope = previous
                self.record(label, time.perf_counter() - t0)

        self._patches.append(mock.patch.object(obj, attr, wrapper))

    def __call__(self, execute, sql, params, many, context):  # connection.execute_wrapper
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            dt = time.perf_counter() - t0
            self.record("SQL statement", dt)
            if not context["connection"].in_atomic_block and sql.lstrip()[:6].upper() in (
                "UPDATE", "INSERT", "DELETE"
            ):
                # Its own transaction, committed (and so flushed to the WAL) on its own.
                self.record("autocommit write", dt)
            key = (self.scope or "", re.sub(r"\s+", " ", sql)[:100])
            self.statements[key][0] += 1
            self.statements[key][1] += dt

    def __enter__(self) -> Breakdown:
        from django.db import connection
        from django.db.backends.postgresql.base import DatabaseWrapper

        self.timed(DatabaseWrapper, "_commit", "COMMIT")
        self.timed(DatabaseWrapper, "is_usable", "health check")
        for patch in self._patches:
            self._stack.enter_context(patch)
        self._stack.enter_context(connection.execute_wrapper(self))
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def n(self, label: str, per: int) -> float:
        return self.calls[label] / per

    def ms(self, label: str, per: int) -> float:
        return 1000 * self.secs[label] / per

    def trips(self, per: int, scope: str | None = None) -> float:
        at = f" @ {scope}" if scope else ""
        return (self.calls["SQL statement" + at] + 2 * self.calls["COMMIT" + at]
                + self.calls["health check" + at]) / per

    def commits(self, per: int, scope: str | None = None) -> float:
        """Durable commits: COMMITs plus writes run in autocommit mode."""
        at = f" @ {scope}" if scope else ""
        return (self.calls["COMMIT" + at] + self.calls["autocommit write" + at]) / per


def profiled(run: Callable[[], object]) -> cProfile.Profile:
    """``run`` under cProfile, counting CPU time."""
    prof = cProfile.Profile(time.process_time)
    prof.enable()
    try:
        run()
    finally:
        prof.disable()
    return prof


def timed_then_profiled(bd: Breakdown, run: Callable[[], object],
                        before: Callable[[], object] = lambda: None,
                        ) -> tuple[float, float, cProfile.Profile]:
    """``run`` under the stopwatches (its wall and CPU seconds), then again under cProfile;
    ``before``, untimed, ahead of each."""
    before()
    t0, c0 = time.perf_counter(), time.process_time()
    with bd:
        run()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    before()
    return wall, cpu, profiled(run)
