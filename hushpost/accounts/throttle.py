"""Brute-force defence: failed attempts slow down, then lock, per account and per client.

Every secret a person (or a relay) types to get in is checked through one flow,
:func:`check_secret`: passwords, temporary passwords, authenticator and recovery
codes, reset links, the current password before a security change, SMTP AUTH.
It asks the throttle first, runs the check only if the attempt is allowed, and
records the failure or the success; those three steps are private to it, so no
caller can check a secret with one of them left out.  An account name is
throttled whether or not the account exists, and the answer is the same either
way.

* Per account name: after two failures each further one makes the next try
  wait longer (2, 4, 8 s);
  ``LOCKOUT_FAILURES`` failures within ``LOCKOUT_WINDOW_MINUTES`` lock it for
  ``LOCKOUT_MINUTES``, and the owner of a real account is told by e-mail.
* Per client address: ``CLIENT_FAILURES`` failures in the window, on any
  names, block that address for the same time.
* Look-ups that ask other regions (the login's "Next", /find-my-portal), and e-mail links
  whose code names no notification: ``LOOKUPS_PER_WINDOW`` per client address.
* The list of portals /find-my-portal e-mails: one per address per
  ``PORTAL_LIST_MINUTES``, whichever client asks.

Checks happen before any password is hashed, so a locked account costs no
Argon2 work and answers nothing about the password.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from hushpost.accounts.models import Throttle, User
from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock
from hushpost.lib.refusals import Refused
from hushpost.notifications.actions import queue_notification
from hushpost.notifications.models import Notification

MAX_DELAY_SECONDS = 60
FREE_TRIES = 2  # a typo or two costs no wait; after that 2, 4, 8… seconds


T = TypeVar("T")


@dataclass(frozen=True)
class Attempt(Generic[T]):
    """How a secret fared: what it opened, or why it was refused."""

    value: T | None = None  # what ``verify`` returned when the secret passed
    refusal: Refused | None = None  # no attempt allowed, or the lockout this failure began
    checked: bool = True  # False when refused before the secret was looked at

    @property
    def passed(self) -> bool:
        return self.value is not None


def check_secret(client: str, account: str, verify: Callable[[], T | None | bool], *,
                 owner: User | Callable[[], User | None] | None = None, client_key: str = "") -> Attempt[T]:
    """Check a secret under the throttle of ``account`` (an account name) and ``client`` (an address).

    ``verify`` runs only when the attempt is allowed, and does the whole check
    (for an unknown account, the same hashing work as for a real one); it returns
    what the secret opens, or None (or False) when the secret is wrong.  A
    failure is recorded against ``owner``, the account's user if there is one
    (a function is called only then, so its look-up costs nothing otherwise):
    the audit trail names them, and their lockout e-mail goes to them.
    ``client_key``, when given, is what the client's count is kept under instead
    of its address alone (the audit trail still names the address).
    """
    refusal = _check(client_key or client, account)
    if refusal is not None:
        return Attempt(refusal=refusal, checked=False)
    value = verify()
    if value is None or value is False:
        return Attempt(refusal=_failed(client, account, user=owner() if callable(owner) else owner))
    _succeeded(account, client_key or client)
    return Attempt(value=value)


def account_key(portal: str, email: str) -> str:
    return f"{portal}:{email.strip().lower()}"


def sign_in_key(user: User) -> str:
    """The account name a person signs in with: their portal and address."""
    portal = "ops" if user.role == User.Role.OPERATOR else "sender" if user.is_sender else f"r{user.org_id}"
    return account_key(portal, user.email)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _window() -> timedelta:
    return timedelta(minutes=settings.LOCKOUT_WINDOW_MINUTES)


def _row(scope: str, key: str, window: timedelta | None = None) -> Throttle:
    """The throttle row, locked for update (created on first use); its count starts again after ``window``."""
    digest = _hash(key)
    row = Throttle.objects.select_for_update().filter(scope=scope, key=digest).first()
    if row is None:
        try:
            with transaction.atomic():
                row = Throttle.objects.create(scope=scope, key=digest, window_started_at=clock.now())
        except IntegrityError:
            row = Throttle.objects.select_for_update().get(scope=scope, key=digest)
    if row.window_started_at + (window or _window()) <= clock.now() and not _locked(row):
        row.failures, row.window_started_at, row.next_allowed_at = 0, clock.now(), None
    return row


def _locked(row: Throttle) -> bool:
    return row.locked_until is not None and row.locked_until > clock.now()


def _minutes(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def wait_text(seconds: float) -> str:
    """How long a refused attempt must wait, in words: "20 seconds", "15 minutes"."""
    if seconds < 60:
        return f"{int(seconds)} second{'s' if int(seconds) != 1 else ''}"
    return _minutes(seconds)


LOCKED = ("Too many unsuccessful attempts: signing in with this address is paused for {wait}. "
          "If this was not you, your account is safe; you will be able to sign in again then.")
SLOW_DOWN = "Please wait {wait} second{s} before trying again."
CLIENT_BLOCKED = "Too many unsuccessful attempts from your network. Try again in {wait}."


def _peek(scope: str, key: str) -> Throttle | None:
    row = Throttle.objects.filter(scope=scope, key=_hash(key)).first()
    if row is None or (row.window_started_at + _window() <= clock.now() and not _locked(row)):
        return None
    return row


def _check(client: str, account: str) -> Refused | None:
    """Reserve one attempt, or refuse it (the refusal's text says for how long not).

    The attempt is counted as a failure *before* the secret is checked, under
    a row lock, so guesses sent all at once are counted one by one and the
    waits apply to them too; ``_succeeded`` takes it back.
    """
    now = clock.now()
    lock_for = timedelta(minutes=settings.LOCKOUT_MINUTES)
    with transaction.atomic():
        client_row = _row(Throttle.Scope.CLIENT, client)
        if _locked(client_row):
            wait = (client_row.locked_until - now).total_seconds()
            return Refused(CLIENT_BLOCKED.format(wait=_minutes(wait)), retry_after=int(wait) + 1)
        row = _row(Throttle.Scope.ACCOUNT, account)
        if _locked(row):
            wait = (row.locked_until - now).total_seconds()
            return Refused(LOCKED.format(wait=_minutes(wait)), retry_after=int(wait) + 1)
        if row.next_allowed_at is not None and row.next_allowed_at > now:
            wait = max(1, math.ceil((row.next_allowed_at - now).total_seconds()))
            return Refused(SLOW_DOWN.format(wait=wait, s="s" if wait != 1 else ""), retry_after=wait)
        client_row.failures += 1
        if client_row.failures >= settings.CLIENT_FAILURES:
            client_row.locked_until = now + lock_for
        client_row.save()
        row.failures += 1
        if row.failures >= settings.LOCKOUT_FAILURES:
            row.locked_until, row.next_allowed_at = now + lock_for, None  # this is the last try
        elif row.failures >= FREE_TRIES:
            row.next_allowed_at = now + timedelta(seconds=min(2 ** (row.failures - FREE_TRIES + 1), MAX_DELAY_SECONDS))
        row.save()
    return None


def _failed(client: str, account: str, user: User | None = None) -> Refused | None:
    """The reserved attempt failed: record it; a refusal if it was the one that locked the account."""
    row = _peek(Throttle.Scope.ACCOUNT, account)
    newly_locked = row is not None and _locked(row) and row.failures == settings.LOCKOUT_FAILURES
    portal, _, typed = account.partition(":")
    # What was typed is kept only when it names a real account: a password typed
    # into the address field must not end up in the trail.
    who = user.email if user is not None else "unknown (" + _hash(account)[:12] + ")"
    org = user.org if user is not None else None
    with transaction.atomic():
        record(AuditEvent.Action.SIGN_IN_FAILED, org=org, actor_email=who, client=client,
               object_type="account", object_id=portal)
        if newly_locked:
            record(AuditEvent.Action.LOCKOUT, org=org, actor_email=who, client=client,
                   object_type="account", object_id=portal)
            if user is not None and user.org_id is not None:
                # Operators have no organisation to send the e-mail in the name of;
                # their lockout is in the audit trail.
                queue_notification(Notification.Kind.LOCKOUT, user)
    if newly_locked:
        return Refused(LOCKED.format(wait=_minutes(settings.LOCKOUT_MINUTES * 60)),
                       retry_after=settings.LOCKOUT_MINUTES * 60)
    return None


def _succeeded(account: str, client: str) -> None:
    """The reserved attempt passed: the account's count starts again, the client's loses it."""
    Throttle.objects.filter(scope=Throttle.Scope.ACCOUNT, key=_hash(account)).delete()
    Throttle.objects.filter(scope=Throttle.Scope.CLIENT, key=_hash(client), failures__gt=0).update(
        failures=F("failures") - 1)


def after_password_reset(user: User) -> None:
    """A password set through a reset link: the sign-in name's count starts again.

    The owner proved they hold the mailbox; a lockout (theirs or a guesser's) no
    longer stands between them and the new password.  Their second step keeps its count.
    """
    Throttle.objects.filter(scope=Throttle.Scope.ACCOUNT, key=_hash(sign_in_key(user))).delete()


def lookup_allowed(client: str) -> bool:
    """Count one look-up that asks other regions; False once the address used its share."""
    with transaction.atomic():
        row = _row(Throttle.Scope.LOOKUP, client)
        if row.failures >= settings.LOOKUPS_PER_WINDOW:
            return False
        row.failures += 1
        row.save()
    return True


def lookup_refused(client: str) -> bool:
    """Whether ``client`` has used its share of look-ups in the window; counts nothing."""
    row = _peek(Throttle.Scope.LOOKUP, client)
    return row is not None and row.failures >= settings.LOOKUPS_PER_WINDOW


def count_portal_list(email: str) -> tuple[bool, datetime]:
    """Count a portal list e-mailed to ``email``: whether it is the window's first, and when the window began.

    Keyed, like every row here, by a hash: the table never holds the address.
    """
    with transaction.atomic():
        row = _row(Throttle.Scope.PORTAL_LIST, email.strip().lower(),
                   window=timedelta(minutes=settings.PORTAL_LIST_MINUTES))
        first = not row.failures
        row.failures = 1
        row.save()
    return first, row.window_started_at


def _keys(user: User) -> list[str]:
    """The account's throttle keys: its sign-in name, and its second step."""
    return [sign_in_key(user), account_key("2fa", str(user.pk))]


def locked_until(user: User):
    """When the user's account is unlocked again, or None (for the admin pages)."""
    rows = Throttle.objects.filter(scope=Throttle.Scope.ACCOUNT, key__in=[_hash(key) for key in _keys(user)])
    return max((row.locked_until for row in rows if _locked(row)), default=None)


def unlock(user: User, *, by: User | None = None) -> bool:
    """End a lockout now; ``by``, the organisation admin who did, is recorded."""
    keys = [_hash(key) for key in _keys(user)]
    with transaction.atomic():
        ended = bool(Throttle.objects.filter(scope=Throttle.Scope.ACCOUNT, key__in=keys).delete()[0])
        if by is not None:
            record(AuditEvent.Action.UNLOCK, actor=by, obj=user, detail=user.email)
    return ended
