"""What an admin is shown: the next purge's messages and the holds, as metadata only.

The same facts as the admin area's Messages tab (date, sender, recipients),
never a subject or a body; shared by the admin page and ``hushpost retention show``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch
from django.utils.timezone import localtime

from hushpost.messaging.models import Delivery, Message
from hushpost.orgs.models import Organization
from hushpost.retention import plan as planning
from hushpost.retention.models import LegalHold

FIRST_ITEMS = 20


@dataclass
class Item:
    message: Message
    sender: str
    recipients: list[str]
    why: str


@dataclass
class Preview:
    count: int
    held: int
    items: list[Item]


def next_purge(org: Organization, *, first: int = FIRST_ITEMS) -> Preview:
    """How many messages the next purge would remove, how many a hold keeps, and the oldest ``first``."""
    found = planning.plan(org)
    shown = found.due[:first]
    deliveries = Prefetch("deliveries", queryset=Delivery.objects.select_related("recipient").order_by("pk"))
    messages = Message.objects.select_related("author").prefetch_related(deliveries).in_bulk(
        [d.message_id for d in shown])
    items = [Item(m, m.author.email, [d.recipient.email for d in m.deliveries.all()], d.why)
             for d in shown if (m := messages.get(d.message_id)) is not None]
    return Preview(len(found.due), found.held, items)


def active_holds(org: Organization):
    return (LegalHold.objects.filter(org=org, released_at__isnull=True)
            .select_related("account", "conversation__author", "created_by").order_by("-created_at", "-pk"))


def released_holds(org: Organization, limit: int = 20):
    return (LegalHold.objects.filter(org=org, released_at__isnull=False)
            .select_related("account", "conversation__author", "created_by", "released_by")
            .order_by("-released_at", "-pk")[:limit])


def what_is_held(hold: LegalHold) -> str:
    """One line naming what a hold keeps, without content."""
    if hold.conversation_id is not None:
        m = hold.conversation
        return f"Conversation from {m.author.email} sent {_day(m.created_at)}"
    return f"{hold.get_kind_display()} {hold.account.email}"


def _day(moment: datetime) -> str:
    return f"{localtime(moment):%-d %b %Y, %H:%M}"  # in the viewer's zone, like the page's other times
