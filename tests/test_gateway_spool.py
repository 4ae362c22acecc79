"""The gateway's spool: 250 once the relayed e-mail is sealed and committed, stored by the worker.

The real gateway listens on loopback with ``HUSHPOST_SMTPD_SPOOL`` on; the tests relay real
e-mails to it with smtplib, run the real worker loop, and read what the recipients and the
sender receive over real SMTP.
"""

from __future__ import annotations

import smtplib

import pytest
from django.db import connection
from django.db.models.functions import Now

from hushpost.attachments.models import Attachment
from hushpost.gateway import spool
from hushpost.gateway.access import Client
from hushpost.gateway.actions import receive_mail
from hushpost.gateway.models import SpooledMail
from hushpost.messaging.content import open_content
from hushpost.messaging.models import Message
from hushpost.notifications.models import Notification
from hushpost.server import rekey
from tests import personas
from tests.gateway_mail import (
    TcpProxy,
    as_bytes,
    mail,
    smtpd_env_through,
    start_smtpd,
    stop_smtpd,
    submit,
)
from tests.helpers import MESSAGE_SUBJECT
from tests.personas import ALICE, BOB, CAROL
from tests.settings import _free_port

pytestmark = pytest.mark.django_db(transaction=True)

QUEUED = (250, "2.0.0 queued to be stored as a secure message")
ALREADY = (250, "2.0.0 already received; stored once")
NOT_SENT = "Secure Messaging Not Sent"
SUBJECT, BODY = "Your biopsy results", "Dear Bob,\n\nThe biopsy QX7-benign-ZP4 came back clear.\n"


@pytest.fixture
def spooling(settings):
    settings.SMTPD_SPOOL = True
    return settings


def _every_stored_byte() -> bytes:
    """Every column of every spooled row, as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM gateway_spooled_mail")
        return b"".join(bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode()
                        for row in cursor.fetchall() for v in row)


def test_the_e_mail_is_answered_once_sealed_and_committed_and_stored_by_the_worker(
        spooling, gateway, org, alice, smtp, deliver, sender_client):
    assert submit(gateway.port, mail(f"[secure] {SUBJECT}", BODY)) == QUEUED
    [row] = SpooledMail.objects.all()
    assert row.state == SpooledMail.State.PENDING and row.sender == alice
    stored = _every_stored_byte()
    # Sealed while it waits: nothing of the subject, body or recipient is in the clear.
    for clear in (b"biopsy", b"QX7-benign-ZP4", BOB.encode(), b"Subject:"):
        assert clear not in stored
    assert not Message.objects.exists()

    deliver()
    row.refresh_from_db()
    message = Message.objects.get(author=alice)
    assert (row.state, row.message_id, bytes(row.sealed)) == (SpooledMail.State.STORED, message.pk, b"")
    assert open_content(message).subject == SUBJECT
    assert "QX7-benign-ZP4" in open_content(message).body_html
    [notice] = smtp.wait_for(BOB, MESSAGE_SUBJECT)
    assert "biopsy" not in notice.text + notice.html
    assert SUBJECT in sender_client.get("/app/sent").content.decode()


def test_a_worker_whose_own_settings_do_not_spool_still_stores_what_was_spooled(
        spooling, gateway, org, alice, smtp, deliver):
    assert submit(gateway.port, mail(f"[secure] {SUBJECT}", BODY)) == QUEUED
    spooling.SMTPD_SPOOL = False  # the worker's unit was not told; or the spool was turned off since
    deliver()
    assert SpooledMail.objects.get().state == SpooledMail.State.STORED
    assert Message.objects.filter(author=alice).count() == 1


def test_a_relayed_retry_is_stored_once_before_during_and_after_its_row_is_kept(
        spooling, gateway, org, alice, smtp, deliver):
    e_mail = mail(f"[secure] {SUBJECT}", BODY)
    assert submit(gateway.port, e_mail) == QUEUED
    assert submit(gateway.port, e_mail) == ALREADY  # its 250 lost on the way: the relay sends it again
    deliver()
    assert submit(gateway.port, e_mail) == ALREADY
    # Long after, the finished row gone, a late retry is spooled again but stored as the same message.
    spooling.SMTPD_SPOOL_KEEP_SECONDS = 0
    spool._purged_at = float("-inf")
    SpooledMail.objects.update(done_at=Now())
    spool.store_due()
    assert not SpooledMail.objects.exists()
    assert submit(gateway.port, e_mail) == QUEUED
    deliver()
    assert Message.objects.filter(author=alice).count() == 1
    assert SpooledMail.objects.get().state == SpooledMail.State.STORED
    assert len(smtp.wait_for(BOB, MESSAGE_SUBJECT)) == 1


def test_what_only_reading_the_e_mail_finds_is_told_to_its_sender_once_without_its_content(
        spooling, gateway, org, alice, smtp, deliver):
    # The envelope says Alice, who may relay; the From header names someone else.
    forged = mail(f"[secure] {SUBJECT}", BODY, sender="mallory@northwind.example", to=(BOB, CAROL))
    assert submit(gateway.port, forged, mail_from=ALICE, rcpts=[BOB, CAROL]) == QUEUED
    deliver()
    deliver()
    assert not Message.objects.exists()
    row = SpooledMail.objects.get()
    assert row.state == SpooledMail.State.REFUSED and bytes(row.sealed) == b""
    [told] = smtp.wait_for(ALICE, NOT_SENT)
    assert len(smtp.to(ALICE, NOT_SENT)) == 1
    for part in (told.text, told.html):
        words = " ".join(part.split())
        assert "was not sent as a secure message. Nobody received it." in words
        assert f"{BOB}, {CAROL}" in part  # which e-mail
        assert "the From address must be yours" in words  # why, in Hushpost's own words
        # Nothing of the e-mail itself, not even the address its From header named.
        assert "biopsy" not in part and "QX7-benign-ZP4" not in part and "mallory" not in part
    assert not smtp.to(BOB) and not smtp.to(CAROL)
    assert Notification.objects.get(kind=Notification.Kind.NOT_SENT).user == alice


def test_a_sender_disabled_while_the_e_mail_waited_is_refused(spooling, gateway, org, alice, smtp, deliver):
    assert submit(gateway.port, mail(f"[secure] {SUBJECT}", BODY)) == QUEUED
    alice.is_active = False
    alice.save()
    deliver()
    assert not Message.objects.exists() and not smtp.to(BOB)
    assert SpooledMail.objects.get().state == SpooledMail.State.REFUSED


def test_a_store_that_fails_is_tried_again_later_then_given_up_with_word_to_the_sender(
        spooling, gateway, org, alice, smtp, deliver, monkeypatch):
    def file_store_down(**kwargs):
        raise OSError("the file store is not answering")

    monkeypatch.setattr("hushpost.gateway.actions.send_message", file_store_down)
    assert submit(gateway.port, mail(f"[secure] {SUBJECT}", BODY)) == QUEUED
    deliver()
    row = SpooledMail.objects.get()
    assert (row.state, row.attempts) == (SpooledMail.State.PENDING, 1)
    assert SpooledMail.objects.filter(next_attempt_at__gt=Now()).exists()  # not before its backoff
    deliver()
    assert SpooledMail.objects.get().attempts == 1

    monkeypatch.undo()  # the file store is back when its turn comes
    SpooledMail.objects.update(next_attempt_at=Now())
    deliver()
    assert SpooledMail.objects.get().state == SpooledMail.State.STORED
    assert Message.objects.filter(author=alice).count() == 1

    # One that cannot be stored for the whole retry window is refused, and its sender told.
    monkeypatch.setattr("hushpost.gateway.actions.send_message", file_store_down)
    spooling.SMTPD_SPOOL_GIVE_UP_SECONDS = 0
    assert submit(gateway.port, mail("[secure] Second", "Another.\n")) == QUEUED
    deliver()
    [told] = smtp.wait_for(ALICE, NOT_SENT)
    assert "Secure Messaging could not store it for 1 hour" in told.text


@pytest.mark.parametrize("files", [0, 1], ids=["text", "with a file"])
def test_a_worker_killed_between_storing_and_marking_stores_nothing_twice(
        spooling, gateway, org, alice, smtp, deliver, files):
    e_mail = mail(f"[secure] {SUBJECT}", BODY)
    if files:  # a retry with files is recognised before its files are stored again
        e_mail.add_attachment(b"%PDF-1.7 scan", maintype="application", subtype="pdf", filename="scan.pdf")
    assert submit(gateway.port, e_mail) == QUEUED
    [pk] = spool._claim("dead-worker", 10)
    row = SpooledMail.objects.get(pk=pk)
    envelope, raw = spool._opened(row, spool._data_key(row))
    # The dead worker stored it, then died before marking the row.
    receive_mail(raw, mail_from=envelope["from"], rcpt_tos=envelope["to"],
                 client=Client(ip=None, auth_org_id=org.pk), token=SpooledMail.objects.get(pk=pk).token)
    SpooledMail.objects.update(lease_until=Now())  # its lease lapses
    deliver()
    message = Message.objects.get(author=alice)
    assert SpooledMail.objects.get().message_id == message.pk
    assert Attachment.objects.count() == files
    assert len(smtp.wait_for(BOB, MESSAGE_SUBJECT)) == 1


def test_a_row_s_sealed_bytes_open_in_no_other_row(spooling, gateway, org, alice, smtp, deliver):
    assert submit(gateway.port, mail("[secure] One", "First.\n")) == QUEUED
    assert submit(gateway.port, mail("[secure] Two", "Second.\n")) == QUEUED
    first, second = SpooledMail.objects.order_by("id")
    SpooledMail.objects.filter(pk=first.pk).update(sealed=second.sealed)
    deliver()
    assert [m.subject for m in map(open_content, Message.objects.all())] == ["Two"]
    assert SpooledMail.objects.get(pk=first.pk).state == SpooledMail.State.REFUSED
    assert "it was damaged while it waited to be stored" in smtp.wait_for(ALICE, NOT_SENT)[0].text
    # Nor may a row's sealed bytes be kept while its sender or token are changed under them.
    assert submit(gateway.port, mail("[secure] Three", "Third.\n")) == QUEUED
    third = SpooledMail.objects.get(state=SpooledMail.State.PENDING)
    SpooledMail.objects.filter(pk=third.pk).update(token="gw-" + "0" * 40)
    deliver()
    assert SpooledMail.objects.get(pk=third.pk).outcome == SpooledMail.Reason.DAMAGED


def test_rotating_the_organisation_key_re_wraps_what_waits_and_retires_the_old_one(
        spooling, gateway, org, alice, smtp, deliver):
    assert submit(gateway.port, mail(f"[secure] {SUBJECT}", BODY)) == QUEUED
    old = SpooledMail.objects.get().key_version
    key = rekey.rotate(org, by="ada@northwind.example")
    assert [(v.version, v.spooled) for v in rekey.status(org)] == [(old, 1), (key.version, 0)]
    rekey.rewrap.call(org.pk, key.version)
    assert SpooledMail.objects.get().key_version == key.version
    assert [(v.version, v.spooled) for v in rekey.status(org)] == [(old, 0), (key.version, 1)]
    rekey.retire(org, old, by="ada@northwind.example")
    deliver()
    assert open_content(Message.objects.get(author=alice)).subject == SUBJECT


def test_a_large_e_mail_is_stored_while_the_client_waits_and_the_dialogue_still_refuses(
        spooling, gateway, org, alice):
    spooling.SMTPD_SPOOL_MAX_BYTES = 100
    assert submit(gateway.port, mail(f"[secure] {SUBJECT}", BODY)) == (250, "2.0.0 stored as a secure message")
    assert not SpooledMail.objects.exists()
    spooling.SMTPD_SPOOL_MAX_BYTES = 4 * 1024 * 1024
    # Who may relay, for whom, is still answered before any DATA.
    code, _ = submit(gateway.port, mail(sender="nobody@elsewhere.example"))
    assert code == 550 and not SpooledMail.objects.exists()


def test_the_message_id_is_found_without_parsing_as_the_reader_finds_it():
    raw = (b"From: a@b.example\r\nMessage-Id:\r\n  <folded@x.example>\r\nSubject: s\r\n\r\n"
           b"Message-ID: <in-the-body@x.example>\r\n")
    assert spool.message_id_of(raw) == "<folded@x.example>"
    assert spool.message_id_of(b"Subject: s\n\nMessage-ID: <body@x>\n") == ""
    assert spool.message_id_of(b"message-id: <a@b>\nX: y\n\nbody") == "<a@b>"


def test_the_database_failing_answers_451_and_the_retry_is_spooled_once(relaying, alice, smtp, deliver, settings):
    if connection.vendor != "postgresql":
        pytest.skip("cuts a TCP connection to PostgreSQL; SQLite has no connection to cut")
    db = connection.settings_dict
    proxy = TcpProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))
    proxy.start()
    port = _free_port()
    env = smtpd_env_through(proxy, settings, HUSHPOST_SMTPD_SPOOL="true")
    process = start_smtpd(env, port)
    try:
        assert submit(port, mail("[secure] Before the outage")) == QUEUED
        retried = mail("[secure] During the outage")
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
            client.ehlo()
            assert client.mail(ALICE)[0] == 250 and client.rcpt(BOB)[0] == 250
            proxy.stop()  # the database goes away between RCPT and the end of DATA
            code, reply = client.data(as_bytes(retried))
        assert code == 451
        proxy.start()
        assert submit(port, retried) == QUEUED
        assert submit(port, retried) == ALREADY
    finally:
        proxy.stop()
        out, err = stop_smtpd(process)
    assert "reply=451" in err and "During the outage" not in err
    deliver()
    subjects = sorted(open_content(m).subject for m in Message.objects.filter(author=alice))
    assert subjects == ["Before the outage", "During the outage"]
    assert len(smtp.wait_for(BOB, MESSAGE_SUBJECT, count=2)) == 2


def test_an_organisation_with_its_fill_waiting_has_its_e_mail_stored_while_the_relay_waits(
        spooling, gateway, org, alice):
    spooling.SMTPD_SPOOL_MAX_PENDING = 2
    assert submit(gateway.port, mail("[secure] One", "First.\n")) == QUEUED
    assert submit(gateway.port, mail("[secure] Two", "Second.\n")) == QUEUED
    assert submit(gateway.port, mail("[secure] Three", "Third.\n")) == (250, "2.0.0 stored as a secure message")
    assert SpooledMail.objects.count() == 2 and Message.objects.count() == 1


def test_the_e_mail_is_stored_only_as_the_account_that_relayed_it(spooling, gateway, org, alice, smtp, deliver):
    assert submit(gateway.port, mail(f"[secure] {SUBJECT}", BODY)) == QUEUED
    # Meanwhile Alice's address moves to a new account.
    alice.email = "alice.moreno@northwind.example"
    alice.save()
    successor = personas.sender(org, "alice", "Alice Other")
    deliver()
    assert not Message.objects.exists()
    assert SpooledMail.objects.get().state == SpooledMail.State.REFUSED
    assert not smtp.to(successor.email, NOT_SENT)


def test_a_disabled_sender_is_not_e_mailed_and_nobody_hears_of_more_than_ten_refusals_an_hour(
        spooling, gateway, org, alice, smtp, deliver):
    for n in range(12):
        forged = mail(f"[secure] Number {n}", BODY, sender="mallory@northwind.example")
        assert submit(gateway.port, forged, mail_from=ALICE, rcpts=[BOB]) == QUEUED
    while spool.store_due():
        pass
    deliver()
    assert len(smtp.wait_for(ALICE, NOT_SENT, count=10)) == 10
    assert SpooledMail.objects.filter(state=SpooledMail.State.REFUSED).count() == 12
    assert len(smtp.to(ALICE, NOT_SENT)) == 10

    smtp.clear()
    Notification.objects.filter(kind=Notification.Kind.NOT_SENT).delete()  # an hour later
    assert submit(gateway.port, mail("[secure] Later", BODY, sender="mallory@northwind.example"),
                  mail_from=ALICE, rcpts=[BOB]) == QUEUED
    alice.is_active = False
    alice.save()
    deliver()
    assert SpooledMail.objects.filter(state=SpooledMail.State.REFUSED).count() == 13
    assert not smtp.to(ALICE)


def test_an_e_mail_whose_key_cannot_be_read_waits_and_the_worker_goes_on(
        spooling, gateway, org, alice, smtp, deliver):
    assert submit(gateway.port, mail("[secure] One", "First.\n")) == QUEUED
    assert submit(gateway.port, mail("[secure] Two", "Second.\n")) == QUEUED
    first, second = SpooledMail.objects.order_by("id")
    SpooledMail.objects.filter(pk=first.pk).update(key_version=99)  # a version this process cannot read
    deliver()
    assert [m.subject for m in map(open_content, Message.objects.all())] == ["Two"]
    first.refresh_from_db()
    assert (first.state, first.attempts) == (SpooledMail.State.PENDING, 1)
    assert not smtp.to(ALICE, NOT_SENT)


def test_a_worker_whose_lease_lapsed_leaves_the_e_mail_to_the_one_that_took_it_over(
        spooling, gateway, org, alice, smtp, deliver):
    assert submit(gateway.port, mail(f"[secure] {SUBJECT}", BODY)) == QUEUED
    [pk] = spool._claim("slow-worker", 10)
    SpooledMail.objects.update(lease_until=Now())  # its lease lapses before it gets to it
    assert spool._claim("other-worker", 10) == [pk]
    spool._store(pk, "slow-worker")
    assert not Message.objects.exists()
    spool._store(pk, "other-worker")
    assert Message.objects.filter(author=alice).count() == 1
