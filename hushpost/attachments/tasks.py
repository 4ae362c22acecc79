from __future__ import annotations

from django.conf import settings
from django_tasks import task

from hushpost.attachments.cleanup import purge_stale_drafts


@task()
def purge_drafts() -> int:
    """Remove uploads nobody attached to a message in time (queued with each upload)."""
    return purge_stale_drafts(settings.UPLOAD_DRAFT_HOURS)
