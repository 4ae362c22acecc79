from __future__ import annotations

import sys
from pathlib import Path


def refuse_unsafe_production() -> None:
    """Stop here, loudly, rather than run production on unsafe settings."""
    from django.conf import settings

    problems = settings.PRODUCTION_PROBLEMS
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        sys.stderr.write(
            "Hushpost refuses to start in production mode:\n"
            f"{lines}\n"
            "Fix these, or set HUSHPOST_MODE=development for a local trial.\n"
        )
        raise SystemExit(2)


def make_database_dir() -> None:
    """SQLite creates its file but not the directory around it: make that one (owner only), or say how.

    Only the SQLite database's directory (the data directory by default): with
    PostgreSQL nothing here needs the data directory, which may be read-only.
    """
    from django.conf import settings

    database = settings.DATABASES["default"]
    name = str(database.get("NAME") or "")
    if database["ENGINE"] != "django.db.backends.sqlite3" or not name or name.startswith(("file:", ":memory:")):
        return
    directory = Path(name).parent
    if directory.is_dir():
        return
    try:
        directory.mkdir(mode=0o700, parents=True)
    except OSError as exc:
        sys.stderr.write(
            f"Hushpost cannot create its data directory {directory} ({exc.strerror or exc}): create it "
            f"(mkdir -m 700 {directory}) owned by the user Hushpost runs as, or set HUSHPOST_DATA_DIR "
            "to a directory that user can write.\n"
        )
        raise SystemExit(2) from None
