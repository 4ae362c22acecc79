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


# The servers check their database once before they start answering. (``hushpost worker`` waits
# instead, saying why in one line, and starts by itself once the database is there and migrated.)
NEEDS_DATABASE = {"serve", "smtpd"}


def refuse_unusable_database() -> None:
    """Stop with one line, not a traceback, when the database cannot be reached, does not exist or
    is not migrated: a server that starts anyway answers every request with an error page or
    refuses every message. (Once running, each rides out database outages: hushpost/lib/db.py.)"""
    from django.conf import settings
    from django.db import DatabaseError, connection
    from django.db.migrations.executor import MigrationExecutor

    database = settings.DATABASES["default"]
    where = (f"{database.get('HOST') or 'localhost'}:{database.get('PORT') or 5432}/{database.get('NAME')}"
             if connection.vendor == "postgresql" else str(database.get("NAME")))
    try:
        connection.ensure_connection()
        executor = MigrationExecutor(connection)
        waiting = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        reason = " ".join(str(exc).split("\n")[0].split()) or type(exc).__name__
        sys.stderr.write(f"Hushpost cannot use its database {where}: {reason}. Check that the database "
                         "server is running and that HUSHPOST_DATABASE_URL names it.\n")
        raise SystemExit(2) from None
    finally:
        connection.close()  # the processes that follow open their own
    if waiting:
        sys.stderr.write(f"Hushpost's database {where} is not up to date ({len(waiting)} migration"
                         f"{'s' if len(waiting) != 1 else ''} to apply): run 'hushpost migrate' first.\n")
        raise SystemExit(2)

