"""The one source of "now" for business rules (expiry, temporary passwords).

Tests move it forward with :func:`travel` to see a message expire without
waiting, and may :func:`freeze` it where a wait is counted in seconds; nothing
else may change it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

_offset = timedelta(0)
_frozen: datetime | None = None


def now() -> datetime:
    return (_frozen or timezone.now()) + _offset


def moved(moment: datetime) -> datetime:
    """A moment read from another clock (the database's), moved as far as tests have travelled;
    unchanged outside tests."""
    return moment + _offset


def freeze() -> None:
    global _frozen
    _frozen = timezone.now()


def travel(delta: timedelta) -> None:
    global _offset
    _offset += delta


def reset() -> None:
    global _offset, _frozen
    _offset, _frozen = timedelta(0), None
