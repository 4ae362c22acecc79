from __future__ import annotations

from django_tasks import task

from hushpost.notifications.actions import deliver


@task()
def deliver_notification(notification_id: int) -> str:
    return deliver(notification_id)
