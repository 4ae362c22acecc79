"""The e-mails accounts own: the Password Notification, the reset link and the lockout notice."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Exists, OuterRef

from hushpost.accounts import reset
from hushpost.accounts.flows import (
    activate_temporary_password,
    password_notification_wanted,
    temporary_password,
    temporary_password_days,
)
from hushpost.accounts.models import User
from hushpost.notifications import kinds
from hushpost.notifications.emails import absolute, recipient_login_link
from hushpost.notifications.models import Notification

Kind = Notification.Kind


def _password_context(notification: Notification) -> dict:
    user = notification.user
    return {"link": recipient_login_link(notification.org.slug, user.email),
            "temp_days": temporary_password_days(user)}


def _prepare_password(notification: Notification) -> kinds.Prepared | None:
    """Still wanted? Then the password it carries (the same each time it is written)."""
    newer = Notification.objects.filter(
        user=OuterRef("pk"), kind=Kind.PASSWORD, pk__gt=notification.pk
    ).exclude(status=Notification.Status.CANCELLED)
    wanted = User.objects.filter(
        password_notification_wanted(notification.created_at), ~Exists(newer), pk=notification.user_id
    )
    if not wanted.exists():
        return None
    password, password_hash = temporary_password(str(notification.key))
    return kinds.Prepared(context={"temporary_password": password}, state=password_hash)


def _password_accepted(notification: Notification, prepared: kinds.Prepared) -> None:
    activate_temporary_password(notification.user, prepared.state, since=notification.created_at)


def _reset_context(notification: Notification) -> dict:
    # Made now, as the e-mail is written: the token is never stored anywhere else.
    return {"link": absolute(reset.link_path(notification.user)),
            "minutes": settings.PASSWORD_RESET_TIMEOUT // 60}


def _lockout_context(notification: Notification) -> dict:
    user = notification.user
    link = absolute("/login") if user.is_sender else recipient_login_link(notification.org.slug, user.email)
    return {"link": link, "minutes": settings.LOCKOUT_MINUTES}


kinds.register(kinds.EmailKind(
    Kind.PASSWORD, "Secure Messaging Password Notification", "accounts/email/password",
    context=_password_context, prepare=_prepare_password, accepted=_password_accepted,
))
kinds.register(kinds.EmailKind(
    Kind.RESET, "Secure Messaging Password Reset", "accounts/email/reset", context=_reset_context,
))
kinds.register(kinds.EmailKind(
    Kind.LOCKOUT, "Secure Messaging Account Locked", "accounts/email/lockout", context=_lockout_context,
))
