"""Temporary passwords against the people who share a recipient's mailbox, and a flaky relay."""

from __future__ import annotations

import re
from datetime import timedelta

from hushpost.accounts.models import User
from hushpost.lib import clock
from hushpost.notifications import delivery
from hushpost.notifications.actions import queue_notification
from hushpost.notifications.models import Notification
from tests.helpers import PASSWORD_SUBJECT, send
from tests.personas import BOB, NEW_PASSWORD


def _token(response) -> str:
    return re.search(r'name="token" value="([^"]+)"', response.content.decode()).group(1)


def _sign_in(client, org, password):
    return client.post(f"/r/{org.slug}/login", {"email": BOB, "password": password})


def test_a_password_mail_never_replaces_a_password_chosen_since(
    sender_client, client_factory, smtp, deliver, org
):
    send(sender_client, to=BOB)
    deliver()
    p1 = smtp.wait_for(BOB, PASSWORD_SUBJECT)[0].temporary_password()
    owner, reader = client_factory(), client_factory()
    assert _sign_in(owner, org, p1).status_code == 302
    # Someone else reading the mailbox waits until the owner's session could have lapsed...
    clock.travel(timedelta(minutes=31))
    r = _sign_in(reader, org, p1)
    assert "already been used" in r.content.decode()
    assert reader.post(f"/r/{org.slug}/login/resend", {"token": _token(r)}).status_code == 302
    # ...but the owner signs in again in the meantime and chooses a password first.
    clock.reset()
    assert owner.post(f"/r/{org.slug}/password",
                      {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code == 302
    deliver()
    assert Notification.objects.filter(kind="password", status="cancelled").count() == 1
    assert len(smtp.to(BOB, PASSWORD_SUBJECT)) == 1
    assert _sign_in(client_factory(), org, NEW_PASSWORD).status_code == 302
    assert owner.get(f"/r/{org.slug}/").status_code == 200


def test_the_temporary_session_times_out(sender_client, client_factory, smtp, deliver, org, settings):
    settings.RECIPIENT_IDLE_MINUTES = 60  # the temporary session's own limit, not the idle one
    send(sender_client, to=BOB)
    deliver()
    p1 = smtp.wait_for(BOB, PASSWORD_SUBJECT)[0].temporary_password()
    owner = client_factory()
    assert _sign_in(owner, org, p1).status_code == 302
    clock.travel(timedelta(minutes=31))
    r = owner.get(f"/r/{org.slug}/password", follow=True)
    assert "That session has timed out" in r.content.decode()
    assert owner.post(f"/r/{org.slug}/password",
                      {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code == 302
    assert User.objects.get(email=BOB).must_change_password


def test_a_failed_resend_locks_nobody_out(sender_client, client_factory, smtp, deliver, org, settings):
    send(sender_client, to=BOB)
    deliver()
    p1 = smtp.wait_for(BOB, PASSWORD_SUBJECT)[0].temporary_password()
    clock.travel(timedelta(days=8))
    bob = client_factory()
    r = _sign_in(bob, org, p1)
    assert "temporary password expired" in r.content.decode()
    settings.NOTIFY_RETRY_SCHEDULE = []
    smtp.refuse_next("550 5.2.2 Mailbox full")
    bob.post(f"/r/{org.slug}/login/resend", {"token": _token(r)})
    deliver()
    assert Notification.objects.get(kind="password", status="failed").last_error.startswith("550")
    # The e-mailed password still proves who Bob is, so he can simply ask again.
    r = _sign_in(bob, org, p1)
    assert "temporary password expired" in r.content.decode()
    bob.post(f"/r/{org.slug}/login/resend", {"token": _token(r)})
    deliver()
    p2 = smtp.wait_for(BOB, PASSWORD_SUBJECT, count=2)[-1].temporary_password()
    assert _sign_in(bob, org, p2).status_code == 302


def test_a_resend_request_replayed_while_queued_sends_one_mail(
    sender_client, client_factory, smtp, deliver, org
):
    send(sender_client, to=BOB)
    deliver()
    p1 = smtp.wait_for(BOB, PASSWORD_SUBJECT)[0].temporary_password()
    clock.travel(timedelta(days=8))
    r = _sign_in(client_factory(), org, p1)
    token = _token(r)
    for _ in range(5):
        client_factory().post(f"/r/{org.slug}/login/resend", {"token": token})
    deliver()
    assert len(smtp.to(BOB, PASSWORD_SUBJECT)) == 2
    assert client_factory().post(f"/r/{org.slug}/login/resend", {"token": token}).status_code == 302
    deliver()
    assert len(smtp.to(BOB, PASSWORD_SUBJECT)) == 2  # the request died with the password it answered


def test_a_sender_flagged_to_change_password_is_led_to_the_account_page_not_trapped(sender_client, alice):
    User.objects.filter(pk=alice.pk).update(must_change_password=True)
    r = sender_client.get("/app/")
    assert r.status_code == 302 and r["Location"] == "/app/account?next=%2Fapp%2F"
    assert sender_client.get(r["Location"]).status_code == 200
    r = sender_client.post("/logout")
    assert r.status_code == 302 and r["Location"] == "/login"


def test_a_password_mail_overtaken_by_a_newer_one_is_not_sent(sender_client, client_factory, smtp, deliver, org):
    send(sender_client, to=BOB)
    bob = User.objects.get(email=BOB)
    older = Notification.objects.get(kind="password")
    newer = queue_notification(Notification.Kind.PASSWORD, bob)
    deliver()
    assert Notification.objects.get(pk=older.pk).status == "cancelled"
    assert Notification.objects.get(pk=newer.pk).status == "sent"
    [mail] = smtp.to(BOB, PASSWORD_SUBJECT)
    assert _sign_in(client_factory(), org, mail.temporary_password()).status_code == 302


def test_a_password_chosen_while_the_mail_is_on_its_way_stays(sender_client, client_factory, smtp, deliver, org,
                                                                  monkeypatch):
    send(sender_client, to=BOB)
    deliver()  # Bob has his first temporary password; a second is asked for and queued
    bob = User.objects.get(email=BOB)
    queue_notification(Notification.Kind.PASSWORD, bob)
    relayed = delivery.relay.send

    def chosen_meanwhile(email, *, within):
        if email.subject == PASSWORD_SUBJECT:  # the mail is still wanted: Bob chooses a password now
            bob.set_password(NEW_PASSWORD)
            bob.must_change_password, bob.password_changed_at = False, clock.now()
            bob.save()
        relayed(email, within=within)

    monkeypatch.setattr(delivery.relay, "send", chosen_meanwhile)
    deliver()
    assert len(smtp.to(BOB, PASSWORD_SUBJECT)) == 2
    late = smtp.to(BOB, PASSWORD_SUBJECT)[1].temporary_password()
    assert _sign_in(client_factory(), org, late).status_code == 400  # refused
    assert _sign_in(client_factory(), org, NEW_PASSWORD).status_code == 302
    assert not User.objects.get(pk=bob.pk).must_change_password
