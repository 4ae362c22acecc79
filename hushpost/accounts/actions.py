from __future__ import annotations

from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from hushpost.accounts import invitations
from hushpost.accounts.models import User
from hushpost.accounts.passwords import password_problems
from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock, zones
from hushpost.lib.refusals import Refused
from hushpost.notifications.actions import queue_notification
from hushpost.notifications.models import Notification
from hushpost.orgs.actions import org_for_address
from hushpost.orgs.models import Organization


def create_sender(
    *, email: str, name: str, password: str | None = None, admin: bool = False, org=None,
    by: User | None = None, by_label: str = "", must_change_password: bool = False, invite: bool = True,
) -> User:
    """A new sender; with ``org``, the address must be at one of its domains.

    Without ``password`` the account has none and an invitation to choose one is
    queued in the same transaction (:mod:`hushpost.accounts.invitations`), unless
    ``invite`` is False: the sender then signs in through the organisation's
    identity provider, or an admin invites them later. A
    ``password`` chosen by someone else comes with ``must_change_password``: the
    owner replaces it at first sign-in.
    ``by``: the organisation admin who added them, or ``by_label`` (a shell command),
    recorded in the audit trail."""
    email, org = check_new_sender(email, name, org)
    if password is not None:
        problems = password_problems(password, email=email, name=name)
        if problems:
            raise Refused(" ".join(problems))
    user = User(org=org, email=email, name=name.strip(), role=User.Role.SENDER, is_org_admin=admin,
                must_change_password=must_change_password and password is not None)
    user.set_password(password)  # None: unusable
    with transaction.atomic():
        user.save()
        if by is not None or by_label:
            record(AuditEvent.Action.ADMIN, org=org, actor=by, actor_email=by_label, obj=user,
                   detail=f"added sender {user.email}" + (" (admin)" if admin else ""))
        if password is None and invite:
            invitations.invite(user, by=by, actor_email=by_label)
    return user


def check_new_sender(email: str, name: str, org=None) -> tuple[str, Organization]:
    """The address as stored and its organisation, or ``Refused`` saying why it cannot be a new sender."""
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise Refused(f"{email!r} is not an e-mail address") from None
    if len(email) > User._meta.get_field("email").max_length:
        raise Refused(f"{email[:40]}… is longer than an address can be here (254 characters)")
    if "\r" in name or "\n" in name:
        raise Refused("a name cannot contain line breaks")
    owner = org_for_address(email)
    if org is not None and (owner is None or owner.pk != org.pk):
        domains = ", ".join(d.name for d in org.domains.all())
        raise Refused(f"Senders need an address at your organisation's domains ({domains}).")
    if owner is None:
        raise Refused(
            f"no organisation owns the domain of {email}; add it with 'hushpost org add'"
        )
    if User.objects.filter(org=owner, role=User.Role.SENDER, email=email).exists():
        raise Refused(f"{email} already has a sender account")
    return email, owner


def update_sender(user: User, *, name: str | None = None, admin: bool | None = None,
                  email: str | None = None) -> list[str]:
    """Change a sender's name, admin flag or address (``hushpost user set``); what changed.

    A new address stays within the organisation's domains. Changing it ends every
    session and every reset link of the account (both are bound to the address).
    """
    changed = []
    if name is not None and name.strip() != user.name:
        if "\r" in name or "\n" in name:
            raise Refused("a name cannot contain line breaks")
        user.name, changed = name.strip(), [*changed, "name"]
    if admin is not None and admin != user.is_org_admin:
        user.is_org_admin, changed = admin, [*changed, "admin"]
    if email is not None and email.strip().lower() != user.email:
        email = email.strip().lower()
        try:
            validate_email(email)
        except ValidationError:
            raise Refused(f"{email!r} is not an e-mail address") from None
        owner = org_for_address(email)
        if owner is None or owner.pk != user.org_id:
            raise Refused(f"{email} is not at one of {user.org.name}'s domains")
        if User.objects.filter(org=user.org, role=user.role, email=email).exists():
            raise Refused(f"{email} already has a sender account")
        user.email, user.sessions_ended_at, changed = email, clock.now(), [*changed, "e-mail"]
    if changed:
        user.save()
    return changed


def set_active(user: User, active: bool, *, by: User | None = None) -> None:
    """Disable or re-enable an account; a disabled one is signed out everywhere at once, for good.

    ``by``, an organisation admin, must still be an active admin when the change
    is made: two admins disabling each other at the same moment leave one of
    them active, because the organisation's row is locked while it is checked.
    """
    with transaction.atomic():
        if by is not None:
            Organization.objects.select_for_update().filter(pk=by.org_id).first()
            if by.pk == user.pk or not User.objects.filter(pk=by.pk, is_active=True, is_org_admin=True).exists():
                raise Refused("Only an active admin of the organisation can do that.")
        if active:
            User.objects.filter(pk=user.pk).update(is_active=True)
        else:
            # Its sessions end for good: enabling the account again does not bring them back.
            User.objects.filter(pk=user.pk).update(is_active=False, sessions_ended_at=clock.now())
        if not active and invitations.is_invited(user):
            # Invited, not yet accepted: the links already sent end here for good, so
            # enabling the account again does not bring them back (a new one is sent).
            user.set_unusable_password()
            User.objects.filter(pk=user.pk).update(password=user.password)
        if by is not None:
            record(AuditEvent.Action.ADMIN, actor=by, obj=user,
                   detail=f"{'enabled' if active else 'disabled'} {user.email}")


def reset_recipient_password(user: User, *, by: User | None = None) -> None:
    """Send a new Password Notification; the recipient's password stops working now.
    ``by``: the organisation admin who asked (recorded in the audit trail)."""
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(
            must_change_password=True,
            temp_password_used_at=None,
            temp_password_expires_at=None,
            password=make_password(None),  # unusable until the e-mail is accepted
        )
        user.refresh_from_db()
        queue_notification(Notification.Kind.PASSWORD, user)
        if by is not None:
            record(AuditEvent.Action.ADMIN, actor=by, obj=user,
                   detail=f"sent a new temporary password to {user.email}")


def set_time_zone(user: User, name: str) -> None:
    """The zone ``user`` sees times in, on pages and in e-mails; "" goes back to their browser's."""
    if name and not zones.valid(name):
        raise Refused(zones.INVALID)
    User.objects.filter(pk=user.pk).update(time_zone=name)
    user.time_zone = name
