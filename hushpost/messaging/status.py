"""How a sent message is doing: per recipient (the message page) and in one line (the Sent list).

Both pages read these functions over the same rows, so the list can never say
"Notified" while the message page still says "Pending".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch

from hushpost.messaging.models import Delivery, Message
from hushpost.messaging.sql import deliveries_with_notifications
from hushpost.notifications.models import Notification


@dataclass(frozen=True)
class RecipientState:
    """What the sender needs to know about the e-mails telling one recipient, in one state.

    A new recipient gets two (password, then message); the worst one counts. Only
    e-mails to the recipient count: a read receipt hangs off the same delivery but
    goes to the sender, and reminders are counted apart. ``cancelled``: nothing was sent because the message was
    recalled first. ``bounced``: the relay took it, then the recipient's mail server
    reported it undeliverable (``problem.bounce_reason`` says why). ``note``: a sent
    e-mail's report of a delay.
    """

    status: str  # "pending", "sent", "failed", "bounced" or "cancelled"
    sent_at: datetime | None = None
    problem: Notification | None = None
    note: str = ""

    @classmethod
    def of(cls, delivery: Delivery, notifications: list[Notification]) -> RecipientState:
        # A reminder is shown on its own (``Delivery.reminders_sent``): it never makes a notified recipient pending.
        mine = [n for n in notifications if n.user_id == delivery.recipient_id and n.kind != Notification.Kind.REMINDER]
        live = [n for n in mine if n.status != Notification.Status.CANCELLED]
        for n in live:
            if n.status == Notification.Status.BOUNCED:
                return cls("bounced", problem=n)
        for n in live:
            if n.status == Notification.Status.FAILED:
                return cls("failed", problem=n)
        for n in live:
            if n.status == Notification.Status.PENDING:
                return cls("pending", problem=n)
        if not live:
            return cls("cancelled" if mine else "pending")
        return cls("sent", sent_at=max(n.sent_at for n in live),
                   note=next((n.bounce_reason for n in reversed(live) if n.bounce_reason), ""))

    @property
    def retrying(self) -> bool:
        return self.status == "pending" and self.problem is not None and bool(self.problem.last_error)


@dataclass(frozen=True)
class Summary:
    label: str  # "Pending", "Notified", "Failed: 1 of 3", "Opened by 2 of 3", ...
    tone: str  # "wait", "ok", "bad" or "muted", as the message page's states


def notifications_of(deliveries: str = "") -> Prefetch:
    """Prefetch each delivery's notifications in the order they were queued
    (``deliveries``: the path to the deliveries, as "deliveries" from a message)."""
    path = f"{deliveries}__notifications" if deliveries else "notifications"
    return Prefetch(path, queryset=Notification.objects.order_by("id"))


def states_of_message(message: Message) -> list[tuple[Delivery, RecipientState]]:
    """Each delivery of ``message``, oldest first, with its state (the sender's page of it:
    each knows its recipient and the delivery that replaced it)."""
    return [(d, RecipientState.of(d, notes)) for d, notes in deliveries_with_notifications(message)]


def recipient_states(deliveries: Iterable[Delivery]) -> list[tuple[Delivery, RecipientState]]:
    """Each delivery with its state, from the notifications prefetched by ``notifications_of``."""
    return [(d, RecipientState.of(d, list(d.notifications.all()))) for d in deliveries]


def summarise(states: list[tuple[Delivery, RecipientState]]) -> Summary:
    """One line for the whole message: what needs the sender's attention first.

    Bounces and failures first, then e-mails still on their way, then who opened it. A
    recalled recipient is left out of the counts, as the message page sets that row apart,
    and so is a bounced address the sender replaced (its replacement counts instead).
    """
    live = [(d, s) for d, s in states if d.recalled_at is None and d.replaced_at is None]
    if not live:
        return Summary("Recalled", "muted")
    total = len(live)
    bounced = sum(1 for _, s in live if s.status == "bounced")
    if bounced:
        return Summary("Bounced" if bounced == total else f"Bounced: {bounced} of {total}", "bad")
    failed = sum(1 for _, s in live if s.status == "failed")
    if failed:
        return Summary("Failed" if failed == total else f"Failed: {failed} of {total}", "bad")
    pending = [s for _, s in live if s.status == "pending"]
    if pending:
        label = "Pending" if len(pending) == total else f"Pending: {len(pending)} of {total}"
        if any(s.retrying for s in pending):
            label += ", retrying"
        return Summary(label, "wait")
    opened = sum(1 for d, _ in live if d.first_opened_at)
    if opened:
        return Summary(f"Opened by {opened} of {total}", "ok")
    return Summary("Notified", "ok")
