"""A backup restored into a fresh deployment, as an operator would after losing a server: every
message and file readable, the audit trail verified, nobody still signed in."""

from __future__ import annotations

import base64
import json
import secrets

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from hushpost.lib import clock
from hushpost.messaging.models import Message
from hushpost.server.backup import end_sessions
from tests.helpers import run_cli, send, upload
from tests.personas import BOB, signed_in_sender

FILE = b"%PDF-1.7 quarterly statement " * 4000
CHECK = """
from hushpost.accounts.models import Session
from hushpost.attachments.actions import files_of, open_file
from hushpost.messaging.content import open_content
from hushpost.messaging.models import Message
for m in Message.objects.order_by("pk"):
    print("MESSAGE", open_content(m).subject,
          [sum(len(c) for c in open_file(m, f.uid, by=m.author)[1]) for f in files_of(m)])
print("SESSIONS", Session.objects.count())
"""


@pytest.fixture
def fresh_deployment(cli_env, tmp_path, empty_database):
    """A new deployment with an empty database of its own and the same keys."""
    return cli_env | {"HUSHPOST_MASTER_KEY": settings.MASTER_KEY, "HUSHPOST_SECRET_KEY": settings.SECRET_KEY,
                      "HUSHPOST_FILES_DIR": str(tmp_path / "restored-files"), "HUSHPOST_DATABASE_URL": empty_database}


def test_a_backup_restores_into_a_fresh_deployment(transactional_db, sender_client, files_dir, smtp, deliver,
                                                     tmp_path, fresh_deployment):
    uid = upload(sender_client, FILE, "statement.pdf").json()["uid"]
    assert send(sender_client, to=BOB, subject="Quarterly statement", attachment=[uid]).status_code == 302
    assert send(sender_client, to=BOB, subject="Second letter").status_code == 302
    deliver()
    folder = tmp_path / "backup-1"
    call_command("backup", str(folder))
    manifest = json.loads((folder / "manifest.json").read_text())
    assert (manifest["messages"], manifest["files"]) == (2, 1)
    # The keys are not in it, and neither is any content in plaintext.
    every_byte = b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())
    assert settings.MASTER_KEY.encode() not in every_byte and b"Quarterly statement" not in every_byte

    r = run_cli(fresh_deployment, "restore", str(folder))
    assert r.returncode == 0, r.stderr
    assert "Restored 1 organisation(s), 2 message(s) and 1 file(s)" in r.stdout
    assert "The audit trail verifies" in r.stdout
    r = run_cli(fresh_deployment, "shell", "--no-imports", "-c", CHECK)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"MESSAGE Quarterly statement [{len(FILE)}]", "MESSAGE Second letter []",
                                     "SESSIONS 0"]
    assert Message.objects.count() == 2  # the original is untouched


def test_a_restore_with_other_keys_or_into_a_used_database_changes_nothing(
        transactional_db, alice, files_dir, tmp_path, fresh_deployment):
    folder = tmp_path / "backup-2"
    call_command("backup", str(folder))
    other_keys = fresh_deployment | {"HUSHPOST_MASTER_KEY": "another-master-key-" + secrets.token_hex(16)}
    r = run_cli(other_keys, "restore", str(folder))
    assert r.returncode != 0 and "made under another master key or secret key" in r.stderr
    assert run_cli(fresh_deployment, "migrate", "-v0").returncode == 0
    r = run_cli(fresh_deployment, "restore", str(folder))
    assert r.returncode != 0 and "the database is not empty" in r.stderr
    with pytest.raises(Exception, match="not empty"):
        call_command("backup", str(folder))


def test_a_backup_from_before_a_master_key_rotation_restores_with_the_old_key_as_previous(
        transactional_db, sender_client, files_dir, smtp, tmp_path, fresh_deployment):
    assert send(sender_client, to=BOB, subject="Before the new master key").status_code == 302
    folder = tmp_path / "backup-3"
    call_command("backup", str(folder))
    rotated = fresh_deployment | {"HUSHPOST_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
                                  "HUSHPOST_MASTER_KEY_PREVIOUS": settings.MASTER_KEY}
    r = run_cli(rotated, "restore", str(folder))
    assert r.returncode == 0, r.stderr
    assert "The audit trail verifies" in r.stdout
    assert run_cli(rotated, "keys", "rotate-master").returncode == 0
    new_only = {k: v for k, v in rotated.items() if k != "HUSHPOST_MASTER_KEY_PREVIOUS"}
    r = run_cli(new_only, "shell", "--no-imports", "-c", CHECK)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "MESSAGE Before the new master key []"


def test_a_restore_ends_sessions_in_either_session_table(alice):
    # A backup made before sessions named their account fills Django's own table, which the
    # upgrade's migration would carry over as live sessions: a restore empties both.
    from hushpost.accounts.models import Session

    signed_in_sender(alice)
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO django_session (session_key, session_data, expire_date) VALUES (%s, %s, %s)",
                       ["k" * 40, "data", connection.ops.adapt_datetimefield_value(clock.now())])
    assert Session.objects.exists()
    end_sessions()
    assert not Session.objects.exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM django_session")
        assert cursor.fetchone()[0] == 0
