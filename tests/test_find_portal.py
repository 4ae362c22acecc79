"""A lost recipient asks where to sign in; the answer goes only to their mailbox."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from hushpost.accounts.models import Throttle
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock
from hushpost.notifications import delivery, kinds
from hushpost.notifications.models import Notification
from tests.helpers import send
from tests.personas import BOB, CAROL

PORTALS_SUBJECT = "Your Secure Messaging portals"


@pytest.fixture
def relay_probed_at_once(monkeypatch):
    """The worker asks a relay it saw down whether it is back every 10 s; here at once."""
    monkeypatch.setattr(delivery, "PROBE_SECONDS", 0.0)
    delivery.relay.down = False
    yield
    delivery.relay.down = False


def _lists_asked_for(sender_client, client_factory, smtp, deliver, *addresses: str) -> None:
    """Each address gets a message (so it has an account), then asks for its list."""
    for address in addresses:
        send(sender_client, to=address)
    deliver()
    smtp.clear()
    for address in addresses:
        client_factory().post("/find-my-portal", {"email": address})


def test_the_page_says_the_same_whether_or_not_an_account_exists(sender_client, client_factory, smtp, deliver, org):
    send(sender_client, to="bob@client.example")
    deliver()
    smtp.clear()
    client = client_factory()
    known = client.post("/find-my-portal", {"email": "Bob@Client.example"})
    unknown = client.post("/find-my-portal", {"email": "nobody@client.example"})
    assert known.status_code == unknown.status_code == 200
    assert known.content.decode().replace("bob@client.example", "X") == \
        unknown.content.decode().replace("nobody@client.example", "X")
    deliver()
    [mail] = smtp.to("bob@client.example", "Your Secure Messaging portals")
    assert f"/r/{org.slug}/login\r\n" in mail.text and "bob%40" not in mail.text  # no address in a link
    assert "Northwind Health" in mail.text
    assert not smtp.to("nobody@client.example")  # no account: no e-mail at all


def test_a_bad_address_is_explained(client, db):
    r = client.post("/find-my-portal", {"email": "not an address"})
    assert r.status_code == 400 and "Enter the e-mail address" in r.content.decode()


def test_an_address_gets_one_list_however_often_and_from_wherever_it_is_asked(
        sender_client, client_factory, smtp, deliver):
    send(sender_client, to="bob@client.example")
    deliver()
    smtp.clear()
    pages = set()
    for n in range(8):  # eight clients, one after the other
        r = client_factory().post("/find-my-portal", {"email": "bob@client.example"}, REMOTE_ADDR=f"198.51.100.{n + 1}")
        assert r.status_code == 200
        pages.add(r.content.decode())
    unknown = client_factory().post("/find-my-portal", {"email": "nobody@client.example"})
    deliver()
    assert len(smtp.to("bob@client.example", "Your Secure Messaging portals")) == 1
    # Sent, suppressed or no account: the page is the same.
    assert len(pages) == 1 and pages == {unknown.content.decode().replace("nobody@client.example", "bob@client.example")}
    # Counted by a hash: the table never holds the address.
    rows = list(Throttle.objects.filter(scope=Throttle.Scope.PORTAL_LIST).values_list("key", flat=True))
    assert rows and not any("bob" in key for key in rows)
    clock.travel(timedelta(minutes=16))  # the window has passed: one more may go
    client_factory().post("/find-my-portal", {"email": "bob@client.example"})
    deliver()
    assert len(smtp.to("bob@client.example", "Your Secure Messaging portals")) == 2


def test_the_list_waits_out_a_relay_outage_and_its_row_never_names_an_organisation(
        sender_client, client_factory, smtp, deliver, org, relay_probed_at_once, settings):
    settings.NOTIFY_RETRY_SCHEDULE = [3600]
    send(sender_client, to=BOB)
    deliver()
    smtp.clear()
    smtp.stop()  # the relay refuses every connection
    client_factory().post("/find-my-portal", {"email": BOB})
    deliver()
    note = Notification.objects.get(kind=Notification.Kind.PORTALS)
    assert (note.status, note.waiting_for_relay, note.address) == ("pending", True, BOB)
    assert "refused the connection" in note.last_error
    # The row says where the list goes, never what it lists.
    stored = " ".join(str(value) for value in Notification.objects.filter(pk=note.pk).values().get().values())
    assert org.name not in stored and org.slug not in stored and "/login" not in stored
    smtp.start()
    deliver()  # the retry is an hour away, but the relay answers: the list goes now
    deliver()
    [mail] = smtp.to(BOB, PORTALS_SUBJECT)
    assert org.name in mail.text and f"/r/{org.slug}/login\r\n" in mail.text
    note.refresh_from_db()
    assert note.status == "sent"
    # Recorded like every accepted e-mail, under no organisation: the address may have none here.
    [event] = AuditEvent.objects.filter(action=AuditEvent.Action.NOTIFICATION, object_id=str(note.key))
    assert (event.org_id, event.actor_email) == (None, BOB)


def test_one_list_refused_for_its_address_holds_back_no_other(
        sender_client, client_factory, smtp, deliver, relay_probed_at_once):
    _lists_asked_for(sender_client, client_factory, smtp, deliver, BOB, CAROL)
    smtp.refuse_next("451 4.2.2 Mailbox full")  # Bob's list, queued first
    # One batch: lists belong to no account, so Bob's waiting is no reason for Carol's to.
    assert delivery.deliver_due() == 2
    assert len(smtp.to(CAROL, PORTALS_SUBJECT)) == 1 and not smtp.to(BOB, PORTALS_SUBJECT)
    assert Notification.objects.get(kind=Notification.Kind.PORTALS, address=BOB).status == "pending"


def _portals_kind_preparing(monkeypatch, prepare):
    kind = kinds.of(Notification(kind=Notification.Kind.PORTALS))
    monkeypatch.setitem(kinds._registry, kind.kind, dataclasses.replace(kind, prepare=prepare))


def test_a_list_that_cannot_be_written_fails_alone(sender_client, client_factory, smtp, deliver, monkeypatch):
    _lists_asked_for(sender_client, client_factory, smtp, deliver, BOB, CAROL)
    written = kinds.of(Notification(kind=Notification.Kind.PORTALS)).prepare

    def prepare(notification):
        if notification.address == BOB:
            raise ValueError("a region answered nonsense")
        return written(notification)

    _portals_kind_preparing(monkeypatch, prepare)
    assert delivery.deliver_due() == 2  # Bob's failure did not end the batch
    assert len(smtp.to(CAROL, PORTALS_SUBJECT)) == 1 and not smtp.to(BOB, PORTALS_SUBJECT)
    bobs = Notification.objects.get(kind=Notification.Kind.PORTALS, address=BOB)
    assert bobs.status == "pending" and "nonsense" in bobs.last_error and not bobs.waiting_for_relay


def test_a_list_slow_to_write_is_not_sent_once_another_worker_holds_it(
        sender_client, client_factory, smtp, deliver, monkeypatch):
    _lists_asked_for(sender_client, client_factory, smtp, deliver, BOB)
    written = kinds.of(Notification(kind=Notification.Kind.PORTALS)).prepare

    def slow(notification):
        # The other regions took so long that the lease ran out and another worker claimed it.
        Notification.objects.filter(pk=notification.pk).update(lease_owner="another-worker")
        return written(notification)

    _portals_kind_preparing(monkeypatch, slow)
    delivery.deliver_due()
    assert not smtp.to(BOB, PORTALS_SUBJECT)
    assert Notification.objects.get(kind=Notification.Kind.PORTALS).lease_owner == "another-worker"
