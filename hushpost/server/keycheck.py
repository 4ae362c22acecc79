"""The start-up check that the configured master keys fit the deployment's database (the servers and
the worker run it once, after the settings and database checks of :mod:`.startup`)."""

from __future__ import annotations

import sys

from django.db import DatabaseError, connection

from hushpost.crypto import derivation


def refuse_unknown_master_key() -> None:
    """Stop with one line when ``HUSHPOST_MASTER_KEY`` (with any previous keys) opens neither the
    derivation root nor this deployment's organisation keys: a server started with only a new key,
    before ``keys rotate-master`` ran, would fail every sign-in and every message it opens.
    A database not reachable yet is the database check's business (or the worker's, which waits)."""
    try:
        derivation.ensure_root()
    except derivation.RootUnknown as exc:
        sys.stderr.write(f"Hushpost's master key does not fit this deployment: {exc}.\n")
        raise SystemExit(2) from None
    except DatabaseError:
        pass
    finally:
        connection.close()
