"""Reminders and resending: a recipient who has not opened a message hears of it again, as the
organisation's policy says, and a sender may send its notification again by hand; never for a
message that is no longer there to read, and never twice for one turn."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import unquote

import pytest
from django.db import connection  # noqa: F401 - the skipif condition
from django.test import Client

from hushpost.accounts.models import User
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock
from hushpost.lib.refusals import Refused
from hushpost.messaging import reminders
from hushpost.messaging.models import Delivery, Message
from hushpost.notifications.models import Notification
from hushpost.server import background, periodic
from hushpost.server.background import REMINDER_JOB
from tests import personas
from tests.helpers import path_of, send, signed_in_as, workers_at_once
from tests.personas import ALICE, BOB, CAROL, PASSWORD, first_login

NOTICE = "Secure Messaging Notification"
REMINDER = "Reminder: Secure Messaging Notification"
TOLD = "Secure Messaging Reminder Sent"
DAVE = "dave@client.example"
postgresql_only = pytest.mark.skipif("connection.vendor != 'postgresql'",
                                     reason="workers on several machines share a PostgreSQL server")


@pytest.fixture(autouse=True)
def _every_round(settings):
    # The job's interval is judged by the database's clock, which the test clock does not move:
    # each worker run looks for reminders, and the reminders' own days are what is tested.
    settings.REMINDER_INTERVAL = 0


def _policy(org, days=2, times=2, tell=True):
    org.remind_after_days, org.remind_times, org.remind_tells_sender = days, times, tell
    org.save()


def _sent(sender_client, to=BOB, subject="Lab results QR11", **kw) -> Message:
    r = send(sender_client, to=to, subject=subject, body="<p>Findings QR12</p>", **kw)
    assert r.status_code == 302, r.content[:300]
    return Message.objects.order_by("-pk").first()


def _leads_to(mail) -> str:
    """Where an e-mail's link goes once its reader has signed in (the sign-in page's next)."""
    page = Client().get(path_of(mail.link())).content.decode()
    return unquote(re.search(r'action="/r/[^/]+/login\?next=([^"]*)"', page).group(1))


def test_a_recipient_is_reminded_after_n_days_at_most_m_times_and_the_sender_told(
        sender_client, smtp, deliver, org, alice):
    _policy(org, days=2, times=2)
    message = _sent(sender_client)
    deliver()
    notice = smtp.wait_for(BOB, NOTICE)[0]
    clock.travel(timedelta(days=1, hours=23))
    deliver()
    assert smtp.to(BOB, REMINDER) == [] and smtp.to(ALICE, TOLD) == []

    clock.travel(timedelta(hours=2))
    deliver()
    reminder = smtp.wait_for(BOB, REMINDER)[0]
    # A link of its own that leads where the message notification's does, to the message, and no
    # more of the message than the notification says.
    assert _leads_to(reminder) == _leads_to(notice) == f"/r/{org.slug}/m/{message.uid}"
    assert "has not been opened yet" in reminder.text and "QR1" not in reminder.text + reminder.html
    told = smtp.wait_for(ALICE, TOLD)[0]
    assert BOB in told.text and "reminder 1 of 2" in told.text and "QR1" not in told.text + told.html
    deliver()  # not due again until two more days have passed
    assert len(smtp.to(BOB, REMINDER)) == 1

    clock.travel(timedelta(days=2, minutes=1))
    deliver()
    assert len(smtp.wait_for(BOB, REMINDER, count=2)) == 2
    clock.travel(timedelta(days=5))
    deliver()
    assert len(smtp.to(BOB, REMINDER)) == 2 and len(smtp.to(ALICE, TOLD)) == 2  # at most twice
    delivery = Delivery.objects.get(message=message)
    assert delivery.reminders_sent == 2
    assert AuditEvent.objects.filter(action=AuditEvent.Action.REMINDER, object_id=message.uid).count() == 2

    sender_client = signed_in_as(Client(), alice)  # days later: signed in again
    page = sender_client.get(f"/app/m/{message.uid}").content.decode()
    assert "Reminded 2×, last <time" in page
    assert "Notified" in sender_client.get("/app/sent").content.decode()  # reminders never make it "Pending"


def test_no_reminder_unless_the_policy_asks_and_no_sender_told_unless_it_says(sender_client, smtp, deliver, org):
    _sent(sender_client)
    deliver()
    clock.travel(timedelta(days=40))
    deliver()
    assert smtp.to(BOB, REMINDER) == []
    _policy(org, days=2, times=1, tell=False)
    deliver()
    smtp.wait_for(BOB, REMINDER)
    assert smtp.to(ALICE, TOLD) == []


def test_none_for_a_message_expired_recalled_deleted_opened_or_an_account_disabled(
        sender_client, smtp, deliver, client_factory, org):
    _policy(org, days=2, times=3)
    expired = _sent(sender_client, subject="Expires QR21", expire_days=1)
    recalled = _sent(sender_client, subject="Recalled QR22")
    opened = _sent(sender_client, subject="Opened QR23")
    deleted = _sent(sender_client, subject="Deleted QR24")
    _sent(sender_client, to=DAVE, subject="Disabled QR25")
    control = _sent(sender_client, to=CAROL, subject="Control QR26")
    deliver()
    bob = client_factory()
    first_login(bob, smtp, org, BOB)
    assert "QR23" in bob.get(f"/r/{org.slug}/m/{opened.uid}").content.decode()
    assert bob.post(f"/r/{org.slug}/m/{deleted.uid}/delete").status_code == 302
    recipient = Delivery.objects.get(message=recalled).recipient_id
    assert sender_client.post(f"/app/m/{recalled.uid}/recall", {"recipient": recipient}).status_code == 302
    User.objects.filter(email=DAVE).update(is_active=False)

    clock.travel(timedelta(days=3))
    deliver()
    smtp.wait_for(CAROL, REMINDER)  # the job ran
    assert smtp.to(BOB, REMINDER) == [] and smtp.to(DAVE, REMINDER) == []
    assert list(Delivery.objects.filter(reminders_sent__gt=0).values_list("message", flat=True)) == [control.pk]
    assert expired.deliveries.get().reminders_sent == 0


def test_a_reminder_opened_before_its_turn_never_goes(sender_client, smtp, deliver, client_factory, org):
    _policy(org, days=1, times=1, tell=True)
    message = _sent(sender_client)
    deliver()
    clock.travel(timedelta(days=2))
    assert [o.reminded for o in reminders.remind_all()] == [1]  # queued, not yet sent
    bob = client_factory()
    first_login(bob, smtp, org, BOB)
    bob.get(f"/r/{org.slug}/m/{message.uid}")
    deliver()
    assert smtp.to(BOB, REMINDER) == [] and smtp.to(ALICE, TOLD) == []  # nor is the sender told it went
    assert Notification.objects.get(kind=Notification.Kind.REMINDER).status == Notification.Status.CANCELLED


def test_a_crash_before_the_commit_leaves_no_reminder_recorded_and_the_next_run_sends_one(
        sender_client, smtp, deliver, org, monkeypatch):
    _policy(org, days=1, times=1, tell=False)
    _sent(sender_client)
    deliver()
    clock.travel(timedelta(days=2))

    def crash(*args, **kwargs):
        raise SystemExit("the worker's machine went down")

    with monkeypatch.context() as m:
        m.setattr(reminders, "queue_notification", crash)
        with pytest.raises(SystemExit):
            reminders.remind_all()
    assert Delivery.objects.get().reminders_sent == 0
    assert not Notification.objects.filter(kind=Notification.Kind.REMINDER).exists()
    deliver()
    deliver()
    assert len(smtp.wait_for(BOB, REMINDER)) == 1


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_workers_racing_send_one_reminder(sender_client, smtp, deliver, org):
    _policy(org, days=1, times=3)
    _sent(sender_client)
    _sent(sender_client, to=CAROL)
    deliver()
    clock.travel(timedelta(days=2))
    # Through the job's lease, as `hushpost worker` runs it on four machines at once...
    workers_at_once(4, 3, lambda name: periodic.run_if_due(REMINDER_JOB, name, timedelta(0), background.reminder_run))
    assert Notification.objects.filter(kind=Notification.Kind.REMINDER).count() == 2
    # ...and even without it, the conditional update lets one of them have each reminder.
    clock.travel(timedelta(days=2))
    workers_at_once(4, 1, lambda name: reminders.remind_all())
    assert Notification.objects.filter(kind=Notification.Kind.REMINDER).count() == 4
    assert sorted(Delivery.objects.values_list("reminders_sent", flat=True)) == [2, 2]
    deliver()
    assert len(smtp.wait_for(BOB, REMINDER, count=2)) == 2 and len(smtp.to(CAROL, REMINDER)) == 2


# --- Resend notification, by hand -------------------------------------------------------------

def test_a_sender_resends_a_notification_once_per_double_click(sender_client, smtp, deliver, org):
    message = _sent(sender_client)
    deliver()
    smtp.wait_for(BOB, NOTICE)
    page = sender_client.get(f"/app/m/{message.uid}").content.decode()
    assert "Resend notification" in page
    recipient = Delivery.objects.get().recipient_id
    first = sender_client.post(f"/app/m/{message.uid}/resend", {"recipient": recipient}, follow=True)
    again = sender_client.post(f"/app/m/{message.uid}/resend", {"recipient": recipient}, follow=True)
    assert f"A new Secure Messaging Notification is on its way to {BOB}" in first.content.decode()
    assert "moments ago" in again.content.decode()
    deliver()
    notices = smtp.wait_for(BOB, NOTICE, count=2)
    assert len(notices) == 2 and _leads_to(notices[1]) == _leads_to(notices[0]) == f"/r/{org.slug}/m/{message.uid}"
    assert AuditEvent.objects.filter(action=AuditEvent.Action.RESEND, object_id=message.uid).count() == 1
    page = sender_client.get(f"/app/m/{message.uid}").content.decode()
    assert "Resent 1×, last" in page
    clock.travel(timedelta(minutes=6))
    assert sender_client.post(f"/app/m/{message.uid}/resend", {"recipient": recipient}).status_code == 302
    deliver()
    assert len(smtp.wait_for(BOB, NOTICE, count=3)) == 3


def test_a_sender_resends_one_addressee_at_most_five_times(sender_client, smtp, deliver, org):
    message = _sent(sender_client)
    recipient = Delivery.objects.get().recipient_id
    for _ in range(reminders.MAX_RESENDS):
        assert sender_client.post(f"/app/m/{message.uid}/resend", {"recipient": recipient}).status_code == 302
        clock.travel(timedelta(minutes=reminders.RESEND_MINUTES + 1))
    r = sender_client.post(f"/app/m/{message.uid}/resend", {"recipient": recipient}, follow=True)
    assert f"already sent again {reminders.MAX_RESENDS} times to {BOB}" in r.content.decode()
    assert "Resend notification" not in sender_client.get(f"/app/m/{message.uid}").content.decode()
    assert Delivery.objects.get().resends == reminders.MAX_RESENDS
    deliver()
    assert len(smtp.wait_for(BOB, NOTICE, count=1 + reminders.MAX_RESENDS)) == 1 + reminders.MAX_RESENDS


def test_no_resend_for_an_expired_recalled_or_opened_message(
        sender_client, smtp, deliver, client_factory, org, alice):
    message = _sent(sender_client, expire_days=1)
    deliver()
    recipient = Delivery.objects.get().recipient_id
    clock.travel(timedelta(days=2))
    sender_client = signed_in_as(Client(), alice)
    assert "Recall for everyone" in sender_client.get(f"/app/m/{message.uid}").content.decode()
    assert "Resend notification" not in sender_client.get(f"/app/m/{message.uid}").content.decode()
    r = sender_client.post(f"/app/m/{message.uid}/resend", {"recipient": recipient}, follow=True)
    assert "The message has expired: change its expiry first to notify anyone again." in r.content.decode()

    recalled = _sent(sender_client, subject="Recalled QR31")
    sender_client.post(f"/app/m/{recalled.uid}/recall")
    r = sender_client.post(f"/app/m/{recalled.uid}/resend", {"recipient": recipient}, follow=True)
    assert f"The message was recalled for {BOB}." in r.content.decode()

    opened = _sent(sender_client, subject="Opened QR32")
    deliver()
    bob = client_factory()
    first_login(bob, smtp, org, BOB)
    bob.get(f"/r/{org.slug}/m/{opened.uid}")
    r = sender_client.post(f"/app/m/{opened.uid}/resend", {"recipient": recipient}, follow=True)
    assert f"{BOB} has already opened the message." in r.content.decode()
    assert not Delivery.objects.filter(resends__gt=0).exists()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.RESEND).exists()


def test_only_the_author_resends_and_only_to_an_addressee(sender_client, org):
    message = _sent(sender_client)
    other = signed_in_as(Client(), personas.sender(org, "hal", "Hal Ng"))
    recipient = Delivery.objects.get().recipient_id
    assert other.post(f"/app/m/{message.uid}/resend", {"recipient": recipient}).status_code == 404
    r = sender_client.post(f"/app/m/{message.uid}/resend", {"recipient": "999999"}, follow=True)
    assert "Choose a recipient of this message." in r.content.decode()
    for typed in ("x", "²", ""):  # "²": a digit to str.isdigit, not to int()
        assert sender_client.post(f"/app/m/{message.uid}/resend", {"recipient": typed}).status_code == 400
    assert not Delivery.objects.filter(resends__gt=0).exists()


# --- the policy -------------------------------------------------------------------------------

def test_an_admin_sets_reminders_within_bounds(org):
    admin = signed_in_as(Client(), personas.ada(org))
    base = {"sender_name": "Northwind", "default_restriction": "none", "default_expire_days": "7",
            "allowed_expiry": ["7", "30"], "temp_password_days": "", "current": PASSWORD}
    assert "Remind recipients who have not opened a message after (days)" in admin.get(
        "/app/admin/policy").content.decode()
    for bad in ({"remind_after_days": "31"}, {"remind_after_days": "0"}, {"remind_after_days": "3",
                                                                        "remind_times": "6"}):
        assert admin.post("/app/admin/policy", {**base, **bad}).status_code == 400
    r = admin.post("/app/admin/policy", {**base, "remind_after_days": "3", "remind_times": "2",
                                         "remind_tells_sender": "on"})
    assert r.status_code == 302
    org.refresh_from_db()
    assert (org.remind_after_days, org.remind_times, org.remind_tells_sender) == (3, 2, True)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_two_resends_at_the_same_moment_send_one_notification(sender_client, alice):
    message = _sent(sender_client)
    recipient = Delivery.objects.get().recipient_id
    refused = []

    def press(name):
        try:
            reminders.resend(message, recipient, by=alice)
        except Refused as e:
            refused.append(str(e))

    workers_at_once(2, 1, press)
    assert len(refused) == 1 and "moments ago" in refused[0]
    assert Delivery.objects.get().resends == 1
    assert Notification.objects.filter(kind=Notification.Kind.MESSAGE).count() == 2  # the first, and one more
