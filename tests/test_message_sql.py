"""The message pages' written-out statements build the objects the ORM would build.

``hushpost.messaging.sql`` reads the message, its author, organisation and the message
it answers, the reader's delivery, the addressees and the files in plain SQL; here every
field of what it builds is compared with what the ORM reads for the same rows, on the
database the tests run on (SQLite or PostgreSQL): dates, flags and sealed bytes alike.
"""

from __future__ import annotations

import pytest

from hushpost.accounts.models import User
from hushpost.attachments.models import Attachment
from hushpost.messaging import sql
from hushpost.messaging.actions import open_message
from hushpost.messaging.models import Delivery, Message
from hushpost.messaging.status import notifications_of
from hushpost.notifications.models import Notification
from tests.helpers import send, upload
from tests.personas import first_login

ANN, BEN = "ann@client.example", "ben@client.example"


def _fields(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def _same(built, read) -> None:
    assert type(built) is type(read)
    assert _fields(built) == _fields(read)
    assert not built._state.adding and built._state.db == read._state.db


@pytest.fixture
def replied(sender_client, client_factory, smtp, deliver, org):
    """Alice's message with a file to Ann (Cc Ben), expiring, read receipt asked; Ann opened it
    and replied to all."""
    file_uid = upload(sender_client, b"%PDF-1.4 results", "results.pdf").json()["uid"]
    send(sender_client, to=ANN, cc=BEN, subject="Results", read_receipt=True, expire_days=7,
         restriction="no_print", attachment=[file_uid])
    deliver()
    ann = client_factory()
    first_login(ann, smtp, org, ANN)
    original = Message.objects.get(kind="message")
    assert ann.get(f"/r/{org.slug}/m/{original.uid}").status_code == 200
    assert ann.post(f"/r/{org.slug}/m/{original.uid}/reply",
                    {"body": "Thank you", "send_token": "a" * 24, "reply_all": "True"}).status_code == 302
    return original, Message.objects.get(kind="reply")


def test_the_gate_reads_what_the_orm_reads(replied, alice):
    original, reply = replied
    ann = User.objects.get(email=ANN)
    for message, reader in ((original, ann), (reply, ann), (reply, alice), (original, alice)):
        built, delivery = sql.message_and_delivery(reader, message.uid, message.org_id)
        read = Message.objects.select_related("author", "org", "in_reply_to").get(pk=message.pk)
        _same(built, read)
        _same(built.author, read.author)
        _same(built.org, read.org)
        if read.in_reply_to is None:
            assert built.in_reply_to is None
        else:
            _same(built.in_reply_to, read.in_reply_to)
        own = Delivery.objects.filter(message=message, recipient=reader).first()
        if own is None:
            assert delivery is None
        else:
            _same(delivery, own)
            assert delivery.message is built and delivery.recipient is reader
    assert sql.message_and_delivery(ann, "no-such-message", original.org_id) is None
    assert sql.message_and_delivery(ann, original.uid, original.org_id + 1) is None


def test_the_addressees_and_files_are_what_the_orm_reads(replied):
    original, reply = replied
    Delivery.objects.filter(message=original, recipient__email=BEN).update(recalled_at=original.created_at)
    rows = sql.deliveries_in(reply.pk, [reply.pk, original.pk])
    expected = list(Delivery.objects.filter(message=reply) | Delivery.objects.filter(
        message=original, recalled_at__isnull=False))
    assert sorted(d.pk for d in rows) == sorted(d.pk for d in expected)
    for built in rows:
        read = next(d for d in expected if d.pk == built.pk)
        _same(built, read)
        _same(built.recipient, read.recipient)
    files = sql.attachments_of(original)
    assert len(files) == 1
    _same(files[0], Attachment.objects.get(message=original))
    assert files[0].message is original
    assert sql.attachments_of(reply) == []


def test_the_senders_rows_are_what_the_orm_reads(replied):
    original, _ = replied
    ben = Delivery.objects.get(message=original, recipient__email=BEN)
    ann = Delivery.objects.get(message=original, recipient__email=ANN)
    Delivery.objects.filter(pk=ben.pk).update(replaced_by=ann, replaced_at=original.created_at)
    rows = sql.deliveries_with_notifications(original)
    expected = list(Delivery.objects.filter(message=original).select_related("recipient", "replaced_by__recipient")
                    .prefetch_related(notifications_of()).order_by("id"))
    assert [d.pk for d, _ in rows] == [d.pk for d in expected]
    for (built, notes), read in zip(rows, expected, strict=True):
        _same(built, read)
        _same(built.recipient, read.recipient)
        assert built.message is original
        if read.replaced_by is None:
            assert built.replaced_by is None
        else:
            _same(built.replaced_by, read.replaced_by)
            _same(built.replaced_by.recipient, read.replaced_by.recipient)
        assert len(notes) == len(read.notifications.all()) > 0
        for note, read_note in zip(notes, read.notifications.all(), strict=True):
            _same(note, read_note)


def test_the_first_opening_counts_once_however_many_tabs(sender_client, deliver):
    send(sender_client, to=BEN, subject="Results", read_receipt=True)
    deliver()
    message = Message.objects.get()
    tabs = [Delivery.objects.select_related("message__author").get(message=message) for _ in range(2)]
    assert [open_message(tab) for tab in tabs] == [True, False]
    assert open_message(tabs[0]) is False
    opened = Delivery.objects.get(message=message).first_opened_at
    assert opened is not None and opened == tabs[0].first_opened_at
    assert Notification.objects.filter(kind=Notification.Kind.READ_RECEIPT).count() == 1
