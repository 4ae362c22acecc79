"""Invitations: a new sender chooses their own first password.

Nobody else ever chooses it. The account is made with no usable password and
an invitation e-mail is queued in the same transaction; its link (the reset
link's scheme under its own key, see :mod:`hushpost.accounts.reset`) works
once, for ``INVITATION_DAYS``, and only while the account still has no
password. A sender is *invited* until then.
"""

from __future__ import annotations

from django.db import transaction

from hushpost.accounts.models import User
from hushpost.accounts.reset import RESEND_AFTER  # one pace for every e-mailed link
from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock
from hushpost.lib.refusals import Refused
from hushpost.notifications.actions import queue_notification
from hushpost.notifications.models import Notification


def is_invited(user: User) -> bool:
    """A sender who has not yet chosen a password (no database query)."""
    return user.is_sender and not user.has_usable_password()


def invite(user: User, *, by: User | None = None, actor_email: str = "") -> None:
    """Queue the invitation; call inside the transaction that made the account.

    ``by``: the organisation admin who added them; else ``actor_email`` names who did."""
    queue_notification(Notification.Kind.INVITATION, user)
    record(AuditEvent.Action.INVITATION_SENT, org=user.org, actor=by, actor_email=actor_email, obj=user,
           detail=f"invited {user.email}")


def resend(user: User, *, by: User) -> bool:
    """A new invitation; the earlier links stop working. False when one went less than five minutes ago."""
    if not user.is_active:
        raise Refused(f"{user.email} is disabled. Enable them first.")
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        if not is_invited(user):
            raise Refused(f"{user.email} has already chosen a password; send a reset link if they need one.")
        if Notification.objects.filter(user=user, kind=Notification.Kind.INVITATION,
                                       created_at__gt=clock.now() - RESEND_AFTER).exists():
            return False
        user.set_unusable_password()  # a new unusable value: every earlier link is bound to the old one
        user.save(update_fields=["password"])
        invite(user, by=by)
    return True
