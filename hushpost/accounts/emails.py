"""The e-mails accounts own: the Password Notification, the reset link, the lockout notice and
the invitation of a new sender."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import connection

from hushpost.accounts import reset
from hushpost.accounts.flows import temporary_password, temporary_password_days
from hushpost.lib import clock
from hushpost.notifications import kinds
from hushpost.notifications.emails import absolute, recipient_login_link
from hushpost.notifications.models import Notification

Kind = Notification.Kind


def _password_context(notification: Notification) -> dict:
    user = notification.user
    return {"link": recipient_login_link(notification),
            "temp_days": temporary_password_days(user)}


# A Password Notification runs these two statements each time the worker sends one, so
# they are written out: built by the ORM, they cost more CPU than the rest of the e-mail.
# Both hold the rule of when its temporary password may still be set: the account is
# open and still waiting for a password, and none has been chosen since the e-mail was
# queued. It is still wanted only if no newer Password Notification is on its way.
_STILL_WANTED = (
    'SELECT 1 FROM "accounts_user" WHERE "id" = %s AND "is_active" AND "must_change_password"'
    ' AND ("password_changed_at" IS NULL OR "password_changed_at" < %s)'
    ' AND NOT EXISTS (SELECT 1 FROM "notifications_notification" WHERE "user_id" = %s AND "kind" = %s'
    ' AND "id" > %s AND "status" <> %s)'
)
# Checked and changed in one statement, under the row's lock, in the transaction that
# records the e-mail as sent.
_ACTIVATE = (
    'UPDATE "accounts_user" SET "password" = %s, "must_change_password" = %s, "temp_password_used_at" = NULL,'
    ' "temp_password_expires_at" = %s WHERE "id" = %s AND "is_active" AND "must_change_password"'
    ' AND ("password_changed_at" IS NULL OR "password_changed_at" < %s)'
)


def _prepare_password(notification: Notification) -> kinds.Prepared | None:
    """Still wanted? Then the password it carries (the same each time it is written)."""
    since = connection.ops.adapt_datetimefield_value(notification.created_at)
    with connection.cursor() as cursor:
        cursor.execute(_STILL_WANTED, [notification.user_id, since, notification.user_id, Kind.PASSWORD,
                                       notification.pk, Notification.Status.CANCELLED])
        if cursor.fetchone() is None:
            return None
    password, password_hash = temporary_password(str(notification.key))
    return kinds.Prepared(context={"temporary_password": password}, state=password_hash)


def _password_accepted(notification: Notification, prepared: kinds.Prepared) -> None:
    """The e-mailed password becomes the one that works, unless one was chosen meanwhile."""
    expires = clock.now() + timedelta(days=temporary_password_days(notification.user))
    with connection.cursor() as cursor:
        cursor.execute(_ACTIVATE, [prepared.state, True, connection.ops.adapt_datetimefield_value(expires),
                                   notification.user_id,
                                   connection.ops.adapt_datetimefield_value(notification.created_at)])


def _reset_context(notification: Notification) -> dict:
    # Made now, as the e-mail is written: the token is never stored anywhere else.
    return {"link": absolute(reset.link_path(notification.user)),
            "minutes": settings.PASSWORD_RESET_TIMEOUT // 60}


def _lockout_context(notification: Notification) -> dict:
    user = notification.user
    link = absolute("/login") if user.is_sender else recipient_login_link(notification)
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


def _prepare_invitation(notification: Notification) -> kinds.Prepared | None:
    """Wanted while the account is open and still has no password of its own."""
    user = notification.user
    user.refresh_from_db(fields=["password", "is_active"])
    return kinds.Prepared() if user.is_active and not user.has_usable_password() else None


def _invitation_context(notification: Notification) -> dict:
    """The link to choose a password; with single sign-on, the way in through the identity
    provider, and no password link at all where single sign-on is required."""
    try:
        sso = notification.user.org.sso
    except ObjectDoesNotExist:
        sso = None
    context = {"days": settings.INVITATION_DAYS, "signin": absolute("/login"),
               "sso": sso is not None and sso.is_on, "sso_only": sso is not None and sso.is_on and sso.required}
    if not context["sso_only"]:
        context["link"] = absolute(reset.link_path(notification.user, kind=reset.invitation_tokens))  # made now, never stored
    return context


kinds.register(kinds.EmailKind(
    Kind.INVITATION, "You're invited to {org}'s secure messaging portal", "accounts/email/invitation",
    context=_invitation_context, prepare=_prepare_invitation, subject_names_org=True,
))
