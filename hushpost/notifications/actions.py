"""Queueing notifications and delivering them with retries."""

from __future__ import annotations

import logging
import smtplib
from datetime import timedelta

from django.conf import settings
from django.core.mail import get_connection
from django.db import transaction
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

    notification = Notification.objects.create(
        org_id=user.org_id, kind=kind, user=user, delivery=delivery
    )
    deliver_notification.enqueue(notification.pk)
    return notification


def retry_now(notification: Notification) -> None:
    """Put a failed notification back in the queue (the sender's Retry button)."""
    from hushpost.notifications.tasks import deliver_notification

    with transaction.atomic():
        updated = Notification.objects.filter(
            pk=notification.pk, status=Notification.Status.FAILED
        ).update(status=Notification.Status.PENDING, attempts=0, next_attempt_at=clock.now())
        if updated:
            deliver_notification.enqueue(notification.pk)


class TemporaryFailure(Exception):
    pass


class PermanentFailure(Exception):
    pass


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


def deliver(notification_id: int) -> str:
    """Send one notification; returns its status afterwards."""
    from hushpost.notifications.tasks import deliver_notification

    now = clock.now()
    claimed = (
        Notification.objects.filter(pk=notification_id, status=Notification.Status.PENDING)
        .exclude(lease_until__gt=now)
        .update(lease_until=now + LEASE)
    )
    if not claimed:
        return "skipped"
    notification = (
        Notification.objects.select_related(
            "org", "user", "delivery__message__author", "delivery__recipient"
        )
        # An e-mail needs names and addresses, never the ciphertext (up to a
        # megabyte per message) or anyone's password hash.
        .defer(
            "delivery__message__subject_ct", "delivery__message__body_ct",
            "delivery__message__wrapped_key", "delivery__message__author__password",
            "delivery__recipient__password",
        )
        .get(pk=notification_id)
    )

    temporary_password = password_hash = ""
    if notification.kind == Notification.Kind.PASSWORD:
        if not _password_mail_wanted(notification):
            Notification.objects.filter(pk=notification_id).update(
                status=Notification.Status.CANCELLED, lease_until=None
            )
            return Notification.Status.CANCELLED
        # Generated as the e-mail is written: the plaintext never reaches the
        # database or the task queue, only the recipient's mailbox.
        temporary_password, password_hash = new_temporary_password()
    email = build_email(notification, temporary_password=temporary_password)

    try:
        connection.send(email)
    except Exception as exc:
        permanent, reason = _describe(exc)
        log.warning("notification %s attempt failed: %s", notification_id, reason)
        schedule = settings.NOTIFY_RETRY_SCHEDULE
        with transaction.atomic():
            attempts = notification.attempts + 1
            fields = {"attempts": attempts, "last_error": reason[:500], "lease_until": None}
            if permanent or attempts > len(schedule):
                fields["status"] = Notification.Status.FAILED
            else:
                delay = timedelta(seconds=schedule[attempts - 1])
                fields["next_attempt_at"] = clock.now() + delay
                deliver_notification.using(run_after=timezone.now() + delay).enqueue(notification_id)
            Notification.objects.filter(pk=notification_id).update(**fields)
        return fields.get("status", Notification.Status.PENDING)

    if password_hash:
        activate_temporary_password(
            notification.user_id, password_hash, since=notification.created_at
        )
    Notification.objects.filter(pk=notification_id).update(
        status=Notification.Status.SENT,
        attempts=notification.attempts + 1,
        sent_at=clock.now(),
        lease_until=None,
        last_error="",
        smtp_message_id=email.extra_headers.get("Message-ID", "")[:255],
    )
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
    from hushpost.notifications.tasks import deliver_notification

    overdue = Notification.objects.filter(
        status=Notification.Status.PENDING, next_attempt_at__lt=clock.now() - LEASE
    ).exclude(lease_until__gt=clock.now())
    count = 0
    with transaction.atomic():
        for pk in overdue.values_list("pk", flat=True)[:10_000]:
            deliver_notification.enqueue(pk)
            count += 1
    return count
