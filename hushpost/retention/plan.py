"""Which messages the next purge removes, and why; which ones a legal hold keeps.

Worked out per organisation from its messages' dates alone, never their content:
one query for the messages and one for their deliveries' dates, then the
conversations are put together here. That is a pass over the organisation's
messages per run, which an hourly job can afford, and keeps the rules readable
in one place. A hold on anyone or anything in a conversation keeps the whole
conversation: what a reply means depends on what it answers. A hold on a person
keeps everything under their address, whichever of their accounts (sender or
recipient) wrote or received it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Max, Q
from django.db.models.functions import Now
from django.utils.timezone import localtime

from hushpost.accounts.models import User
from hushpost.lib import clock
from hushpost.messaging.models import Delivery, Message
from hushpost.orgs.models import Organization
from hushpost.retention.models import LegalHold, RetentionPolicy


@dataclass(frozen=True)
class Due:
    message_id: int
    why: str
    since: datetime


@dataclass
class Plan:
    policy: RetentionPolicy
    due: list[Due] = field(default_factory=list)
    kept: set[int] = field(default_factory=set)  # messages that would be due but for a hold

    @property
    def held(self) -> int:
        return len(self.kept)


@dataclass
class _Row:
    id: int
    parent: int | None
    author: int
    created_at: datetime
    expires_at: datetime | None
    purged: bool
    deliveries: int = 0
    live: int = 0
    last_deleted: datetime | None = None
    last_activity: datetime | None = None


def policy_of(org: Organization) -> RetentionPolicy:
    """The organisation's policy; an unsaved, empty one (purging nothing) until an admin sets it."""
    return RetentionPolicy.objects.filter(org=org).first() or RetentionPolicy(org=org)


def database_now(org: Organization) -> datetime:
    """The database's clock, by which the purge's lease is judged too (``server.periodic``):
    a machine whose own clock runs ahead must not find content due before it is."""
    return clock.moved(Organization.objects.filter(pk=org.pk).annotate(db_now=Now())
                       .values_list("db_now", flat=True).get())


def plan(org: Organization, *, now: datetime | None = None, policy: RetentionPolicy | None = None) -> Plan:
    """What a purge of ``org`` would remove at ``now`` (the database's clock by default) under
    ``policy`` (the organisation's as saved, by default), oldest first."""
    policy = policy or policy_of(org)
    result = Plan(policy)
    if not policy.is_on:
        return result
    now = now or database_now(org)
    rows = _rows(org)
    roots = _roots(rows)
    last = _conversation_activity(rows, roots)
    held = held_messages(org, rows, roots)
    for row in rows.values():
        if row.purged:
            continue
        why = _why_due(policy, row, last[roots[row.id]], now)
        if why is None:
            continue
        if row.id in held:
            result.kept.add(row.id)
        else:
            result.due.append(Due(row.id, *why))
    result.due.sort(key=lambda d: (d.since, d.message_id))
    return result


def _why_due(policy: RetentionPolicy, row: _Row, conversation_last: datetime,
             now: datetime) -> tuple[str, datetime] | None:
    def passed(moment: datetime | None, days: int | None) -> bool:
        return moment is not None and days is not None and moment + timedelta(days=days) <= now

    if passed(row.expires_at, policy.after_expiry_days):
        return f"expired {localtime(row.expires_at):%-d %b %Y}", row.expires_at
    if row.deliveries and not row.live and passed(row.last_deleted, policy.after_deletion_days):
        return f"deleted by every recipient by {localtime(row.last_deleted):%-d %b %Y}", row.last_deleted
    if passed(conversation_last, policy.after_activity_days):
        return f"no activity in its conversation since {localtime(conversation_last):%-d %b %Y}", conversation_last
    return None


def _rows(org: Organization) -> dict[int, _Row]:
    """Every message of ``org`` not purged yet, with its deliveries' dates; purged ones
    as bare links, so conversations still join up through them."""
    rows = {
        pk: _Row(pk, parent, author, created, expires, purged is not None)
        for pk, parent, author, created, expires, purged in Message.objects.filter(org=org).order_by("pk")
        .values_list("pk", "in_reply_to_id", "author_id", "created_at", "expires_at", "purged_at")
    }
    dates = (Delivery.objects.filter(message__org=org).values("message_id")
             .annotate(n=Count("pk"), live=Count("pk", filter=Q(deleted_at__isnull=True)),
                       deleted=Max("deleted_at"), opened=Max("first_opened_at"), replied=Max("replied_at")))
    for d in dates:
        row = rows.get(d["message_id"])
        if row is None:
            continue
        row.deliveries, row.live, row.last_deleted = d["n"], d["live"], d["deleted"]
        row.last_activity = max((t for t in (d["deleted"], d["opened"], d["replied"]) if t), default=None)
    return rows


def _roots(rows: dict[int, _Row]) -> dict[int, int]:
    """Each message's conversation, named by its first message, however long the conversation.

    A reply is always written after what it answers, so its parent has the lower pk: taken in
    pk order, every parent's conversation is known before its replies are reached, and each
    message is looked at once. A parent that is not lower (which sending never makes) starts
    a conversation of its own rather than risking a loop."""
    roots: dict[int, int] = {}
    for pk in sorted(rows):
        parent = rows[pk].parent
        roots[pk] = roots[parent] if parent is not None and parent < pk and parent in roots else pk
    return roots


def _conversation_activity(rows: dict[int, _Row], roots: dict[int, int]) -> dict[int, datetime]:
    """The latest of every message sent, opened, replied to or deleted in each conversation."""
    last: dict[int, datetime] = {}
    for row in rows.values():
        moment = max(t for t in (row.created_at, row.last_activity) if t)
        top = roots[row.id]
        if top not in last or moment > last[top]:
            last[top] = moment
    return last


def held_messages(org: Organization, rows: dict[int, _Row] | None = None,
                  roots: dict[int, int] | None = None) -> set[int]:
    """Every message of ``org`` an active hold keeps: held conversations, and whole
    conversations that a held person wrote or received anything in (To, Cc or Bcc).

    A sender or recipient hold names one account, but a person may have two in the
    organisation (accounts are per role: alice@ writes to clients as a sender and
    colleagues write to her as a recipient), so it holds every account with that address."""
    holds = list(LegalHold.objects.filter(org=org, released_at__isnull=True).values_list(
        "kind", "account_id", "conversation_id"))
    if not holds:
        return set()
    if rows is None or roots is None:
        rows = _rows(org)
        roots = _roots(rows)
    named = {account for _, account, _ in holds if account is not None}
    seeds = {conversation for _, _, conversation in holds if conversation is not None}
    if named:
        addresses = User.objects.filter(pk__in=named).values("email")
        accounts = set(User.objects.filter(org=org, email__in=addresses).values_list("pk", flat=True))
        seeds |= {row.id for row in rows.values() if row.author in accounts}
        seeds |= set(Delivery.objects.filter(message__org=org, recipient_id__in=accounts)
                     .values_list("message_id", flat=True))
    held_roots = {roots[pk] for pk in seeds if pk in roots}
    return {pk for pk, top in roots.items() if top in held_roots}
