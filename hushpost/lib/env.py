"""Typed readers for ``HUSHPOST_*`` environment variables.

Every setting Hushpost reads comes through these helpers, so the README's
configuration table and the code cannot drift apart silently.  Secrets may be
given inline or, with a ``_FILE`` suffix, as a path to a file holding them.
"""

from __future__ import annotations

import os
from pathlib import Path

PREFIX = "HUSHPOST_"


class ConfigError(RuntimeError):
    """A setting is missing or unsafe; the message says which and why."""


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(PREFIX + name)
    if value is None or value == "":
        return default
    return value


def envbool(name: str, default: bool = False) -> bool:
    value = env(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{PREFIX}{name} must be true or false, not {value!r}")


def envint(name: str, default: int) -> int:
    value = env(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{PREFIX}{name} must be a whole number, not {value!r}") from None


def envsecret(name: str) -> str | None:
    """``HUSHPOST_<NAME>`` inline, or ``HUSHPOST_<NAME>_FILE`` naming a file."""
    value = env(name)
    if value is not None:
        return value.strip()
    path = env(name + "_FILE")
    if path is not None:
        try:
            return Path(path).read_text().strip() or None
        except OSError as exc:
            raise ConfigError(f"{PREFIX}{name}_FILE: cannot read {path}: {exc}") from None
    return None
