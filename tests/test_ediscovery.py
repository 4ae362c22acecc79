"""An organisation admin exports a conversation for e-discovery: every message as an e-mail
file with its files, the conversation's audit events and a manifest, in one ZIP; the export
is itself in the audit trail. Nobody else gets it: not a sender, not another organisation's admin."""

from __future__ import annotations

import csv
import email
import email.policy
import hashlib
import io
import json
import os
import zipfile
from datetime import timedelta

import pytest
from django.test import Client

from hushpost.audit.models import AuditEvent
from hushpost.audit.verify import verify
from hushpost.lib import clock
from hushpost.messaging import threads
from hushpost.messaging.models import Message
from hushpost.retention.actions import place_hold, set_policy
from hushpost.retention.purge import purge_org
from tests import personas
from tests.helpers import content_of, send, signed_in_as, upload
from tests.personas import BOB, CAROL, PASSWORD, first_login

SUBJECT = "Settlement terms EXP4QZ"
BODY = "<p>The offer is <b>final</b> EXP5WK</p>"
REPLY = "We accept EXP6TR"
ANSWER = "Signed copy attached EXP7LM"
# Larger than one of Tink's 1 MiB segments, and not a whole number of base64 lines.
LARGE = os.urandom(1024 * 1024 + 12345)
FILES = {"Übersicht 2026.pdf": (b"%PDF-1.7 summary EXP8NV", "application/pdf"),
         "evidence.bin": (LARGE, "application/octet-stream")}
REPLY_FILE = ("countersigned.txt", b"countersigned EXP9QA", "text/plain")


@pytest.fixture
def conversation(org, alice, sender_client, smtp, deliver, client_factory):
    """Alice writes to Bob (Carol copied) with two files, "No Print"; Bob answers with one; Alice answers him."""
    uids = [upload(sender_client, data, name, content_type=kind).json()["uid"]
            for name, (data, kind) in FILES.items()]
    r = send(sender_client, to=BOB, cc=CAROL, subject=SUBJECT, body=BODY, attachment=uids, restriction="no_print")
    top = Message.objects.get(uid=r["Location"].rsplit("/", 1)[1])
    deliver()
    bob = client_factory()
    first_login(bob, smtp, org, BOB)
    assert bob.get(f"/r/{org.slug}/m/{top.uid}").status_code == 200
    clock.travel(timedelta(minutes=1))
    name, data, kind = REPLY_FILE
    fid = upload(bob, data, name, url=f"/r/{org.slug}/files", content_type=kind).json()["uid"]
    r = bob.post(f"/r/{org.slug}/m/{top.uid}/reply",
                 {"body": REPLY, "body_format": "text", "send_token": "reply-token-export-01", "attachment": [fid]})
    assert r.status_code == 302
    reply = Message.objects.get(kind=Message.Kind.REPLY)
    clock.travel(timedelta(minutes=1))
    r = send(sender_client, to=BOB, subject="Re: " + SUBJECT, body=ANSWER, body_format="text", in_reply_to=reply.uid)
    answer = Message.objects.get(uid=r["Location"].rsplit("/", 1)[1])
    deliver()
    return top, reply, answer


@pytest.fixture
def ada(org):
    return personas.ada(org)


def _export(client: Client, uid: str):
    return client.post(f"/app/admin/messages/{uid}/export")


def _opened(response) -> zipfile.ZipFile:
    archive = zipfile.ZipFile(io.BytesIO(content_of(response)))
    assert archive.testzip() is None  # every entry's checksum holds
    return archive


def _emails(archive: zipfile.ZipFile) -> list[email.message.EmailMessage]:
    names = sorted(n for n in archive.namelist() if n.endswith(".eml"))
    return [email.message_from_bytes(archive.read(n), policy=email.policy.default) for n in names]


def _files(mail) -> dict[str, tuple[bytes, str]]:
    return {part.get_filename(): (part.get_payload(decode=True), part.get_content_type())
            for part in mail.iter_attachments()}


def test_an_admin_exports_the_whole_conversation_as_emails(store, conversation, ada):
    top, reply, answer = conversation
    # Exported from the answer's row: the same whole conversation. "No Print" does not hold
    # back a legal record.
    r = _export(signed_in_as(Client(), ada), answer.uid)
    assert r.status_code == 200 and r["Content-Type"] == "application/zip"
    assert r.streaming and not r.has_header("Content-Length")  # written as it goes, never stored
    assert r["Content-Disposition"].startswith(f'attachment; filename="conversation-{ada.org.slug}-{top.uid}-')
    assert "no-store" in r["Cache-Control"]
    archive = _opened(r)
    first, second, third = _emails(archive)

    assert first["From"].addresses[0].addr_spec == "alice@northwind.example"
    assert first["From"].addresses[0].display_name == "Alice Moreno"
    assert [a.addr_spec for a in first["To"].addresses] == [BOB]
    assert [a.addr_spec for a in first["Cc"].addresses] == [CAROL]
    assert first["Subject"] == SUBJECT
    assert email.utils.parsedate_to_datetime(first["Date"]) == top.created_at.replace(microsecond=0)
    assert first.get_body(("html",)).get_content().strip() == BODY
    assert first.get_body(("plain",)).get_content().strip() == "The offer is final EXP5WK"
    assert _files(first) == {name: (data, kind) for name, (data, kind) in FILES.items()}

    assert second["From"].addresses[0].addr_spec == BOB
    assert [a.addr_spec for a in second["To"].addresses] == ["alice@northwind.example"]
    assert second["Subject"] == "Re: " + SUBJECT
    assert REPLY in second.get_body(("plain",)).get_content()
    assert _files(second) == {REPLY_FILE[0]: (REPLY_FILE[1], REPLY_FILE[2])}
    assert ANSWER in third.get_body(("html",)).get_content() and _files(third) == {}

    # The threading headers link each reply to what it answers, as any mail client reads them.
    assert first["Message-ID"] == f"<{top.uid}@northwind.example>" and first["In-Reply-To"] is None
    assert second["In-Reply-To"] == first["Message-ID"] and second["References"] == first["Message-ID"]
    assert third["In-Reply-To"] == second["Message-ID"]
    assert third["References"].split() == [first["Message-ID"], second["Message-ID"]]


def test_the_export_lists_its_audit_events_and_a_manifest(conversation, ada):
    top, reply, answer = conversation
    archive = _opened(_export(signed_in_as(Client(), ada), top.uid))
    rows = list(csv.DictReader(io.StringIO(archive.read("audit-events.csv").decode())))
    actions = [row["action"] for row in rows]
    for expected in ("Message sent", "Notification e-mailed", "Message opened", "Reply sent", "Conversation exported"):
        assert expected in actions, expected
    # A key that begins with "-" (one in 64 do) is written "'-…", so no spreadsheet takes it for a formula.
    written = {("'" + m.uid if m.uid.startswith("-") else m.uid) for m in (top, reply, answer)}
    assert {row["object"] for row in rows if row["object type"] == "message"} == written
    assert actions[-1] == "Conversation exported" and rows[-1]["actor"] == ada.email
    assert rows[-1]["client address"] == "127.0.0.1"
    assert not any(row["actor"] == ada.email and row["action"] == "Administration" for row in rows)

    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["organisation"] == "Northwind Health" and manifest["exported_by"] == ada.email
    assert manifest["conversation"] == top.uid and manifest["messages"] == 3
    assert manifest["audit_events"] == len(rows)
    listed = {f["name"]: f for f in manifest["files"]}
    assert set(listed) == set(archive.namelist()) - {"manifest.json"}
    for name, described in listed.items():
        data = archive.read(name)
        assert described["sha256"] == hashlib.sha256(data).hexdigest() and described["bytes"] == len(data)


def test_the_export_is_in_the_audit_trail_and_the_chain_holds(conversation, ada):
    top, _, _ = conversation
    signed_in_as(Client(), ada).post(f"/app/admin/messages/{top.uid}/export")
    event = AuditEvent.objects.get(action=AuditEvent.Action.EXPORT)
    assert (event.actor_id, event.org_id, event.object_type, event.object_id) == (ada.pk, ada.org_id, "message", top.uid)
    assert event.detail == "conversation of 3 message(s), 3 file(s)"
    assert verify().broken == []
    event.refresh_from_db()
    assert event.hash  # chained with the rest of the organisation's trail
    # The admin area's trail shows it, filtered by its own action.
    page = signed_in_as(Client(), ada).get("/app/admin/audit?action=export").content.decode()
    assert "Conversation exported" in page and top.uid in page


def test_an_export_asks_the_admin_to_confirm_its_them(conversation, ada):
    top, _, _ = conversation
    c = personas.signed_in_sender(ada)
    clock.travel(timedelta(minutes=11))
    c.get("/app/admin/messages")
    r = _export(c, top.uid)
    assert r.status_code == 200 and "Confirm it's you" in r.content.decode()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT).exists()
    r = c.post(f"/app/admin/messages/{top.uid}/export", {"current": "not-my-password"})
    assert r.status_code == 400 and not AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT).exists()
    clock.travel(timedelta(seconds=61))
    r = c.post(f"/app/admin/messages/{top.uid}/export", {"current": PASSWORD})
    assert r.status_code == 200 and r["Content-Type"] == "application/zip"
    assert len(_emails(_opened(r))) == 3


def test_nobody_but_the_organisations_admin_can_export(conversation, sender_client):
    top, reply, _ = conversation
    hal = personas.hal(personas.harbour())
    # The sender of the conversation is no admin; another organisation's admin is a stranger to it.
    for client in (sender_client, signed_in_as(Client(), hal)):
        r = _export(client, top.uid)
        assert r.status_code == 404 and r.get("Content-Type", "").startswith("text/html")
    assert _export(Client(), top.uid)["Location"].startswith("/login")
    # A recipient's reply is no row of the Messages tab, and a GET exports nothing.
    ada = personas.ada(top.org)
    assert _export(signed_in_as(Client(), ada), reply.uid).status_code == 404
    assert signed_in_as(Client(), ada).get(f"/app/admin/messages/{top.uid}/export").status_code == 405
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT).exists()


def test_the_messages_tab_offers_export_on_each_row(conversation, ada):
    top, _, answer = conversation
    page = signed_in_as(Client(), ada).get("/app/admin/messages").content.decode()
    for m in (top, answer):
        assert f'action="/app/admin/messages/{m.uid}/export"' in page


def test_a_subject_or_name_spelling_encoded_words_cannot_forge_the_exported_email(org, alice, sender_client, ada):
    """A subject (or a person's name) written as RFC 2047 encoded words holding line breaks would,
    copied as it is, become header fields and a body of the sender's choosing in the legal record."""
    forged = "Quarterly =?utf-8?q?x=0D=0AFrom:_ceo@example.org=0D=0AContent-Type:_text/plain=0D=0A=0D=0AForged?="
    alice.name = "Alice =?utf-8?q?x=0D=0ABcc:_ceo@example.org?="
    alice.save(update_fields=["name"])
    r = send(sender_client, to=BOB, subject=forged, body="<p>Real body EXPF0RG</p>")
    uid = r["Location"].rsplit("/", 1)[1]
    archive = _opened(_export(signed_in_as(Client(), ada), uid))
    (mail,) = _emails(archive)
    assert mail["Subject"] == forged  # the subject as the sender typed it, as text
    assert mail.get_all("From") == ["alice@northwind.example"] and mail.get_all("Bcc") is None
    assert "Real body EXPF0RG" in mail.get_body(("html",)).get_content()
    people = json.loads(archive.read("manifest.json"))["people"]
    assert {"email": "alice@northwind.example", "name": alice.name} in people


def test_a_conversation_reaching_into_another_organisation_is_not_exported(conversation, ada):
    """Replies stay in their message's organisation; were a row ever to say otherwise, the
    export refuses rather than hand one organisation's admin another's messages."""
    top, reply, answer = conversation
    Message.objects.filter(pk__in=[top.pk, reply.pk]).update(org=personas.harbour())
    admin = signed_in_as(Client(), ada)
    r = _export(admin, answer.uid)  # the admin's own message, answering the other organisation's
    assert r.status_code == 302 and r["Location"] == "/app/admin/messages"
    assert "not your organisation" in admin.get(r["Location"]).content.decode()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT).exists()


def test_a_held_conversation_whose_content_was_purged_exports_what_is_left(conversation, ada):
    """Held after the policy had destroyed its content: the export still gives the record
    (who wrote to whom, when) and says the content was removed, with no file."""
    top, reply, answer = conversation
    set_policy(ada.org, by=ada, after_expiry_days=None, after_deletion_days=None, after_activity_days=1)
    clock.travel(timedelta(days=3))
    assert purge_org(ada.org).purged == 3
    place_hold(ada.org, reason="Matter 2026-118", by=ada, conversation=top)
    admin = signed_in_as(Client(), ada)
    page = admin.get("/app/admin/retention").content.decode()
    assert f'action="/app/admin/messages/{top.uid}/export"' in page  # Export beside Release
    mails = _emails(_opened(_export(admin, top.uid)))
    assert len(mails) == 3
    for mail in mails:
        assert "Content removed under" in mail.get_body(("plain",)).get_content()
        assert _files(mail) == {}
        assert SUBJECT not in mail.as_string() and "EXP5WK" not in mail.as_string()


def test_a_conversation_too_deep_to_gather_whole_is_refused_not_cut_short(conversation, ada, monkeypatch):
    """An export leaves out nothing silently: a conversation deeper than the portal walks is refused."""
    top, reply, answer = conversation
    monkeypatch.setattr(threads, "MAX_DEPTH", 1)  # top, then one level of replies; the answer is deeper
    admin = signed_in_as(Client(), ada)
    r = _export(admin, top.uid)
    assert r.status_code == 302
    assert "cannot be gathered whole" in admin.get(r["Location"]).content.decode()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT).exists()
