"""The one source of "now" for business rules (expiry, temporary passwords).

Tests move it forward with :func:`travel` to see a message expire without
waiting; nothing else may change it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

_offset = timedelta(0)


def now() -> datetime:
    return timezone.now() + _offset


def travel(delta: timedelta) -> None:
    global _offset
    _offset += delta


def reset() -> None:
    global _offset
    _offset = timedelta(0)
