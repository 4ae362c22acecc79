"""Queueing notifications and delivering them with retries."""

from __future__ import annotations

import logging
import smtplib
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.mail import get_connection
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from hushpost.accounts.flows import (
    activate_temporary_password,
    new_temporary_password,
    password_notification_wanted,
)
from hushpost.lib import clock
from hushpost.notifications.emails import build_email
from hushpost.notifications.models import Notification

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)


def queue_notification(kind: str, user, *, delivery=None) -> Notification:
    """Record an e-mail owed and enqueue its delivery; call inside the causing transaction."""
    from hushpost.notifications.tasks import deliver_notification

    # The task is created first, under the notification's own key, so the row
    # can record its task without a second write.
    key = uuid.uuid4()
    task = deliver_notification.enqueue(str(key))
    return Notification.objects.create(
        key=key, task_id=str(task.id), org_id=user.org_id, kind=kind, user=user, delivery=delivery
    )


def _enqueue(notification_pk: int, key, *, delay: timedelta | None = None, **fields) -> None:
    """A new task for an existing notification, recorded on its row (inside a transaction)."""
    from hushpost.notifications.tasks import deliver_notification

    task = deliver_notification
    if delay is not None:
        task = task.using(run_after=timezone.now() + delay)
    result = task.enqueue(str(key))
    Notification.objects.filter(pk=notification_pk).update(task_id=str(result.id), **fields)


def retry_now(notification: Notification) -> None:
    """Put a failed notification back in the queue (the sender's Retry button)."""
    with transaction.atomic():
        updated = Notification.objects.filter(
            pk=notification.pk, status=Notification.Status.FAILED
        ).update(status=Notification.Status.PENDING, attempts=0, next_attempt_at=clock.now())
        if updated:
            _enqueue(notification.pk, notification.key)


def _describe(exc: BaseException) -> tuple[bool, str]:
    """(permanent?, what the SMTP server said) for a failed send."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(exc.recipients.values()))
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        return code >= 500, f"{code} {text}"
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        return exc.smtp_code >= 500, f"{exc.smtp_code} {text}"
    if isinstance(exc, ConnectionRefusedError):
        return False, "mail server refused the connection"
    if isinstance(exc, TimeoutError):
        return False, "mail server did not answer in time"
    return False, f"{type(exc).__name__}: {exc}"[:300]


class _Connection:
    """One SMTP connection per worker process, reused across notifications."""

    def __init__(self) -> None:
        self.conn = None

    def send(self, email) -> None:
        for attempt in (1, 2):
            fresh = self.conn is None
            if fresh:
                self.conn = get_connection(fail_silently=False)
                self.conn.open()
            try:
                self.conn.send_messages([email])
                return
            except smtplib.SMTPServerDisconnected:
                self.close()
                if fresh or attempt == 2:
                    raise
            except Exception:
                self.close()
                raise

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: S110 - already broken, nothing to save
                pass
            self.conn = None


connection = _Connection()


BATCH = 50


def _load(filter_) -> list[Notification]:
    return list(
        Notification.objects.filter(filter_)
        .select_related("org", "user", "delivery__message__author", "delivery__recipient")
        # An e-mail needs names and addresses, never the ciphertext (up to a
        # megabyte per message) or anyone's password hash.
        .defer(
            "delivery__message__subject_ct", "delivery__message__body_ct",
            "delivery__message__wrapped_key", "delivery__message__author__password",
            "delivery__recipient__password",
        )
        .order_by("id")
    )


def deliver(key: str) -> str:
    """Send the notification ``key`` and, over the same connection, other due
    ones: up to :data:`BATCH` per task. Returns the status of ``key``'s."""
    now = clock.now()
    claimed = (
        Notification.objects.filter(key=key, status=Notification.Status.PENDING)
        .exclude(lease_until__gt=now)
        .update(lease_until=now + LEASE)
    )
    status = "skipped"
    sent: list[Notification] = []
    try:
        if claimed:
            [own] = _load(Q(key=key))
            status = _send(own, sent)
        for other in _claim_due(BATCH - 1):
            _send(other, sent)
    finally:
        _audit_sent(sent)
    return status


def _audit_sent(sent: list[Notification]) -> None:
    """One audit event per e-mail accepted, appended for the whole batch at once.

    The notification row itself records each e-mail as sent the moment the
    server accepts it; its audit event joins the chain when the batch ends.
    """
    from hushpost.audit.actions import record_many
    from hushpost.audit.models import AuditEvent

    record_many([
        {"action": AuditEvent.Action.NOTIFICATION, "org": n.org, "actor_email": n.user.email, "client": "worker",
         "object_type": "notification", "object_id": str(n.key), "detail": n.get_kind_display()}
        for n in sent
    ])


def _claim_due(limit: int) -> list[Notification]:
    """Claim due notifications and drop their own queued tasks: this task sends them.

    Rows another worker holds are skipped, not waited for. A notification
    claimed here and then lost with its worker is picked up again by any later
    batch once its lease runs out.
    """
    from django_tasks import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    now = clock.now()
    with transaction.atomic():
        due = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(status=Notification.Status.PENDING, next_attempt_at__lte=now)
            .exclude(lease_until__gt=now)
            .order_by("next_attempt_at", "id")
            .values_list("pk", "task_id")[:limit]
        )
        if not due:
            return []
        ids = [pk for pk, _ in due]
        Notification.objects.filter(pk__in=ids).update(lease_until=now + LEASE)
        DBTaskResult.objects.filter(
            id__in=[task for _, task in due if task], status=TaskResultStatus.READY
        ).delete()
    return _load(Q(pk__in=ids))


def _send(notification: Notification, sent: list | None = None) -> str:
    """Send one claimed notification and record the outcome."""
    temporary_password = password_hash = ""
    if notification.kind == Notification.Kind.PASSWORD:
        if not _password_mail_wanted(notification):
            Notification.objects.filter(pk=notification.pk).update(
                status=Notification.Status.CANCELLED, lease_until=None
            )
            return Notification.Status.CANCELLED
        # Generated as the e-mail is written: the plaintext never reaches the
        # database or the task queue, only the recipient's mailbox.
        temporary_password, password_hash = new_temporary_password()

    try:
        email = build_email(notification, temporary_password=temporary_password)
        connection.send(email)
    except Exception as exc:
        permanent, reason = _describe(exc)
        log.warning("notification %s attempt failed: %s", notification.pk, reason)
        schedule = settings.NOTIFY_RETRY_SCHEDULE
        attempts = notification.attempts + 1
        fields = {"attempts": attempts, "last_error": reason[:500], "lease_until": None}
        if permanent or attempts > len(schedule):
            fields["status"] = Notification.Status.FAILED
            Notification.objects.filter(pk=notification.pk).update(**fields)
            return Notification.Status.FAILED
        delay = timedelta(seconds=schedule[attempts - 1])
        with transaction.atomic():
            _enqueue(notification.pk, notification.key, delay=delay,
                     next_attempt_at=clock.now() + delay, **fields)
        return Notification.Status.PENDING

    if password_hash:
        activate_temporary_password(
            notification.user_id, password_hash, since=notification.created_at
        )
    Notification.objects.filter(pk=notification.pk).update(
        status=Notification.Status.SENT,
        attempts=notification.attempts + 1,
        sent_at=clock.now(),
        lease_until=None,
        last_error="",
        smtp_message_id=email.extra_headers.get("Message-ID", "")[:255],
    )
    if sent is not None:
        sent.append(notification)
    return Notification.Status.SENT


def _password_mail_wanted(notification: Notification) -> bool:
    user = notification.user
    user.refresh_from_db()
    newer = Notification.objects.filter(
        user=user, kind=Notification.Kind.PASSWORD, pk__gt=notification.pk
    ).exclude(status=Notification.Status.CANCELLED)
    return password_notification_wanted(user, since=notification.created_at) and not newer.exists()


def requeue_overdue() -> int:
    """Enqueue pending notifications whose task was lost (a worker killed mid-send).

    Safe to call at any time: delivery claims a notification before sending,
    so an extra task for it does nothing.
    """
    from django_tasks import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    overdue = list(
        Notification.objects.filter(
            status=Notification.Status.PENDING, next_attempt_at__lt=clock.now() - LEASE
        )
        .exclude(lease_until__gt=clock.now())
        .values_list("pk", "key", "task_id")[:10_000]
    )
    # A notification whose task is still waiting or running is not lost, only late.
    live = {
        str(task)
        for task in DBTaskResult.objects.filter(
            id__in=[task for _, _, task in overdue if task],
            status__in=[TaskResultStatus.READY, TaskResultStatus.RUNNING],
        ).values_list("id", flat=True)
    }
    count = 0
    with transaction.atomic():
        for pk, key, task in overdue:
            if task not in live:
                _enqueue(pk, key)
                count += 1
    return count
