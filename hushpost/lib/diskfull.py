"""Telling a full disk apart from other failures: the data directory's, or the database's.

A full disk is not a moment's trouble: "try again" cannot help until someone frees
space, so the pages say so (``hushpost/server/errors.py``) instead of the usual 500.
"""

from __future__ import annotations

import errno
import logging

SQLITE_FULL = 13  # sqlite3's "database or disk is full"
POSTGRES_DISK_FULL = "53100"  # SQLSTATE disk_full
INSUFFICIENT_STORAGE = 507


def storage_full(exc: BaseException | None) -> str:
    """What ran out of space behind ``exc`` ("disk" or "database"), or "" if it was something else.

    Follows the causes: Django wraps the database driver's error, and a store's
    cleanup can raise on top of the write that failed.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return "disk"
        if getattr(exc, "sqlite_errorcode", None) == SQLITE_FULL:
            return "database"
        if getattr(exc, "sqlstate", None) == POSTGRES_DISK_FULL:
            return "database"
        exc = exc.__cause__ or exc.__context__
    return ""


class SkipStorageFullResponses(logging.Filter):
    """Django's own "Insufficient Storage" line with its traceback: Hushpost has already
    logged that one, as a single line without content (``hushpost.storage``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "status_code", None) != INSUFFICIENT_STORAGE
