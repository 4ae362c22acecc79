"""Changing the retention policy and placing or releasing legal holds; each one audited,
a hold with its reason (typed by the admin, never message content).

The views and the command line call these after their own access checks: the
accounts and messages given here already belong to ``org``.
"""

from __future__ import annotations

from django.db import transaction

from hushpost.accounts.models import User
from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock
from hushpost.messaging.models import Message
from hushpost.orgs.models import Organization
from hushpost.retention.models import LegalHold, RetentionPolicy

DAYS_FIELDS = ("after_expiry_days", "after_deletion_days", "after_activity_days")


def _days(value: int | None) -> str:
    return "never" if value is None else f"{value} days"


def set_policy(org: Organization, *, by: User, request=None, **days: int | None) -> RetentionPolicy:
    """Save the three day counts (None: never), recording old and new values."""
    with transaction.atomic():
        policy, _ = RetentionPolicy.objects.select_for_update().get_or_create(org=org)
        changes = [f"{name.removeprefix('after_').removesuffix('_days')} {_days(getattr(policy, name))} → "
                   f"{_days(days[name])}" for name in DAYS_FIELDS if getattr(policy, name) != days[name]]
        if not changes:
            return policy
        for name in DAYS_FIELDS:
            setattr(policy, name, days[name])
        policy.changed_at, policy.changed_by = clock.now(), by
        policy.save()
        record(AuditEvent.Action.ADMIN, actor=by, org=org, request=request, obj=org,
               detail="changed the retention policy: " + "; ".join(changes))
    return policy


def _lock_policy(org: Organization) -> None:
    """The row a purge batch locks before it checks the holds (``purge._purge_batch``)."""
    RetentionPolicy.objects.get_or_create(org=org)
    RetentionPolicy.objects.select_for_update().filter(org=org).first()


def place_hold(org: Organization, *, reason: str, by: User, request=None, account: User | None = None,
               conversation: Message | None = None) -> LegalHold:
    """Hold a person's messages (named by one account, sender or recipient by its role; every
    account at its address is held: ``plan.held_messages``) or one conversation."""
    if conversation is not None:
        kind, what, obj = LegalHold.Kind.CONVERSATION, f"conversation {conversation.uid}", conversation
    else:
        kind = LegalHold.Kind.SENDER if account.is_sender else LegalHold.Kind.RECIPIENT
        what, obj = f"{kind} {account.email}", account
    with transaction.atomic():
        _lock_policy(org)
        hold = LegalHold.objects.create(org=org, kind=kind, account=account, conversation=conversation,
                                        reason=reason, created_by=by)
        record(AuditEvent.Action.ADMIN, actor=by, org=org, request=request, obj=obj,
               detail=f"placed legal hold {hold.pk} on {what}, because: {reason}")
    return hold


def release_hold(hold: LegalHold, *, by: User, request=None) -> bool:
    """Release an active hold; False if it was released already. Its content is due again
    at the next purge if the policy says so."""
    with transaction.atomic():
        released = LegalHold.objects.filter(pk=hold.pk, released_at__isnull=True).update(
            released_at=clock.now(), released_by=by)
        if released:
            record(AuditEvent.Action.ADMIN, actor=by, org=hold.org, request=request,
                   object_type="legalhold", object_id=str(hold.pk),
                   detail=f"released legal hold {hold.pk}, placed because: {hold.reason}")
    return bool(released)
