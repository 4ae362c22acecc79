"""Notifications survive a refusing or absent SMTP server, and the sender sees why."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hushpost.lib import clock
from hushpost.messaging.models import Message
from hushpost.notifications.actions import requeue_overdue
from hushpost.notifications.models import Notification
from tests.helpers import MESSAGE_SUBJECT, PASSWORD_SUBJECT, send


@pytest.fixture
def fast_retries(settings):
    settings.NOTIFY_RETRY_SCHEDULE = [0, 0, 0]


def _status_page(client) -> str:
    return client.get(f"/app/m/{Message.objects.get().uid}").content.decode()


def test_temporary_refusal_is_retried_until_accepted(sender_client, smtp, deliver, settings):
    settings.NOTIFY_RETRY_SCHEDULE = [3600]
    smtp.refuse_next("451 4.3.0 Mailbox temporarily unavailable")
    send(sender_client, to="bob@client.example")
    deliver()
    failed = Notification.objects.get(status="pending", attempts=1)
    assert "451 4.3.0 Mailbox temporarily unavailable" in failed.last_error
    page = _status_page(sender_client)
    assert "Pending" in page and "retrying after: 451" in page
    # The retry is scheduled, not lost: once due, the worker sends it.
    deliver()
    assert Notification.objects.filter(status="pending").count() == 1
    from django_tasks_db.models import DBTaskResult

    DBTaskResult.objects.filter(status="READY").update(run_after=clock.now() - timedelta(seconds=1))
    deliver()
    assert Notification.objects.filter(status="sent").count() == 2
    assert len(smtp.to("bob@client.example")) == 2
    assert "Notified" in _status_page(sender_client)


def test_server_down_keeps_notifications_pending_then_delivers(
    sender_client, smtp, deliver, fast_retries
):
    smtp.stop()
    send(sender_client, to="bob@client.example")
    deliver()  # with no delay between retries, every attempt runs now, and fails
    notes = Notification.objects.all()
    assert [(n.status, n.attempts) for n in notes] == [("failed", 4), ("failed", 4)]
    assert all("refused the connection" in n.last_error for n in notes)
    assert "Failed" in _status_page(sender_client)
    smtp.start()
    for n in Notification.objects.filter(status="failed"):
        # The sender's Retry button puts a failed notification back in the queue.
        r = sender_client.post(f"/app/m/{Message.objects.get().uid}/retry/{n.pk}")
        assert r.status_code == 302
    deliver()
    assert smtp.to("bob@client.example", PASSWORD_SUBJECT)
    assert smtp.to("bob@client.example", MESSAGE_SUBJECT)


def requeue_overdue_now():
    clock.travel(timedelta(minutes=10))
    try:
        return requeue_overdue()
    finally:
        clock.travel(-timedelta(minutes=10))


def test_permanent_refusal_is_shown_with_the_smtp_reply_and_can_be_retried(
    sender_client, smtp, deliver
):
    send(sender_client, to="bob@client.example")
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
    assert smtp.to("bob@client.example", PASSWORD_SUBJECT)
    assert smtp.to("bob@client.example", MESSAGE_SUBJECT)
    assert "Notified" in _status_page(sender_client)


def test_retries_give_up_after_the_schedule(sender_client, smtp, deliver, fast_retries):
    smtp.refuse_next(*["421 4.7.0 Try again later"] * 10)
    send(sender_client, to="bob@client.example")
    deliver()
    notes = Notification.objects.all()
    assert {n.status for n in notes} == {"failed"}
    assert {n.attempts for n in notes} == {4}  # the first try and three retries


def test_lost_task_is_requeued_and_sent_once(sender_client, smtp, deliver):
    from django_tasks_db.models import DBTaskResult

    send(sender_client, to="bob@client.example")
    DBTaskResult.objects.all().delete()  # a worker died and took its tasks with it
    assert requeue_overdue() == 0  # not overdue yet
    assert requeue_overdue_now() == 2
    requeue_overdue_now()  # asked twice: still one e-mail each
    deliver()
    assert len(smtp.to("bob@client.example")) == 2


def _one_task():
    """The worker runs a single task, then stops."""
    from unittest import mock

    from django.core.management import call_command
    from django_tasks_db.management.commands import db_worker

    with mock.patch.object(db_worker, "close_old_connections", lambda: None):
        call_command("db_worker", batch=True, max_tasks=1, queue_name="*", reload=False,
                     startup_delay=False, verbosity=0)


def test_one_task_delivers_a_whole_batch(sender_client, smtp):
    from django_tasks_db.models import DBTaskResult

    for n in range(12):
        send(sender_client, to=f"r{n}@client.example")
    assert DBTaskResult.objects.filter(status="READY").count() == 24
    _one_task()
    assert Notification.objects.filter(status="sent").count() == 24
    assert len(smtp.messages) == 24
    # Their own tasks were dropped with the batch: nothing left to run.
    assert DBTaskResult.objects.filter(status="READY").count() == 0


def test_a_batch_lost_with_its_worker_is_sent_by_a_later_one(sender_client, smtp, deliver):
    from django_tasks_db.models import DBTaskResult

    send(sender_client, to="bob@client.example")
    # A worker claimed both e-mails, dropped their tasks, and died before sending.
    Notification.objects.update(lease_until=clock.now() + timedelta(minutes=5))
    DBTaskResult.objects.all().delete()
    send(sender_client, to="carol@client.example")
    deliver()
    assert smtp.to("carol@client.example") and not smtp.to("bob@client.example")
    clock.travel(timedelta(minutes=6))  # the dead worker's lease runs out
    send(sender_client, to="dan@client.example")
    deliver()
    assert len(smtp.to("bob@client.example")) == 2  # once each, not twice
    assert Notification.objects.exclude(status="sent").count() == 0


def test_a_stopped_worker_finds_its_queue_intact(sender_client, smtp, deliver):
    send(sender_client, to="bob@client.example")
    # The worker was stopped for a while: the tasks are late, not lost.
    assert requeue_overdue_now() == 0
    deliver()
    assert len(smtp.to("bob@client.example")) == 2
