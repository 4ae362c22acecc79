"""A full disk or database: people are told the truth, the operator gets one line, the admin an event.

A full disk cannot be produced safely on a shared machine, so the store's files
get a disk with a few KiB left (``full_disk`` in conftest.py). A full SQLite
database is real: ``max_page_count`` caps it where it is.
"""

from __future__ import annotations

import errno
import html
import logging
import os
from urllib.parse import quote

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError, connection

from hushpost.attachments.models import Attachment
from hushpost.audit.models import AuditEvent
from hushpost.lib.diskfull import storage_full
from hushpost.messaging.models import Message
from tests import personas
from tests.helpers import send
from tests.personas import BOB, PASSWORD

SECRET_NAME = "Diagnosis for Bob.pdf"
REPORT = b"%PDF-1.7 Bob's diagnosis " + os.urandom(512 * 1024)


@pytest.fixture
def alice_client(sender_client):
    sender_client.raise_request_exception = False  # see the page a browser would get
    return sender_client


@pytest.fixture
def storage_log(caplog):
    caplog.set_level(logging.INFO)
    return caplog


def error_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def everything_under(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_a_file_that_does_not_fit_says_storage_is_full_and_leaves_nothing(full_disk, alice_client, alice,
                                                                          storage_log):
    r = alice_client.post("/app/files", data=REPORT, content_type="application/pdf",
                          HTTP_X_FILE_NAME=quote(SECRET_NAME), HTTP_ACCEPT="application/json")
    assert r.status_code == 507
    error = r.json()["error"]  # what the upload script shows beside the file
    assert "run out of storage space, so this file was not stored" in error
    assert "Attaching it again will not work until space is freed" in error
    assert "recorded for your organisation's administrator" in error
    assert "Try again in a moment" not in error
    # Nothing half-written: no .part, no blob, no draft.
    assert everything_under(full_disk) == []
    assert not Attachment.objects.exists()
    # One line to alert on, naming neither the file, nor its owner, nor any of it.
    [line] = error_lines(storage_log)
    assert line.startswith("storage full: the disk has no space left; POST senders:upload failed")
    assert "audit event recorded" in line
    assert SECRET_NAME not in storage_log.text and "Bob" not in storage_log.text and alice.email not in line
    event = AuditEvent.objects.get(action=AuditEvent.Action.STORAGE_FULL)
    assert event.org_id == alice.org_id and event.actor_id == alice.pk
    assert event.detail == "POST senders:upload failed: the disk is full"


def test_the_organisations_admin_finds_it_in_the_audit_trail(full_disk, alice_client, org,
                                                             client_factory):
    alice_client.post("/app/files", data=REPORT, content_type="application/pdf",
                      HTTP_X_FILE_NAME=quote(SECRET_NAME), HTTP_ACCEPT="application/json")
    ada = personas.ada(org)
    admin = client_factory()
    assert admin.post("/login", {"email": ada.email, "password": PASSWORD}).status_code == 302
    r = admin.get("/app/admin/audit?action=storage_full")
    page = html.unescape(r.content.decode())
    assert "Storage full: not saved" in page and "POST senders:upload failed: the disk is full" in page


def test_a_form_carrying_files_on_a_full_disk_gets_the_storage_full_page(full_disk, alice_client, storage_log,
                                                                        django_capture_on_commit_callbacks):
    files = [SimpleUploadedFile("small.txt", b"fits"), SimpleUploadedFile(SECRET_NAME, REPORT)]
    with django_capture_on_commit_callbacks(execute=True):  # as each commit does, outside a test's transaction
        r = send(alice_client, to=BOB, subject="Your diagnosis", files=files)
    assert r.status_code == 507
    page = html.unescape(r.content.decode())
    assert "<h1>Storage is full</h1>" in page
    assert "look in Sent: if it is not there, it was not sent" in page
    assert "Sending again will not work until space is freed" in page
    assert "recorded for your organisation's administrator" in page
    assert "Nothing you sent was lost" not in page and "Try again in a moment" not in page
    # The small file stored before the large one is gone too: nobody could ever attach it.
    assert everything_under(full_disk) == []
    assert not Attachment.objects.exists() and not Message.objects.exists()
    [line] = error_lines(storage_log)
    assert line.startswith("storage full: the disk has no space left; POST senders:compose failed")


@pytest.mark.django_db(transaction=True)
def test_a_message_the_full_database_cannot_take_is_not_claimed_as_kept(alice_client, alice, files_dir,
                                                                        storage_log):
    if connection.vendor != "sqlite":
        pytest.skip("a PostgreSQL server cannot be filled safely on a shared machine")
    with connection.cursor() as cursor:
        # Pages earlier tests freed would take the message: the database is full only without them.
        cursor.execute("VACUUM")
        cursor.execute("PRAGMA page_count")
        [pages] = cursor.fetchone()
        cursor.execute(f"PRAGMA max_page_count = {pages}")
    try:
        r = send(alice_client, to=BOB, subject="Your diagnosis", body="<p>" + "Results. " * 2000 + "</p>")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA max_page_count = 1073741823")
    assert r.status_code == 507
    page = html.unescape(r.content.decode())
    assert "<h1>Storage is full</h1>" in page and "look in Sent: if it is not there, it was not sent" in page
    assert not Message.objects.exists()
    # The pages the large message could not have are free again after its rollback:
    # the small audit event fits, so the page may say the administrator can see it.
    assert "recorded for your organisation's administrator" in page
    assert AuditEvent.objects.get(action=AuditEvent.Action.STORAGE_FULL).actor_id == alice.pk
    [line] = error_lines(storage_log)
    assert line == ("storage full: the database has no space left; POST senders:compose failed; "
                    "audit event recorded")
    assert "Your diagnosis" not in storage_log.text and "Results." not in storage_log.text
    # Once there is room again, the same form goes through.
    r = send(alice_client, to=BOB, subject="Your diagnosis")
    assert r.status_code == 302 and Message.objects.count() == 1


def test_when_the_audit_trail_cannot_take_it_either_nobody_is_said_to_be_told(full_disk, alice_client,
                                                                             monkeypatch, storage_log):
    from hushpost.server import errors

    def database_full_too(*args, **kwargs):
        raise OperationalError("database or disk is full")

    monkeypatch.setattr(errors, "record", database_full_too)
    r = send(alice_client, to=BOB, subject="Your diagnosis", files=[SimpleUploadedFile(SECRET_NAME, REPORT)])
    page = html.unescape(r.content.decode())
    assert r.status_code == 507 and "Please tell your organisation's administrator." in page
    assert "has been recorded" not in page
    [line] = error_lines(storage_log)
    assert line.endswith("audit event NOT recorded (the database refused it)")


def test_any_other_failure_does_not_promise_that_nothing_was_lost(alice_client, monkeypatch):
    from hushpost.senders import views

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away after the message was stored")

    send(alice_client, to=BOB, subject="Stored before the failure")
    monkeypatch.setattr(views.flash, "success", broken)
    r = send(alice_client, to=BOB, subject="Stored before the failure, again")
    assert r.status_code == 500
    page = html.unescape(r.content.decode())
    assert "Nothing you sent was lost" not in page
    assert "If you were sending a message, look in Sent before sending it again: it may have gone." in page
    # And it was right to say so: the message is there.
    assert Message.objects.count() == 2


def test_only_a_full_disk_or_database_counts_as_full():
    import sqlite3

    assert storage_full(OSError(errno.ENOSPC, "No space left on device")) == "disk"
    assert storage_full(OSError(errno.EDQUOT, "Disk quota exceeded")) == "disk"
    assert storage_full(OSError(errno.EACCES, "Permission denied")) == ""
    assert storage_full(RuntimeError("boom")) == ""
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = 13
    wrapped = OperationalError("database or disk is full")
    wrapped.__cause__ = full
    assert storage_full(wrapped) == "database"
    try:
        import psycopg
    except ImportError:
        return
    assert psycopg.errors.DiskFull.sqlstate == "53100"
    wrapped.__cause__ = psycopg.errors.DiskFull("could not extend file")
    assert storage_full(wrapped) == "database"
