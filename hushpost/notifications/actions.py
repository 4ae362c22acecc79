"""Queueing notifications; :mod:`hushpost.notifications.delivery` sends them."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db import transaction
from django.db.models.functions import Now

from hushpost.lib import rows
from hushpost.notifications.models import Notification
from hushpost.notifications.tasks import deliver_notification


def queue_notification(kind: str, user, *, delivery=None) -> Notification:
    """Record an e-mail owed and enqueue the task that sends it; call inside the causing transaction.
    ``delivery``: the Delivery (a message for one addressee) the e-mail is about, if any."""
    return _queue(org_id=user.org_id, kind=kind, user=user, delivery=delivery)


def queue_email_to(address: str, kind: str, *, owed_since: datetime) -> Notification:
    """Record an e-mail owed to an address that may have no account here, so belongs to no
    organisation; ``owed_since``: when it was asked for. Call inside the causing transaction."""
    return _queue(kind=kind, address=address, created_at=owed_since)


def _queue(**fields) -> Notification:
    # The task is created first, under the notification's own key, so the row
    # can record its task without a second write.
    key = uuid.uuid4()
    task = deliver_notification.enqueue(str(key))
    notification = Notification(key=key, task_id=str(task.id), **fields)
    rows.insert(notification)
    return notification


def retry_now(notification: Notification) -> None:
    """Put a failed notification back in the queue (the sender's Retry button)."""
    with transaction.atomic():
        updated = Notification.objects.filter(
            pk=notification.pk, status=Notification.Status.FAILED
        ).update(status=Notification.Status.PENDING, attempts=0, next_attempt_at=Now(),
                 waiting_for_relay=False)
        if updated:
            task = deliver_notification.enqueue(str(notification.key))
            Notification.objects.filter(pk=notification.pk).update(task_id=str(task.id))
