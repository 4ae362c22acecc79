"""``hushpost backup`` and ``hushpost restore``: the database and the file store, into a folder and
back into a fresh deployment.

What a backup holds is ciphertext and metadata, as the database and the store hold them; the keys
are not in it. Restoring needs the same master key and secret key, kept apart from backups (the
manifest holds a keyed fingerprint of each, so a restore with other keys stops before it
changes anything). Sessions are not carried over, leased e-mails go back to the queue, and the
audit trail is verified once restored.

PostgreSQL is dumped with ``pg_dump`` (custom format) and restored with ``pg_restore`` into an
empty database; SQLite with its online backup. Files in the local store are copied; files in an
S3-compatible bucket stay there (back the bucket up with its versioning or replication).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils.crypto import salted_hmac

from hushpost.accounts.models import Session
from hushpost.audit.verify import verify
from hushpost.crypto.master import keyring
from hushpost.lib import clock
from hushpost.lib.refusals import Refused
from hushpost.messaging.models import Message
from hushpost.notifications.models import Notification
from hushpost.orgs.models import Organization
from hushpost.server.models import WorkerProcess

MANIFEST = "manifest.json"
FORMAT = 1


@dataclass
class Summary:
    organisations: int
    messages: int
    files: int
    audit_ok: bool | None = None


def backup(folder: Path) -> Summary:
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise Refused(f"{folder} is not empty; give a new folder for each backup")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = _engine()
    if engine == "postgresql":
        _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", "--file", str(folder / "database.dump")])
    else:
        connection.ensure_connection()
        with sqlite3.connect(folder / "database.sqlite3") as target:
            connection.connection.backup(target)
        target.close()
    files = _copy_files(_store_root(), folder / "files") if _store_root() else 0
    summary = Summary(Organization.objects.count(), Message.objects.count(), files)
    manifest = {
        "format": FORMAT, "made_at": clock.now().isoformat(), "engine": engine,
        "file_store": settings.FILE_STORAGE["kind"], "files": files,
        "organisations": summary.organisations, "messages": summary.messages,
        "keys": _key_fingerprints(),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return summary


def restore(folder: Path) -> Summary:
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        raise Refused(f"{folder} holds no Hushpost backup ({MANIFEST} is missing or unreadable)") from None
    if manifest.get("format") != FORMAT:
        raise Refused(f"this backup's format ({manifest.get('format')}) is not one this Hushpost reads")
    fingerprints = _key_fingerprints()
    # A backup made before a master key rotation restores with the old key in HUSHPOST_MASTER_KEY_PREVIOUS.
    masters = {_master_fingerprint(key) for key in keyring().keys}
    if manifest["keys"]["master"] not in masters or manifest["keys"]["secret"] != fingerprints["secret"]:
        raise Refused("this backup was made under another master key or secret key: set HUSHPOST_MASTER_KEY "
                      "and HUSHPOST_SECRET_KEY to the ones of the deployment it came from")
    engine = _engine()
    if manifest["engine"] != engine:
        raise Refused(f"this backup is of a {manifest['engine']} database, and this deployment uses {engine}")
    if _has_tables():
        raise Refused("the database is not empty: restore into a new, empty database")
    if engine == "postgresql":
        connection.close()
        _run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
              "--dbname", settings.DATABASES["default"]["NAME"], str(folder / "database.dump")])
    else:
        connection.ensure_connection()
        with sqlite3.connect(folder / "database.sqlite3") as source:
            source.backup(connection.connection)
        source.close()
    files = 0
    if (folder / "files").is_dir():
        if not _store_root():
            raise Refused("the backup holds files, and this deployment keeps files in S3: copy them into its bucket")
        files = _copy_files(folder / "files", _store_root())
    # Nobody stays signed in across a restore, and e-mails held by the old deployment's workers go
    # back to the queue at once.
    end_sessions()
    WorkerProcess.objects.all().delete()
    Notification.objects.filter(status=Notification.Status.PENDING).update(lease_until=None, lease_owner="")
    summary = Summary(Organization.objects.count(), Message.objects.count(), files)
    summary.audit_ok = not verify().broken
    return summary


def end_sessions() -> None:
    """Empty every session table the restored database has: today's, and Django's own that a backup
    made before sessions named their account still fills (``hushpost migrate`` would carry its rows
    over as live sessions)."""
    tables = set(connection.introspection.table_names())
    with connection.cursor() as cursor:
        for table in (Session._meta.db_table, "django_session"):
            if table in tables:
                cursor.execute(f"DELETE FROM {connection.ops.quote_name(table)}")  # noqa: S608 - fixed names


def _engine() -> str:
    return "postgresql" if connection.vendor == "postgresql" else "sqlite"


def _has_tables() -> bool:
    return bool(connection.introspection.table_names())


def _store_root() -> Path | None:
    storage = settings.FILE_STORAGE
    return Path(storage["root"]) if storage["kind"] == "local" else None


def _copy_files(source: Path, target: Path) -> int:
    if not source.is_dir():
        return 0
    shutil.copytree(source, target, dirs_exist_ok=True)
    return sum(1 for p in target.rglob("*") if p.is_file())


def _key_fingerprints() -> dict[str, str]:
    """Keyed hashes that tell whether two deployments hold the same keys, and nothing about the keys."""
    return {"master": _master_fingerprint(keyring().current),
            "secret": salted_hmac("hushpost.backup.secret", "fingerprint").hexdigest()[:32]}


def _master_fingerprint(key: bytes) -> str:
    return salted_hmac("hushpost.backup.master", "fingerprint", secret=key).hexdigest()[:32]


def _run(argv: list[str]) -> None:
    database = settings.DATABASES["default"]
    env = {**os.environ, "PGHOST": str(database.get("HOST") or ""), "PGPORT": str(database.get("PORT") or ""),
           "PGUSER": str(database.get("USER") or ""), "PGDATABASE": str(database.get("NAME") or "")}
    if database.get("PASSWORD"):
        env["PGPASSWORD"] = str(database["PASSWORD"])
    result = subprocess.run(argv, env=env, capture_output=True, text=True)  # noqa: S603 - fixed programs
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise Refused(f"{argv[0]} failed: {last}")
