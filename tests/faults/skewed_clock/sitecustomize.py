"""Loaded, through PYTHONPATH, only into a process whose wall clock libfaketime sets ahead.

libfaketime 0.9.10 (Debian 12) either hangs Python's timed waits when it fakes
the monotonic clock, or, told to leave that clock alone
(FAKETIME_DONT_FAKE_MONOTONIC=1), turns the absolute monotonic deadline of
time.sleep's clock_nanosleep into a negative time, and time.sleep fails with
EINVAL. This sleep waits in select() instead, which libfaketime passes through;
it measures on the same real monotonic clock, so it sleeps exactly as long.
"""

from __future__ import annotations

import select
import time


def _sleep(seconds: float) -> None:
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        select.select([], [], [], left)


time.sleep = _sleep
