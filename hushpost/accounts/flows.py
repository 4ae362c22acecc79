"""Signing in and setting passwords, for senders and recipients alike.

Errors never say whether an account exists: an unknown address costs the
same Argon2 work and gets the same answer as a wrong password.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import login, logout, update_session_auth_hash
from django.db import transaction

from hushpost.accounts import passkeys, reauth, twofactor
from hushpost.accounts.models import User
from hushpost.accounts.passwords import (
    canonical_temporary,
    hash_temporary,
    password_problems,
    temporary_password_for,
)
from hushpost.accounts.sessions import SEEN, STARTED
from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock
from hushpost.orgs.models import Organization

BACKEND = "hushpost.accounts.backends.HushpostBackend"
_DUMMY = User()


@dataclass
class SignIn:
    """What a recipient's right password opens: a session, or (temporary passwords) an explanation."""

    user: User
    temporary_expired: bool = False
    temporary_used: bool = False
    # The temporary password's one session may still be open somewhere.
    temporary_in_use_until: datetime | None = None

    @property
    def needs_new_temporary(self) -> bool:
        return self.temporary_expired or self.temporary_used


def verify_password(user: User | None, password: str) -> bool:
    """One Argon2 computation whatever the case, so timing tells nothing either."""
    if user is None or not user.has_usable_password():
        _DUMMY.set_password(password)
        return False
    if user.must_change_password and user.is_recipient:
        # Temporary passwords are issued in canonical form; forgive how they
        # were typed (case, spaces, missing hyphens).
        password = canonical_temporary(password)
    return user.check_password(password)


def sender_account(email: str) -> User | None:
    return (
        User.objects.select_related("org")
        .filter(role=User.Role.SENDER, email=email.strip().lower(), is_active=True,
                org__is_active=True)
        .first()
    )


def recipient_account(org: Organization, email: str) -> User | None:
    return User.objects.filter(
        role=User.Role.RECIPIENT, org=org, email=email.strip().lower(), is_active=True
    ).first()


def sign_in_sender(email: str, password: str) -> User | None:
    """The sender whose password this is, or None."""
    user = sender_account(email)
    return user if verify_password(user, password) else None


def sign_in_recipient(org: Organization, email: str, password: str) -> SignIn | None:
    """What the recipient's password (temporary or chosen) opens, or None when it is not theirs.

    The right password passes even when a temporary one can no longer open a session.
    """
    user = recipient_account(org, email)
    if not verify_password(user, password) or user is None:  # False for None
        return None
    if user.must_change_password and (
        user.temp_password_expires_at is None or user.temp_password_expires_at <= clock.now()
    ):
        # They proved they hold the e-mailed password, so saying it expired
        # reveals nothing to a stranger.
        return SignIn(user=user, temporary_expired=True)
    if user.must_change_password:
        # A temporary password opens one session, for choosing a password.
        # While that session may be open, nobody else (someone reading the same
        # mailbox) can sign in with it or have a new one sent to end it.
        claimed = User.objects.filter(pk=user.pk, temp_password_used_at__isnull=True).update(
            temp_password_used_at=clock.now()
        )
        if not claimed:
            user.refresh_from_db(fields=["temp_password_used_at"])
            open_until = temporary_session_ends(user)
            if open_until is not None and open_until > clock.now():
                return SignIn(user=user, temporary_in_use_until=open_until)
            return SignIn(user=user, temporary_used=True)
    return SignIn(user=user)


def temporary_password_days(user: User) -> int:
    """The organisation's lifetime for temporary passwords (the deployment's by default)."""
    days = user.org.temp_password_days if user.org_id else 0
    return days or settings.TEMP_PASSWORD_DAYS


def temporary_session_ends(user: User) -> datetime | None:
    if user.temp_password_used_at is None:
        return None
    return user.temp_password_used_at + timedelta(minutes=settings.TEMP_SESSION_MINUTES)


def start_session(request, user: User, how: str = "") -> None:
    login(request, user, backend=BACKEND)  # rotates the session key: no fixation
    request.session[STARTED] = request.session[SEEN] = clock.now().timestamp()
    reauth.mark_confirmed(request, user)  # the password (and code), or the passkey, were just given
    record(AuditEvent.Action.SIGN_IN, actor=user, request=request, detail=how)


PENDING = "hushpost_2fa_pending"
PENDING_SECONDS = 300


def second_step_needed(user: User) -> bool:
    """An authenticator app or a passkey: either makes the password only the first step."""
    return twofactor.enabled(user) or passkeys.registered(user)


def begin_session(request, user: User) -> bool:
    """After the password: sign in, or (two-factor on, or a passkey added) wait for the second step.

    Returns True when the second step is needed. Until then the session holds
    only which account is half signed in, for five minutes.
    """
    if not second_step_needed(user):
        start_session(request, user)
        return False
    request.session.cycle_key()
    request.session[PENDING] = {"user": user.pk, "at": clock.now().timestamp()}
    return True


def pending_second_factor(request, *, role: str, org=None) -> User | None:
    pending = request.session.get(PENDING)
    if not isinstance(pending, dict) or clock.now().timestamp() - pending.get("at", 0) > PENDING_SECONDS:
        return None
    users = User.objects.select_related("org").filter(pk=pending.get("user"), role=role, is_active=True)
    if org is not None:
        users = users.filter(org=org)
    return users.first()


def finish_second_factor(request, user: User, how: str) -> None:
    request.session.pop(PENDING, None)
    start_session(request, user)
    record(AuditEvent.Action.SIGN_IN, actor=user, request=request, detail=f"second step: {how}")


def sign_out_everywhere(request, user: User) -> None:
    """End every session of the account, this one included."""
    User.objects.filter(pk=user.pk).update(sessions_ended_at=clock.now())
    record(AuditEvent.Action.SIGN_OUT_EVERYWHERE, actor=user, request=request)
    logout(request)


def temporary_password(seed: str) -> tuple[str, str]:
    """The temporary password of the Password Notification ``seed`` and its hash.

    The plaintext goes into the e-mail and nowhere else; the hash replaces the
    account's password only once the mail server has accepted the e-mail
    (``hushpost.accounts.emails``), so a failed send locks nobody out.
    """
    password = temporary_password_for(seed)
    return password, hash_temporary(password)


def set_new_password(request, user: User, new: str, confirm: str) -> list[str]:
    """Replace the password. Outside the first-time step the owner confirms it is
    them (the current password, and the code where two-factor sign-in is on), so a
    session left open cannot be turned into a takeover."""
    problems = password_problems(new, email=user.email, name=user.name)
    if new != confirm:
        problems.append("The two passwords do not match.")
    if not problems and user.check_password(new) and user.must_change_password:
        problems.append("Choose a new password, not the one you were given."
                        if user.is_sender else "Choose a new password, not the temporary one from the e-mail.")
    if problems:
        return problems
    if not user.must_change_password:
        # Only once the new password is acceptable, so a typo never uses up a recovery code.
        unconfirmed = reauth.confirm(request, always=True)
        if unconfirmed is not None:
            return [unconfirmed.inline[0]]
    with transaction.atomic():
        user.set_password(new)
        user.must_change_password = False
        user.temp_password_expires_at = None
        user.temp_password_used_at = None
        user.password_changed_at = clock.now()
        user.save(
            update_fields=[
                "password", "must_change_password", "temp_password_expires_at",
                "temp_password_used_at", "password_changed_at",
            ]
        )
    update_session_auth_hash(request, user)
    record(AuditEvent.Action.PASSWORD_CHANGE, actor=user, request=request)
    return []


def turn_on_two_factor(user: User, secret: str, code: str) -> list[str] | None:
    """Two-factor sign-in on, if ``code`` proves the app holds ``secret``: the recovery codes."""
    codes = twofactor.enable(user, secret, code)
    if codes is not None:
        record(AuditEvent.Action.ADMIN, actor=user, detail="turned on two-factor sign-in")
    return codes


def turn_off_two_factor(user: User) -> None:
    twofactor.disable(user)
    record(AuditEvent.Action.ADMIN, actor=user, detail="turned off two-factor sign-in")


def renew_recovery_codes(user: User) -> list[str]:
    codes = twofactor.enable_new_codes(user)
    record(AuditEvent.Action.ADMIN, actor=user, detail="made new recovery codes")
    return codes
