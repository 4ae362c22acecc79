"""Reminders and resending: telling an addressee again about a message they have not opened.

An organisation's policy (``Organization.remind_after_days``, ``remind_times``,
``remind_tells_sender``) has the worker remind each addressee who has not opened a
message that many days after it was sent, and as long again after each reminder, at
most that many times. The periodic job ``reminders`` (``server/background.py``) runs
:func:`remind_all` under its lease; what is due is judged by the database's clock.

Each reminder is taken with one conditional UPDATE of its delivery (only while its
count is still what was read, and it is still unopened, not recalled, not deleted),
in the transaction that queues its e-mail and records it in the audit trail (the sender's note
is queued once the relay has taken the reminder, ``emails.py``): two
workers that somehow ran at once, or a run cut off by a crash, never remind twice,
and a crash before the commit leaves nothing half done.

Never for a message that has expired, was recalled or deleted, whose content was purged,
or for a disabled account: checked when it is due and again when the e-mail's turn comes.

A sender may also send a message's notification again by hand (:func:`resend`), once
per addressee every ``RESEND_MINUTES``, under the same rules.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Now

from hushpost.accounts.models import User
from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock
from hushpost.lib.refusals import Refused
from hushpost.messaging.models import Delivery, Message
from hushpost.notifications.actions import queue_notification
from hushpost.notifications.models import Notification
from hushpost.orgs.models import Organization

log = logging.getLogger("hushpost.reminders")

BATCH = 50
# A sender's Resend notification goes at most once per addressee in this long.
RESEND_MINUTES = 5
# However often the sender asks, one addressee gets at most this many notifications of a message by hand.
MAX_RESENDS = 5
REMINDER = Notification.Kind.REMINDER


def database_now(org: Organization) -> datetime:
    """The database's clock (the one the job's lease is judged by), moved as tests travel."""
    return clock.moved(Organization.objects.filter(pk=org.pk).annotate(db_now=Now())
                       .values_list("db_now", flat=True).get())


def _unopened(deliveries):
    """Deliveries neither opened, recalled nor deleted: conditions on the delivery's own row, so that an
    UPDATE filtered by them is re-checked against a row a concurrent UPDATE just committed (PostgreSQL
    re-checks the target row, not a joined table or a subquery)."""
    return deliveries.filter(first_opened_at__isnull=True, recalled_at__isnull=True, deleted_at__isnull=True)


def _live(deliveries, now: datetime):
    """Deliveries a notification about may still go for: unopened, not recalled or deleted, their message
    neither expired nor purged, their addressee's account enabled."""
    return _unopened(deliveries).filter(message__purged_at__isnull=True, recipient__is_active=True).filter(
        Q(message__expires_at__isnull=True) | Q(message__expires_at__gt=now))


def due(org: Organization, now: datetime):
    """The organisation's deliveries due a reminder at ``now``, oldest first."""
    days = org.remind_after_days
    if not days:
        return Delivery.objects.none()
    since = now - timedelta(days=days)
    notified = Notification.objects.filter(delivery=OuterRef("pk"), kind=Notification.Kind.MESSAGE,
                                           status=Notification.Status.SENT)
    return _live(Delivery.objects.filter(message__org=org, message__kind=Message.Kind.MESSAGE,
                                         reminders_sent__lt=org.remind_times), now).filter(
        Q(last_reminded_at__isnull=True, message__created_at__lte=since) | Q(last_reminded_at__lte=since),
        Exists(notified),  # the message's own notification went first
    ).order_by("id")


@dataclass
class Outcome:
    org: Organization
    reminded: int = 0
    stopped: bool = False

    def line(self) -> str:
        return f"{self.org.slug}: {self.reminded} reminded" + ("; stopped" if self.stopped else "")


def remind_org(org: Organization, *, still_ours: Callable[[], bool] | None = None) -> Outcome:
    """Remind every addressee of ``org`` due one now, a batch at a time; ``still_ours`` is asked
    before each batch (False: stop, another worker goes on from here)."""
    outcome, now = Outcome(org), database_now(org)
    while True:
        batch = list(due(org, now).select_related("message", "message__author", "recipient")[:BATCH])
        if not batch:
            return outcome
        if still_ours is not None and not still_ours():
            outcome.stopped = True
            return outcome
        reminded = sum(_remind(org, delivery, now) for delivery in batch)
        outcome.reminded += reminded
        if not reminded:  # every one taken meanwhile by someone else: nothing more for this run
            return outcome


def remind_all(*, still_ours: Callable[[], bool] | None = None) -> list[Outcome]:
    """Every organisation whose policy reminds (the worker's periodic job)."""
    outcomes = []
    for org in Organization.objects.filter(is_active=True, remind_after_days__isnull=False).order_by("pk"):
        outcome = remind_org(org, still_ours=still_ours)
        outcomes.append(outcome)
        if outcome.stopped:
            break
    return outcomes


def _remind(org: Organization, delivery: Delivery, now: datetime) -> bool:
    """One reminder: taken only if no one took it since ``delivery`` was read; False if someone did."""
    with transaction.atomic():
        # Only while the count is still the one read: of two runs that read it, one takes the reminder.
        taken = _unopened(Delivery.objects.filter(pk=delivery.pk, reminders_sent=delivery.reminders_sent)).update(
            reminders_sent=F("reminders_sent") + 1, last_reminded_at=now)
        if not taken:
            return False
        queue_notification(REMINDER, delivery.recipient, delivery=delivery)  # its sender hears once it went
        record(AuditEvent.Action.REMINDER, org=org, client="worker", obj=delivery.message,
               detail=f"to {delivery.recipient.email}, {delivery.reminders_sent + 1} of {org.remind_times}")
    return True


def still_wanted(delivery: Delivery) -> bool:
    """Whether an e-mail about ``delivery`` should still go now that its turn has come."""
    return _live(Delivery.objects.filter(pk=delivery.pk), clock.now()).exists()


def can_resend(delivery: Delivery, message: Message) -> bool:
    """Whether the message page offers Resend notification for ``delivery`` (the view checks again)."""
    return (delivery.first_opened_at is None and delivery.recalled_at is None and delivery.deleted_at is None
            and delivery.replaced_at is None and delivery.resends < MAX_RESENDS
            and message.purged_at is None and not message.is_expired and message.kind == Message.Kind.MESSAGE)


def resend(message: Message, recipient_id: int, *, by: User, request=None) -> Delivery:
    """Send the message's notification again to one addressee, now; ``message`` is one ``by`` wrote
    (loaded through the access gate). Refused, saying why, when it may not go."""
    delivery = Delivery.objects.filter(message=message, recipient_id=recipient_id).select_related("recipient").first()
    if delivery is None:
        raise Refused("Choose a recipient of this message.")
    if message.purged_at is not None:
        raise Refused("The message's content was removed under the retention policy: there is nothing to read.")
    if message.is_expired:
        raise Refused("The message has expired: change its expiry first to notify anyone again.")
    if delivery.recalled_at is not None:
        raise Refused(f"The message was recalled for {delivery.recipient.email}.")
    if delivery.first_opened_at is not None:
        raise Refused(f"{delivery.recipient.email} has already opened the message.")
    if delivery.deleted_at is not None or not delivery.recipient.is_active:
        raise Refused(f"{delivery.recipient.email} can no longer be notified of this message.")
    if delivery.replaced_at is not None:
        raise Refused(f"{delivery.recipient.email} bounced and the message went to a corrected address instead.")
    if delivery.resends >= MAX_RESENDS:
        raise Refused(f"The notification was already sent again {MAX_RESENDS} times to {delivery.recipient.email}: "
                      "ask them by phone whether it arrives, or check the address.")
    now = clock.now()
    with transaction.atomic():
        # The throttle is the UPDATE's own condition: of a double click's two requests, one sends.
        taken = _unopened(Delivery.objects.filter(pk=delivery.pk, resends__lt=MAX_RESENDS)).filter(
            Q(last_resent_at__isnull=True) | Q(last_resent_at__lte=now - timedelta(minutes=RESEND_MINUTES))
        ).update(resends=F("resends") + 1, last_resent_at=now)
        if not taken:
            raise Refused(f"A notification went to {delivery.recipient.email} moments ago: "
                          f"it can be sent again {RESEND_MINUTES} minutes after the last one.")
        queue_notification(Notification.Kind.MESSAGE, delivery.recipient, delivery=delivery)
        record(AuditEvent.Action.RESEND, actor=by, request=request, org=message.org, obj=message,
               detail=f"to {delivery.recipient.email}")
    delivery.refresh_from_db()
    return delivery
