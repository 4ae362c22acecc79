"""Single-use links that let the owner choose a password: 'Forgot your password?' and invitations.

A reset link works for 30 minutes (``PASSWORD_RESET_TIMEOUT``); an invitation,
which lets a new sender choose their first password, for ``INVITATION_DAYS``.
Both are the same scheme under different keys, so neither opens the other's page.

Built on Django's ``PasswordResetTokenGenerator`` (an HMAC over the account's
password hash and when it last changed, with a timestamp): setting a password
through the link changes both, so the link works once, and it expires after
``PASSWORD_RESET_TIMEOUT``.  The token is made as the e-mail is written, in
the worker; it is never stored.  Asking answers the same for any address.

The token travels in the link's fragment (``/reset#<uid>/<token>``), which a
browser never sends to a server: no access log, proxy or Referer ever sees
it.  The page's script takes it out of the address bar and posts it once; the
session then keeps a *ticket* (the account, the token's time and a SHA-256 of
the token), from which no link can be rebuilt, and every step re-checks it
against the account as it is now.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.db import transaction
from django.utils.crypto import constant_time_compare
from django.utils.encoding import force_bytes, force_str
from django.utils.http import base36_to_int, urlsafe_base64_decode, urlsafe_base64_encode

from hushpost.accounts import throttle
from hushpost.accounts.models import User
from hushpost.accounts.passwords import password_problems
from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock
from hushpost.notifications.actions import queue_notification
from hushpost.notifications.models import Notification

RESEND_AFTER = timedelta(minutes=5)


class LinkTokens(PasswordResetTokenGenerator):
    """One kind of link: its key, how long it works, and what using it is recorded as."""

    used = AuditEvent.Action.PASSWORD_RESET

    def timeout(self) -> int:
        return settings.PASSWORD_RESET_TIMEOUT

    def _now(self):
        return clock.now().replace(tzinfo=None)  # the one clock (UTC), so tests can move it

    def _make_hash_value(self, user, timestamp):
        changed = user.password_changed_at.isoformat() if user.password_changed_at else ""
        # A sign-in since the e-mail also ends the link (the owner evidently has the password).
        last_login = user.last_login.replace(microsecond=0, tzinfo=None).isoformat() if user.last_login else ""
        return f"{user.pk}:{user.password}:{changed}:{last_login}:{user.email}:{user.is_active}:{timestamp}"

    def check_token(self, user, token) -> bool:
        """Django's check, with this kind's own lifetime."""
        try:
            timestamp = base36_to_int(str(token).split("-", 1)[0])
        except ValueError:
            return False
        return user is not None and self.check_ticket(user, {"ts": timestamp, "digest": _digest(str(token))})

    def check_ticket(self, user, ticket: dict, *, any_age: bool = False) -> bool:
        """``check_token`` for a token known only by its time and SHA-256 (see :func:`ticket`).

        ``any_age``: true for a link that would work but for its age (to say it expired)."""
        timestamp, digest = ticket.get("ts"), ticket.get("digest")
        if not isinstance(timestamp, int) or not isinstance(digest, str):
            return False
        if not any_age and self._num_seconds(self._now()) - timestamp > self.timeout():
            return False
        return any(
            constant_time_compare(_digest(self._make_token_with_timestamp(user, timestamp, secret)), digest)
            for secret in [self.secret, *self.secret_fallbacks]
        )


class ResetTokens(LinkTokens):
    key_salt = "hushpost.accounts.reset"


class InvitationTokens(LinkTokens):
    """A new sender's first password: the account has none yet, so the link is the only way in."""

    key_salt = "hushpost.accounts.invitation"
    used = AuditEvent.Action.INVITATION_ACCEPTED

    def timeout(self) -> int:
        return settings.INVITATION_DAYS * 24 * 3600


tokens = ResetTokens()
invitation_tokens = InvitationTokens()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def request_reset(user: User | None, *, by: User | None = None) -> bool:
    """Queue a reset e-mail for a real, active account (at most one per five minutes).

    ``by``: the organisation admin who sent it; the link still goes only to the owner.
    True when an e-mail was queued."""
    if user is None or not user.is_active:
        return False
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()
        recent = Notification.objects.filter(
            user=user, kind=Notification.Kind.RESET, created_at__gt=clock.now() - RESEND_AFTER
        ).exists()
        if not recent:
            queue_notification(Notification.Kind.RESET, user)
        if by is None:
            record(AuditEvent.Action.PASSWORD_RESET_REQUEST, org=user.org, actor_email=user.email, obj=user)
        elif not recent:
            record(AuditEvent.Action.PASSWORD_RESET_REQUEST, org=user.org, actor=by, obj=user,
                   detail=f"an admin had a reset link sent to {user.email}")
    return not recent


def link_path(user: User, *, kind: LinkTokens = tokens) -> str:
    """The e-mailed link: the page's path, and the secret in the fragment, which stays in the browser."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = kind.make_token(user)
    if kind is invitation_tokens:
        return f"/welcome#{uid}/{token}"  # invitations are for senders
    prefix = "" if user.is_sender else f"/r/{user.org.slug}"
    return f"{prefix}/reset#{uid}/{token}"


def _parse(link: str) -> tuple[int, int, str] | None:
    uidb64, _, token = link.strip().rsplit("#", 1)[-1].partition("/")
    try:
        return int(force_str(urlsafe_base64_decode(uidb64))), base36_to_int(token.split("-", 1)[0]), token
    except (TypeError, ValueError, OverflowError):
        return None


def ticket_for_link(link: str, *, role: str, org=None, kind: LinkTokens = tokens) -> dict | None:
    """What the session keeps once a link (``<uid>/<token>``, or the whole URL pasted) is proven."""
    parsed = _parse(link)
    if parsed is None:
        return None
    pk, timestamp, token = parsed
    user = _account(pk, role=role, org=org)
    if user is None or not kind.check_token(user, token):
        return None
    return {"user": user.pk, "ts": timestamp, "digest": _digest(token)}


def expired(link: str, *, role: str, org=None, kind: LinkTokens = tokens) -> bool:
    """True for a real link that is unused but too old: the page can say so rather than 'no longer works'."""
    parsed = _parse(link)
    if parsed is None:
        return False
    pk, timestamp, token = parsed
    user = _account(pk, role=role, org=org)
    return user is not None and kind.check_ticket(user, {"ts": timestamp, "digest": _digest(token)}, any_age=True)


def user_for_ticket(ticket, *, role: str, org=None, kind: LinkTokens = tokens) -> User | None:
    if not isinstance(ticket, dict) or not isinstance(ticket.get("user"), int):
        return None
    user = _account(ticket["user"], role=role, org=org)
    return user if user is not None and kind.check_ticket(user, ticket) else None


def _account(pk: int, *, role: str, org=None) -> User | None:
    users = User.objects.filter(pk=pk, role=role, is_active=True)
    if org is not None:
        users = users.filter(org=org)
    return users.first()


def reset_password(user: User, new: str, confirm: str, *, ticket: dict, kind: LinkTokens = tokens) -> list[str]:
    """Set the password from a link; every session of the account ends, and a lockout of its sign-in.

    The link is checked again under a row lock: two submissions race, one wins.
    """
    problems = password_problems(new, email=user.email, name=user.name)
    if new != confirm:
        problems.append("The two passwords do not match.")
    if problems:
        return problems
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        if not kind.check_ticket(user, ticket):
            return ["This link has just been used. Ask for a new one if you still need it."]
        user.set_password(new)
        user.must_change_password = False
        user.temp_password_expires_at = None
        user.temp_password_used_at = None
        user.password_changed_at = clock.now()
        user.save(update_fields=["password", "must_change_password", "temp_password_expires_at",
                                 "temp_password_used_at", "password_changed_at"])
        record(kind.used, org=user.org, actor_email=user.email, obj=user)
    throttle.after_password_reset(user)
    return []
