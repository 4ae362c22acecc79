"""Subjects, bodies, replies and file contents stay ciphertext: a whole flow leaves no
plaintext in any table, any e-mail or any log line (SQL statements and their parameters
included)."""

from __future__ import annotations

import email
import email.policy
import io
import logging
import re
import secrets
import zipfile

import pytest
from django.db import connection
from django.test import Client

from hushpost.accounts.sessions import SessionStore
from hushpost.messaging.models import Message
from hushpost.notifications.models import Notification
from tests import personas
from tests.helpers import PASSWORD_SUBJECT, content_of, send, signed_in_as
from tests.personas import BOB, CONTENT, FILES, REPLY_BODY, SECRETS, World

FLOW_SECRETS = {
    "subject": "Ultrasound follow-up ZX41QHTMVK",
    "body": "Your ultrasound shows WQ93KJDPRA nothing of concern",
    "reply": "Thank you, I will bring VJ27MCXZLE to the clinic",
    "senders_reply": "Please also bring LP58TGWYSN next time",
}


def _full_flow(w: World, deliver) -> None:
    """Send (to a known and a new recipient), deliver, read, reply, read the reply, reply to it."""
    alice, bob = w.signed_in("alice"), w.signed_in("bob")
    r = send(alice, to=f"{BOB}, newcomer@client.example", subject=FLOW_SECRETS["subject"],
             body=f"<p>{FLOW_SECRETS['body']}</p>", read_receipt=True)
    uid = r["Location"].rsplit("/", 1)[1]
    deliver()
    assert FLOW_SECRETS["body"] in bob.get(f"/r/{w.slug()}/m/{uid}").content.decode()
    r = bob.post(f"/r/{w.slug()}/m/{uid}/reply",
                 {"body": FLOW_SECRETS["reply"], "body_format": "text", "send_token": secrets.token_urlsafe(24)})
    assert r.status_code == 302
    deliver()
    reply = Message.objects.get(in_reply_to__uid=uid, kind=Message.Kind.REPLY)
    assert FLOW_SECRETS["reply"] in alice.get(f"/app/m/{reply.uid}").content.decode()
    r = send(alice, to=BOB, subject="Re: " + FLOW_SECRETS["subject"], body=FLOW_SECRETS["senders_reply"],
             body_format="text", in_reply_to=reply.uid)
    assert r.status_code == 302
    deliver()
    assert Notification.objects.exclude(status=Notification.Status.SENT).count() == 0


def _needles() -> list[str]:
    """Whole secrets and their distinctive tokens, this test's and the world's."""
    tokens = [re.search(r"[A-Z]{2}\d{2}[A-Z]{6}", s).group(0) for s in FLOW_SECRETS.values()]
    everything = [*FLOW_SECRETS.values(), *tokens, *SECRETS, *(s for s, _ in CONTENT.values())]
    return [n.lower() for n in everything]


def _as_text(value) -> str | None:
    if isinstance(value, memoryview):
        value = bytes(value)
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, str):
        return value
    return None


def _database_hits(needles: list[str]) -> list[tuple[str, str, str]]:
    hits = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            columns = [c.name for c in connection.introspection.get_table_description(cursor, table)]
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 - introspected names
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    text = _as_text(value)
                    if text is None:
                        continue
                    texts = [text.lower()]
                    if table == "accounts_session" and column == "session_data":
                        texts.append(repr(SessionStore().decode(text)).lower())
                    for needle in needles:
                        if any(needle in t for t in texts):
                            hits.append((table, column, needle))
    return hits


def test_no_plaintext_anywhere_in_the_database(world, db, smtp, deliver):
    _full_flow(world, deliver)
    assert _database_hits(_needles()) == []
    # The scan does read every table: it finds what is stored in clear on purpose.
    assert ("accounts_user", "email", "newcomer@client.example") in _database_hits(["newcomer@client.example"])


def test_no_plaintext_in_any_email(world, db, smtp, deliver):
    _full_flow(world, deliver)
    mails = smtp.messages
    kinds = {m.subject for m in mails}
    assert {PASSWORD_SUBJECT, "Secure Messaging Notification", "Secure Messaging Read Receipt",
            "Secure Messaging Reply Notification"} <= kinds
    for mail in mails:
        raw = mail.message.as_bytes().decode("latin-1").lower()
        decoded = "\n".join(str(v) for _, v in mail.message.items()) + mail.text + mail.html
        for needle in _needles():
            assert needle not in raw and needle not in decoded.lower(), (mail.subject, needle)


@pytest.fixture
def every_logger_at_debug(caplog):
    manager = logging.root.manager
    loggers = [logging.root] + [lg for lg in manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    caplog.set_level(logging.DEBUG)  # first, so that it restores the root level it found
    levels = {lg: lg.level for lg in loggers}
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    force = connection.force_debug_cursor
    connection.force_debug_cursor = True  # every SQL statement and its parameters, logged
    yield caplog
    connection.force_debug_cursor = force
    for lg, level in levels.items():
        lg.setLevel(level)


def test_no_plaintext_in_logs(world, db, smtp, deliver, every_logger_at_debug):
    _full_flow(world, deliver)
    records = every_logger_at_debug.records
    assert any(r.name == "django.db.backends" for r in records)  # the capture works
    text = "\n".join(
        f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''} {getattr(r, 'sql', '')} {getattr(r, 'params', '')!r}"
        for r in records
    ).lower()
    for needle in _needles():
        assert needle not in text, needle


def test_an_export_for_e_discovery_writes_no_plaintext_to_logs(world, db, every_logger_at_debug):
    admin = personas.sender(world.orgs["A"], "ada", "Ada Admin", admin=True)
    r = signed_in_as(Client(), admin).post(f"/app/admin/messages/{world.uids['m1']}/export")
    archive = zipfile.ZipFile(io.BytesIO(content_of(r)))
    exported = b"".join(archive.read(n) for n in archive.namelist()).decode("latin-1")
    # The export holds the conversation's content: the one way out for it, on purpose.
    assert CONTENT["m1"][0] in exported and REPLY_BODY in exported
    files = [part.get_payload(decode=True) for n in archive.namelist() if n.endswith(".eml")
             for part in email.message_from_bytes(archive.read(n), policy=email.policy.default).iter_attachments()]
    assert files == [FILES["m1"], FILES["r1"]]
    text = "\n".join(f"{r.name} {r.getMessage()} {r.args!r} {getattr(r, 'sql', '')} {getattr(r, 'params', '')!r}"
                     for r in every_logger_at_debug.records).lower()
    assert "django.db.backends" in text
    for needle in _needles():
        assert needle not in text, needle
