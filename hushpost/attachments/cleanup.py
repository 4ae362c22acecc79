"""Removing files nobody sent: a draft the uploader discards, and drafts left too long."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction

from hushpost.accounts.models import User
from hushpost.attachments.models import Attachment
from hushpost.attachments.store import get_store
from hushpost.lib import clock


def _delete_draft(attachment: Attachment) -> bool:
    """Delete a draft row and its blob, unless it was sent in the meantime."""
    deleted, _ = Attachment.objects.filter(pk=attachment.pk, message__isnull=True).delete()
    if deleted:
        transaction.on_commit(lambda: get_store().delete(attachment.store_key))
    return bool(deleted)


def discard_draft(owner: User, uid: str) -> bool:
    attachment = Attachment.objects.filter(owner=owner, message__isnull=True, uid=uid).first()
    return attachment is not None and _delete_draft(attachment)


def purge_stale_drafts(hours: int) -> int:
    """Delete drafts nobody attached within ``hours``, and partial files a killed process left."""
    cutoff = clock.now() - timedelta(hours=hours)
    stale = list(Attachment.objects.filter(message__isnull=True, created_at__lt=cutoff)[:500])
    removed = sum(_delete_draft(a) for a in stale)
    get_store().sweep_partial(hours * 3600)
    return removed
