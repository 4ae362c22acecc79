"""Signing in and setting passwords, for senders and recipients alike.

Errors never say whether an account exists: an unknown address costs the
same Argon2 work and gets the same answer as a wrong password.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import login, update_session_auth_hash
from django.db import transaction

from hushpost.accounts.models import User
from hushpost.accounts.passwords import (
    canonical_temporary,
    generate_temporary_password,
    password_problems,
)
from hushpost.lib import clock
from hushpost.orgs.models import Organization

BACKEND = "hushpost.accounts.backends.HushpostBackend"
_DUMMY = User()


@dataclass
class SignIn:
    user: User | None = None
    temporary_expired: bool = False
    temporary_used: bool = False

    @property
    def needs_new_temporary(self) -> bool:
        return self.temporary_expired or self.temporary_used


def _verify(user: User | None, password: str) -> bool:
    """One Argon2 computation whatever the case, so timing tells nothing either."""
    if user is None or not user.has_usable_password():
        _DUMMY.set_password(password)
        return False
    if user.must_change_password:
        # Temporary passwords are issued in canonical form; forgive how they
        # were typed (case, spaces, missing hyphens).
        password = canonical_temporary(password)
    return user.check_password(password)


def sign_in_sender(email: str, password: str) -> SignIn:
    user = (
        User.objects.select_related("org")
        .filter(role=User.Role.SENDER, email=email.strip().lower(), is_active=True,
                org__is_active=True)
        .first()
    )
    return SignIn(user=user) if _verify(user, password) else SignIn()


def sign_in_recipient(org: Organization, email: str, password: str) -> SignIn:
    user = User.objects.filter(
        role=User.Role.RECIPIENT, org=org, email=email.strip().lower(), is_active=True
    ).first()
    if not _verify(user, password) or user is None:  # _verify is False for None
        return SignIn()
    if user.must_change_password and (
        user.temp_password_expires_at is None or user.temp_password_expires_at <= clock.now()
    ):
        # They proved they hold the e-mailed password, so saying it expired
        # reveals nothing to a stranger.
        return SignIn(user=user, temporary_expired=True)
    if user.must_change_password:
        # A temporary password opens one session: someone else reading the
        # same mailbox later cannot use it to take the account over.
        claimed = User.objects.filter(pk=user.pk, temp_password_used_at__isnull=True).update(
            temp_password_used_at=clock.now()
        )
        if not claimed:
            return SignIn(user=user, temporary_used=True)
    return SignIn(user=user)


def start_session(request, user: User) -> None:
    login(request, user, backend=BACKEND)  # rotates the session key: no fixation


def issue_temporary_password(user: User) -> str:
    """A fresh temporary password; its plaintext exists only in the e-mail."""
    password = generate_temporary_password()
    user.set_password(password)
    user.must_change_password = True
    user.temp_password_expires_at = clock.now() + timedelta(days=settings.TEMP_PASSWORD_DAYS)
    user.temp_password_used_at = None
    user.save(
        update_fields=[
            "password", "must_change_password", "temp_password_expires_at", "temp_password_used_at"
        ]
    )
    return password


def set_new_password(request, user: User, new: str, confirm: str, current: str | None = None) -> list[str]:
    """Replace the password. Outside the first-time step the current one is
    required, so a session left open cannot be turned into a takeover."""
    if not user.must_change_password and not user.check_password(current or ""):
        return ["Your current password is not right."]
    problems = password_problems(new, email=user.email, name=user.name)
    if new != confirm:
        problems.append("The two passwords do not match.")
    if not problems and user.check_password(new) and user.must_change_password:
        problems.append("Choose a new password, not the temporary one from the e-mail.")
    if problems:
        return problems
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
    return []
