"""The admin area's searches, from cleaned filters: messages (never by content) and audit events."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from hushpost.audit.models import AuditEvent
from hushpost.lib import clock
from hushpost.messaging.models import Message


def messages(org, data: dict) -> QuerySet:
    found = (Message.objects.filter(org=org, kind=Message.Kind.MESSAGE)
             .select_related("author").prefetch_related("deliveries__recipient").order_by("-created_at", "-id"))
    if data["sender"]:
        found = found.filter(author__email__icontains=data["sender"])
    if data["recipient"]:
        found = found.filter(deliveries__recipient__email__icontains=data["recipient"]).distinct()
    found = _days(found, "created_at", data)
    now = clock.now()
    if data["status"] == "recalled":
        found = found.filter(deliveries__recalled_at__isnull=False).distinct()
    elif data["status"] == "expired":
        found = found.filter(expires_at__lte=now)
    elif data["status"] == "active":
        found = found.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now)).exclude(
            deliveries__recalled_at__isnull=False)
    return found


def audit_events(org, data: dict) -> QuerySet:
    events = AuditEvent.objects.filter(org=org).order_by("-at", "-id")
    if data["actor"]:
        events = events.filter(actor_email__icontains=data["actor"])
    if data["action"]:
        events = events.filter(action=data["action"])
    return _days(events, "at", data)


def _days(found: QuerySet, field: str, data: dict) -> QuerySet:
    if data["since"]:
        found = found.filter(**{f"{field}__date__gte": data["since"]})
    if data["until"]:
        found = found.filter(**{f"{field}__date__lte": data["until"]})
    return found
