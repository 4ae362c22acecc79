from __future__ import annotations

from django_tasks import task

from hushpost.notifications.delivery import deliver


@task()
def deliver_notification(key: str) -> str:
    """Deliver the notification ``key`` (and other due ones, in one batch)."""
    return deliver(key)
