"""Inbox and Sent lists: one page of rows, subjects decrypted for that page only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.core.paginator import Page, Paginator

from hushpost.accounts.models import User
from hushpost.messaging.content import open_subject
from hushpost.messaging.models import Delivery, Message
from hushpost.messaging.status import Summary, notifications_of, recipient_states, summarise
from hushpost.messaging.threads import WITHDRAWN_SUBJECT, withdrawn_from

PAGE_SIZE = 50
RECALLED = "This message was recalled by the sender"


@dataclass
class Row:
    message: Message
    subject: str
    when: datetime
    unread: bool = False
    people: str = ""
    # Sent rows: how the message is doing across its recipients.
    recipients: int = 0
    opened: int = 0
    replied: int = 0
    problem: bool = False
    # A sender's Sent rows: the message page's delivery states in one line.
    state: Summary | None = None


def inbox(user: User, page_number) -> tuple[Page, list[Row]]:
    deliveries = (
        Delivery.objects.filter(recipient=user, deleted_at__isnull=True)
        .select_related("message", "message__author")
        .order_by("-created_at", "-id")
    )
    page = Paginator(deliveries, PAGE_SIZE).get_page(page_number)
    withdrawn = withdrawn_from(user)
    rows = [
        Row(
            message=d.message,
            # A recalled message shows nothing of itself, not even its subject,
            # nor in the "Re:" of anything under it.
            subject=RECALLED if d.recalled_at else _subject(d.message, withdrawn),
            when=d.created_at,
            unread=d.first_opened_at is None and not d.recalled_at,
            people=d.message.author.display_name,
        )
        for d in page.object_list
    ]
    return page, rows


def sent(user: User, page_number, *, delivery_state: bool = False) -> tuple[Page, list[Row]]:
    """The user's sent messages; with ``delivery_state``, each with its summary from ``status``."""
    messages = (
        Message.objects.filter(author=user)
        .prefetch_related("deliveries__recipient", notifications_of("deliveries"))
        .order_by("-created_at", "-id")
    )
    page = Paginator(messages, PAGE_SIZE).get_page(page_number)
    withdrawn = withdrawn_from(user)  # a recipient's replies under a message recalled for them
    rows = []
    for m in page.object_list:
        deliveries = list(m.deliveries.all())
        rows.append(
            Row(
                message=m,
                subject=_subject(m, withdrawn),
                when=m.created_at,
                people=", ".join(d.recipient.display_name for d in deliveries),
                recipients=len(deliveries),
                opened=sum(1 for d in deliveries if d.first_opened_at),
                replied=sum(1 for d in deliveries if d.replied_at),
                problem=any(
                    n.status in ("failed", "bounced") for d in deliveries for n in d.notifications.all()
                    if d.replaced_at is None
                ),
                state=summarise(recipient_states(deliveries)) if delivery_state else None,
            )
        )
    return page, rows


def _subject(message: Message, withdrawn: set[int]) -> str:
    return WITHDRAWN_SUBJECT if message.pk in withdrawn else open_subject(message)
