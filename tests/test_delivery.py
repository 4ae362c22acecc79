"""Notifications survive a refusing or absent relay, dead workers and lost tasks: each
e-mail goes once, in order, with a password that works, and the sender sees why."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from django.db.models.functions import Now
from django_tasks_db.models import DBTaskResult

from hushpost.accounts.models import User
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock
from hushpost.messaging.models import Message
from hushpost.notifications import delivery
from hushpost.notifications.models import Notification
from hushpost.server import background
from hushpost.server.background import BackgroundWorker
from hushpost.server.models import WorkerProcess
from tests.helpers import MESSAGE_SUBJECT, PASSWORD_SUBJECT, send
from tests.personas import BOB, CAROL


@pytest.fixture
def fast_retries(settings):
    settings.NOTIFY_RETRY_SCHEDULE = [0, 0, 0]


@pytest.fixture
def probe_now(monkeypatch):
    """The worker asks a relay it saw down whether it is back every 10 s; here at once."""
    monkeypatch.setattr(delivery, "PROBE_SECONDS", 0.0)


@pytest.fixture(autouse=True)
def _relay_up():
    delivery.relay.down = False
    delivery.relay.probed_at = 0.0
    yield
    delivery.relay.down = False


def _status_page(client) -> str:
    return client.get(f"/app/m/{Message.objects.get().uid}").content.decode()


def _due_now():
    """Time passes: every scheduled retry is due (by the database's clock)."""
    Notification.objects.filter(status="pending").update(next_attempt_at=Now() - timedelta(seconds=1))


def test_temporary_refusal_is_retried_until_accepted(sender_client, smtp, deliver, settings):
    settings.NOTIFY_RETRY_SCHEDULE = [3600]
    smtp.refuse_next("451 4.3.0 Mailbox temporarily unavailable")
    send(sender_client, to=BOB)
    deliver()
    failed = Notification.objects.get(kind="password")
    assert (failed.status, failed.attempts) == ("pending", 1)
    assert "451 4.3.0 Mailbox temporarily unavailable" in failed.last_error
    assert not failed.waiting_for_relay  # this address's trouble, not the relay's
    page = _status_page(sender_client)
    assert "Pending" in page and "retrying after: 451" in page
    # The message's notification waits behind the password e-mail it needs.
    assert not smtp.to(BOB)
    deliver()
    assert not smtp.to(BOB)  # not due for an hour
    _due_now()
    deliver()
    assert [m.subject for m in smtp.to(BOB)] == [PASSWORD_SUBJECT, MESSAGE_SUBJECT]
    assert "Notified" in _status_page(sender_client)


def test_the_log_says_what_became_of_each_attempt(sender_client, smtp, deliver, settings, caplog):
    """An operator reading the worker's log sees failures as failures: retrying, or for good."""
    settings.NOTIFY_RETRY_SCHEDULE = [3600]
    caplog.set_level(logging.INFO, logger="hushpost.notifications.delivery")
    smtp.refuse_next("451 4.3.0 Mailbox temporarily unavailable", "550 5.1.1 No such user here")
    send(sender_client, to=BOB)
    send(sender_client, to=CAROL)
    deliver()
    lines = {(r.levelname, r.getMessage()) for r in caplog.records if r.name.endswith("delivery")}
    password_bob, password_carol = Notification.objects.filter(kind="password").order_by("pk")
    assert ("WARNING", f"notification {password_bob.pk} (password) not sent, attempt 1: "
            "451 4.3.0 Mailbox temporarily unavailable; retrying in 3600 s") in lines
    assert ("ERROR", f"notification {password_carol.pk} (password) not sent, attempt 1: "
            "550 5.1.1 No such user here; failed for good") in lines
    sent = {m for level, m in lines if level == "INFO" and m.endswith(" sent, attempt 1")}
    assert sent == {f"notification {n.pk} (message) sent, attempt 1"
                    for n in Notification.objects.filter(status="sent")}


def test_relay_down_keeps_notifications_pending_and_they_go_when_it_answers(
    sender_client, smtp, deliver, probe_now, settings
):
    settings.NOTIFY_RETRY_SCHEDULE = [3600]
    smtp.stop()
    send(sender_client, to=BOB)
    deliver()
    note = Notification.objects.get(kind="password")
    assert (note.status, note.attempts, note.waiting_for_relay) == ("pending", 1, True)
    assert "refused the connection" in note.last_error
    # One failed connection is enough: the next e-mail was not tried against a dead relay.
    assert Notification.objects.get(kind="message").attempts == 0
    assert "Pending" in _status_page(sender_client)
    smtp.start()
    deliver()  # the retry is an hour away, but the relay answers: everything goes now
    assert [m.subject for m in smtp.to(BOB)] == [PASSWORD_SUBJECT, MESSAGE_SUBJECT]
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}


def test_permanent_refusal_is_shown_with_the_smtp_reply_and_can_be_retried(
    sender_client, smtp, deliver
):
    send(sender_client, to=BOB)
    smtp.refuse_next("550 5.1.1 No such user here")
    deliver()
    note = Notification.objects.get(kind="password")  # the first e-mail out
    assert note.status == "failed" and note.attempts == 1
    page = _status_page(sender_client)
    assert "Failed" in page and "550 5.1.1 No such user here" in page
    r = sender_client.post(f"/app/m/{Message.objects.get().uid}/retry/{note.pk}")
    assert r.status_code == 302
    deliver()
    note.refresh_from_db()
    assert note.status == "sent"
    # With the password e-mail failed for good, the message's went on its own.
    assert [m.subject for m in smtp.to(BOB)] == [MESSAGE_SUBJECT, PASSWORD_SUBJECT]
    assert "Notified" in _status_page(sender_client)


def test_retries_give_up_after_the_schedule(sender_client, smtp, deliver, fast_retries):
    smtp.refuse_next(*["452 4.2.2 Mailbox full"] * 10)
    send(sender_client, to=BOB)
    deliver()
    password = Notification.objects.get(kind="password")
    assert (password.status, password.attempts) == ("failed", 4)  # the first try and three retries
    # Once the password e-mail has failed for good, the message's goes on its own.
    assert Notification.objects.get(kind="message").attempts >= 1


def test_lost_tasks_do_not_strand_notifications(sender_client, smtp, deliver):
    send(sender_client, to=BOB)
    DBTaskResult.objects.all().delete()  # a worker died and took the queue's rows with it
    deliver()  # no new traffic: the worker's sweep finds them
    assert len(smtp.to(BOB)) == 2
    deliver()
    assert len(smtp.to(BOB)) == 2  # once each


def test_one_task_delivers_a_whole_batch(sender_client, smtp):
    from unittest import mock

    from hushpost.server import background

    for n in range(12):
        send(sender_client, to=f"r{n}@client.example")
    assert DBTaskResult.objects.filter(status="READY").count() == 24
    with mock.patch.object(background, "close_old_connections", lambda: None):
        BackgroundWorker(interval=0, batch=True, max_tasks=1, heartbeat=False).run()
    assert Notification.objects.filter(status="sent").count() == 24
    assert len(smtp.messages) == 24
    # Their own tasks were dropped with the batch: nothing left to run.
    assert DBTaskResult.objects.filter(status="READY").count() == 0


def test_a_batch_claimed_by_a_dead_worker_goes_once_its_lease_lapses(sender_client, smtp, deliver):
    send(sender_client, to=BOB)
    # Another worker claimed both e-mails and died before sending them.
    Notification.objects.update(lease_owner="dead:1:aa", lease_until=Now() + timedelta(minutes=1))
    send(sender_client, to="carol@client.example")
    deliver()
    assert smtp.to("carol@client.example") and not smtp.to(BOB)
    Notification.objects.filter(lease_owner="dead:1:aa").update(lease_until=Now() - timedelta(seconds=1))
    deliver()  # nothing new was sent: the lapsed claim alone brings them out
    assert [m.subject for m in smtp.to(BOB)] == [PASSWORD_SUBJECT, MESSAGE_SUBJECT]
    assert Notification.objects.exclude(status="sent").count() == 0


def test_leases_follow_the_database_clock_not_the_workers(sender_client, smtp, deliver):
    send(sender_client, to=BOB)
    Notification.objects.update(lease_owner="peer:1:aa", lease_until=Now() + timedelta(minutes=1))
    clock.travel(timedelta(minutes=10))  # this worker's clock runs ten minutes ahead
    deliver()
    assert not smtp.to(BOB)  # the peer's claim still holds by the database's clock


def test_an_email_another_worker_took_over_is_not_sent_again(sender_client, smtp):
    send(sender_client, to=BOB)
    [password, _] = delivery._claim("me:1:aa", 10)
    # Our lease lapsed (say the worker was paused) and a peer claimed it.
    Notification.objects.filter(pk=password.pk).update(lease_owner="peer:2:bb",
                                                       lease_until=Now() + timedelta(minutes=1))
    assert delivery.send(password, "me:1:aa") == "lost"
    assert not smtp.messages


def test_a_recipients_password_mail_always_goes_before_their_message_mail(sender_client, smtp, deliver):
    send(sender_client, to=BOB)
    password = Notification.objects.get(kind="password")
    # A peer is sending the Password Notification right now.
    Notification.objects.filter(pk=password.pk).update(lease_owner="peer:1:aa",
                                                       lease_until=Now() + timedelta(minutes=1))
    deliver()
    assert not smtp.to(BOB)  # the message's notification waits for it
    assert Notification.objects.get(kind="message").lease_owner == ""
    Notification.objects.filter(pk=password.pk).update(lease_until=Now() - timedelta(seconds=1))
    deliver()
    assert [m.subject for m in smtp.to(BOB)] == [PASSWORD_SUBJECT, MESSAGE_SUBJECT]


def test_an_email_sent_twice_after_a_crash_carries_the_same_working_password(
    sender_client, smtp, deliver, client_factory, org, monkeypatch
):
    send(sender_client, to=BOB)

    def dies(*args, **kwargs):
        raise SystemExit("killed after the relay accepted the e-mail")

    # The worker dies between the relay's 250 and the database's commit.
    with monkeypatch.context() as m:
        m.setattr(delivery, "_sent", dies)
        with pytest.raises(SystemExit):
            delivery.deliver_due()
    assert len(smtp.to(BOB, PASSWORD_SUBJECT)) == 1
    assert Notification.objects.get(kind="password").status == "pending"
    Notification.objects.update(lease_until=Now() - timedelta(seconds=1))  # its lease lapses
    deliver()
    first, second = smtp.to(BOB, PASSWORD_SUBJECT)
    assert first.temporary_password() == second.temporary_password()
    r = client_factory().post(f"/r/{org.slug}/login", {"email": BOB, "password": first.temporary_password()})
    assert r.status_code == 302  # signed in (a wrong password shows the form again)
    assert User.objects.get(email=BOB).temp_password_used_at is not None


def test_each_accepted_email_has_one_audit_event(sender_client, smtp, deliver):
    for n in range(3):
        send(sender_client, to=f"r{n}@client.example")
    smtp.refuse_next("550 5.1.1 No such user here")  # the first one fails for good
    deliver()
    sent = set(Notification.objects.filter(status="sent").values_list("key", flat=True))
    assert len(sent) == 5 == len(smtp.messages)
    events = list(AuditEvent.objects.filter(action=AuditEvent.Action.NOTIFICATION)
                  .values_list("object_id", flat=True))
    assert sorted(events) == sorted(str(k) for k in sent)


def test_temporary_passwords_use_a_keyed_fast_hash_that_still_checks(sender_client, smtp, deliver):
    send(sender_client, to=BOB)
    deliver()
    mail = smtp.to(BOB, PASSWORD_SUBJECT)[0]
    user = User.objects.get(email=BOB)
    assert user.password.startswith("hushpost_temporary$")
    assert mail.temporary_password() not in user.password
    assert user.check_password(mail.temporary_password())
    password = mail.temporary_password()
    assert not user.check_password(password[:-1] + ("y" if password.endswith("x") else "x"))
    # Nothing in the database gives the password without the deployment's secret key.
    note = Notification.objects.get(kind="password")
    from hushpost.accounts.passwords import temporary_password_for

    assert temporary_password_for(str(note.key), secret="another-deployment-key-0123456789") != \
        mail.temporary_password()
    assert re.fullmatch(r"[a-z2-9]{5}(-[a-z2-9]{5}){3}", mail.temporary_password())


def test_tasks_left_running_by_a_dead_worker_go_back_in_the_queue(sender_client, smtp):
    send(sender_client, to=BOB)
    tasks = list(DBTaskResult.objects.order_by("enqueued_at"))
    DBTaskResult.objects.filter(pk=tasks[0].pk).update(status="RUNNING", worker_ids=["dead:1:aa"])
    WorkerProcess.objects.create(worker_id="live:2:bb")
    DBTaskResult.objects.filter(pk=tasks[1].pk).update(status="RUNNING", worker_ids=["live:2:bb"])
    BackgroundWorker(interval=0, batch=True, heartbeat=False).reap()
    assert DBTaskResult.objects.get(pk=tasks[0].pk).status == "READY"
    assert DBTaskResult.objects.get(pk=tasks[1].pk).status == "RUNNING"  # its worker is alive


@pytest.mark.django_db(transaction=True)
def test_a_worker_is_alive_on_record_before_it_takes_its_first_task(sender_client, smtp, monkeypatch):
    """Two workers starting together: the second's reaping must find the first alive, or it
    hands the first one's task to someone else while it runs."""
    send(sender_client, to=BOB)
    on_record = []
    # On a busy machine the heartbeat thread may not have run yet when the first task is taken.
    monkeypatch.setattr(background._Heartbeat, "start", lambda self: None)
    monkeypatch.setattr(background._Heartbeat, "finish", lambda self: None)

    class Watched(BackgroundWorker):
        def next_task(self):
            if not on_record:
                on_record.append(WorkerProcess.objects.filter(worker_id=self.worker_id).exists())
            return super().next_task()

    Watched(interval=0, batch=True, heartbeat=True).run()
    assert on_record == [True]
    assert len(smtp.to(BOB)) == 2


@pytest.mark.django_db(transaction=True)  # as deployed: the worker runs in autocommit
def test_a_task_whose_row_went_while_it_ran_does_not_stop_the_worker(sender_client, smtp, deliver, monkeypatch):
    """A peer's batch sent the notification and dropped its queued task while this worker ran
    it: the worker goes on, and nothing is lost or sent twice."""
    send(sender_client, to=BOB)
    send_due = delivery.deliver_due

    def while_a_peer_drops_the_tasks(*args, **kwargs):
        DBTaskResult.objects.all().delete()
        return send_due(*args, **kwargs)

    monkeypatch.setattr(delivery, "deliver_due", while_a_peer_drops_the_tasks)
    deliver()  # returns: the worker did not stop on the missing row
    assert len(smtp.to(BOB)) == 2
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}


def test_a_stopped_worker_finds_its_queue_intact(sender_client, smtp, deliver):
    send(sender_client, to=BOB)
    clock.travel(timedelta(hours=2))  # the worker was stopped for a while: late, not lost
    deliver()
    assert len(smtp.to(BOB)) == 2


def test_a_relay_down_longer_than_the_whole_schedule_fails_the_notification(
    sender_client, smtp, deliver, probe_now, settings
):
    settings.NOTIFY_RETRY_SCHEDULE = [30, 30]
    smtp.stop()
    send(sender_client, to=BOB)
    for _ in range(5):  # asked again and again as the relay seems to come and go
        deliver()
        _due_now()
    assert Notification.objects.get(kind="password").status == "pending"  # attempts alone don't end it
    clock.travel(timedelta(minutes=2))  # longer than the schedule's 60 s in all
    deliver()
    note = Notification.objects.get(kind="password")
    assert note.status == "failed" and "refused the connection" in note.last_error
    assert "Failed" in _status_page(sender_client)
