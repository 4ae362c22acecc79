"""Recall and expiry after sending: the sender's, and an organisation admin's."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from hushpost.audit.models import AuditEvent
from hushpost.lib import clock
from hushpost.lib.refusals import Refused
from hushpost.messaging.actions import (
    Addressees,
    SendOptions,
    change_expiry,
    send_message,
)
from hushpost.messaging.models import Delivery, Message
from tests import personas
from tests.helpers import BACKEND, content_of, send, signed_in_as, upload
from tests.personas import BOB, CAROL, first_login


def _readers(client_factory, smtp, deliver, org, *addresses):
    deliver()
    readers = {}
    for address in addresses:
        readers[address] = client_factory()
        first_login(readers[address], smtp, org, address)
    return readers


def test_a_recalled_message_shows_the_recipient_nothing_but_that(sender_client, client_factory, smtp, deliver, org):
    fid = upload(sender_client, b"the contract", "contract.pdf").json()["uid"]
    send(sender_client, to=BOB, cc=CAROL, subject="Contract draft QX71", body="<p>Terms QX72</p>", attachment=[fid])
    message = Message.objects.get()
    readers = _readers(client_factory, smtp, deliver, org, BOB, CAROL)
    bob = readers[BOB]
    r = sender_client.post(f"/app/m/{message.uid}/recall", {"recipient": Delivery.objects.get(recipient__email=BOB).recipient_id})
    assert r.status_code == 302
    page = bob.get(f"/r/{org.slug}/m/{message.uid}").content.decode()
    assert "This message was recalled by the sender" in page
    assert "QX71" not in page and "QX72" not in page and "contract.pdf" not in page
    inbox = bob.get(f"/r/{org.slug}/").content.decode()
    assert "This message was recalled by the sender" in inbox and "QX71" not in inbox
    for path in ("/reply", "/print", f"/files/{fid}"):
        assert bob.get(f"/r/{org.slug}/m/{message.uid}{path}").status_code == 404
    assert bob.post(f"/r/{org.slug}/m/{message.uid}/reply", {"body": "x", "send_token": "r" * 24}).status_code == 404
    # Carol, not recalled, still reads it and its file.
    assert "QX72" in readers[CAROL].get(f"/r/{org.slug}/m/{message.uid}").content.decode()
    assert content_of(readers[CAROL].get(f"/r/{org.slug}/m/{message.uid}/files/{fid}")) == b"the contract"
    # The sender sees who it was recalled for, and can recall it for everyone.
    page = sender_client.get(f"/app/m/{message.uid}").content.decode()
    assert "Recalled" in page and "Recall for everyone" in page
    sender_client.post(f"/app/m/{message.uid}/recall")
    assert "QX72" not in readers[CAROL].get(f"/r/{org.slug}/m/{message.uid}").content.decode()
    assert Delivery.objects.filter(recalled_at__isnull=True).count() == 0
    # A recalled message can still be removed from the Inbox.
    assert bob.post(f"/r/{org.slug}/m/{message.uid}/delete").status_code == 302


def test_only_the_author_recalls_or_changes_expiry(sender_client, make_sender, org, client_factory):
    send(sender_client, to=BOB)
    message = Message.objects.get()
    dave = client_factory()
    dave.force_login(make_sender(org, "dave", "Dave"), backend=BACKEND)
    assert dave.post(f"/app/m/{message.uid}/recall").status_code == 404
    assert dave.post(f"/app/m/{message.uid}/expiry", {"expiry": "now"}).status_code == 404
    assert Client().post(f"/app/m/{message.uid}/recall").status_code == 302  # to sign in
    assert not Delivery.objects.filter(recalled_at__isnull=False).exists()
    assert Message.objects.get().expires_at is None


def test_a_sender_extends_or_shortens_the_expiry(sender_client, client_factory, smtp, deliver, org):
    send(sender_client, to=BOB, expire_days=1)
    message = Message.objects.get()
    bob = _readers(client_factory, smtp, deliver, org, BOB)[BOB]
    assert sender_client.post(f"/app/m/{message.uid}/expiry", {"expiry": "30"}).status_code == 302
    message.refresh_from_db()
    assert timedelta(days=29) < message.expires_at - clock.now() <= timedelta(days=30)
    assert "/reply" in bob.get(f"/r/{org.slug}/m/{message.uid}").content.decode()
    sender_client.post(f"/app/m/{message.uid}/expiry", {"expiry": "now"})
    page = bob.get(f"/r/{org.slug}/m/{message.uid}").content.decode()
    assert "expired on" in page and "/reply" not in page
    sender_client.post(f"/app/m/{message.uid}/expiry", {"expiry": "never"})
    message.refresh_from_db()
    assert message.expires_at is None
    assert sender_client.post(f"/app/m/{message.uid}/expiry", {"expiry": "9999"}).status_code == 302
    message.refresh_from_db()
    assert message.expires_at is None  # an unknown choice changes nothing


def test_a_changed_expiry_stays_within_the_organisations_policy(sender_client, org, alice):
    org.allowed_expiry_days = "7,30"
    org.save()
    send(sender_client, to=BOB, expire_days=7)
    message = Message.objects.get()
    first = message.expires_at
    page = sender_client.get(f"/app/m/{message.uid}").content.decode()
    offered = page.split('id="expiry"')[1].split("</select>")[0]
    assert 'value="never"' not in offered and 'value="1"' not in offered and 'value="30"' in offered
    for choice, refusal in (("never", "does not allow messages that never expire: choose 7 or 30 days."),
                            ("1", "does not allow an expiry of 1 day: choose 7 or 30 days.")):
        r = sender_client.post(f"/app/m/{message.uid}/expiry", {"expiry": choice}, follow=True)
        assert refusal in r.content.decode()
        message.refresh_from_db()
        assert message.expires_at == first
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.EXPIRY).exists()
    sender_client.post(f"/app/m/{message.uid}/expiry", {"expiry": "30"})
    message.refresh_from_db()
    assert timedelta(days=29) < message.expires_at - clock.now() <= timedelta(days=30)
    sender_client.post(f"/app/m/{message.uid}/expiry", {"expiry": "now"})  # expiring it now always is allowed
    message.refresh_from_db()
    assert message.is_expired
    # The actions hold the rule themselves, whoever calls them.
    alice.refresh_from_db()  # her organisation as it is now, as a request would load it
    with pytest.raises(Refused, match="never expire"):
        change_expiry(message, None, by=alice)
    with pytest.raises(Refused, match="never expire"):
        send_message(author=alice, addressees=Addressees(to=[BOB]), subject="S", body_html="<p>B</p>",
                     options=SendOptions(expire_days=0), send_token="policy-check-token-1")
    assert Message.objects.count() == 1


def test_an_admin_finds_messages_by_metadata_and_recalls_them(sender_client, org, client_factory):
    send(sender_client, to=BOB, subject="Searchable secret QX90")
    send(sender_client, to=CAROL, subject="Other")
    admin = client_factory()
    signed_in_as(admin, personas.ada(org))
    page = admin.get("/app/admin/messages", {"recipient": "bob@"}).content.decode()
    assert BOB in page and CAROL not in page and "QX90" not in page  # never content
    assert "No messages match." in admin.get("/app/admin/messages", {"sender": "QX90"}).content.decode()
    to_bob = Message.objects.get(deliveries__recipient__email=BOB)
    assert admin.post(f"/app/admin/messages/{to_bob.uid}/recall", {"back": "recipient=bob%40"}).status_code == 302
    assert Delivery.objects.get(recipient__email=BOB).recalled_at is not None
    page = admin.get("/app/admin/messages", {"status": "recalled"}).content.decode()
    assert BOB in page and CAROL not in page
    page = admin.get("/app/admin/messages", {"status": "active"}).content.decode()
    assert CAROL in page and BOB not in page
    # Another organisation's admin finds nothing and recalls nothing.
    other = personas.harbour()
    theirs = client_factory()
    signed_in_as(theirs, personas.hal(other))
    assert BOB not in theirs.get("/app/admin/messages").content.decode()
    to_carol = Message.objects.get(deliveries__recipient__email=CAROL)
    assert theirs.post(f"/app/admin/messages/{to_carol.uid}/recall").status_code == 404
    assert Delivery.objects.get(recipient__email=CAROL).recalled_at is None
