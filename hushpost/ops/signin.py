"""Operators' sign-in at /ops/: the password, then an authenticator code.

An operator without two-factor sign-in enrols right after the password, before
any page of /ops/ opens; accounts made by ``hushpost createsuperuser`` start
without it, so their first sign-in is the enrolment.  Until the second step
passes, the session only remembers which operator is half signed in, and for a
few minutes; Django's ``login`` happens only then, and the session is marked as
having passed both steps (``has_permission`` of the site reads that mark).
Every secret typed here is checked through the throttle's one flow,
:func:`hushpost.accounts.throttle.check_secret`.
"""

from __future__ import annotations

from functools import cache

from django.contrib.auth import login

from hushpost.accounts import throttle, twofactor
from hushpost.accounts.flows import BACKEND, verify_password
from hushpost.accounts.models import User
from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock
from hushpost.lib.client import client_address
from hushpost.lib.refusals import Refused

PENDING = "hushpost_ops_pending"
VERIFIED = "hushpost_ops_verified"
SETUP = "hushpost_ops_setup"
# The code step waits five minutes, as the portals' does; enrolling (installing
# an app, scanning) gets ten.
CODE_SECONDS, ENROL_SECONDS = 300, 600
WHERE = "operators' admin"


def _operators():
    return User.objects.filter(role=User.Role.OPERATOR, is_active=True, is_staff=True)


def check_password(request, email: str, password: str) -> tuple[User | None, Refused | None]:
    """The operator whose password this is, or None; the refusal while throttled."""
    email = email.strip().lower()[:254]
    operator = cache(lambda: _operators().filter(email=email).first())  # looked up once, if the attempt is allowed
    attempt = throttle.check_secret(
        client_address(request), throttle.account_key("ops", email),
        # the same Argon2 work whether or not the account exists
        lambda: operator() if verify_password(operator(), password) else None,
        owner=operator)
    return attempt.value, attempt.refusal


def begin(request, user: User, next_url: str) -> None:
    """The password passed: wait for the code (or the enrolment), knowing only who."""
    request.session.cycle_key()
    request.session.pop(SETUP, None)
    request.session[PENDING] = {"user": user.pk, "at": clock.now().timestamp(), "next": next_url}


def pending(request) -> tuple[User | None, str]:
    """The half signed-in operator (None once the step's time is up) and where they were going."""
    state = request.session.get(PENDING)
    if not isinstance(state, dict):
        return None, ""
    user = _operators().filter(pk=state.get("user")).first()
    limit = CODE_SECONDS if user is not None and twofactor.enabled(user) else ENROL_SECONDS
    if user is None or clock.now().timestamp() - state.get("at", 0) > limit:
        return None, ""
    return user, state.get("next", "")


def enrolment_secret(request, user: User) -> str:
    """The secret being enrolled: made once per half signed-in session, kept only there, sealed."""
    secret = twofactor.secret_from_session(user, request.session.get(SETUP))
    if not secret:
        secret = twofactor.new_secret()
        request.session[SETUP] = twofactor.secret_for_session(user, secret)
    return secret


def _second_step(request, user: User, check) -> tuple[object, Refused | None]:
    """Run ``check`` under the throttle of the account's second step; its result or the refusal."""
    attempt = throttle.check_secret(client_address(request), throttle.account_key("2fa", str(user.pk)), check,
                                    owner=user)
    return attempt.value, attempt.refusal


def enrol(request, user: User, code: str) -> tuple[list[str] | None, Refused | None]:
    """Turn two-factor sign-in on with the code the app shows, and sign in: the recovery codes."""
    secret = twofactor.secret_from_session(user, request.session.get(SETUP))
    codes, refusal = _second_step(
        request, user, lambda: twofactor.enable(user, secret, code, only_if_off=True) if secret else None)
    if codes is not None:
        record(AuditEvent.Action.ADMIN, actor=user, request=request, obj=user,
               detail=f"{WHERE}: turned on two-factor sign-in")
        _finish(request, user, "enrolled")
    return codes, refusal


def verify(request, user: User, code: str) -> tuple[str | None, Refused | None]:
    """'app' or 'recovery' when the code passes, and sign in."""
    how, refusal = _second_step(request, user, lambda: twofactor.verify(user, code))
    if how is not None:
        _finish(request, user, how)
    return how, refusal


def _finish(request, user: User, how: str) -> None:
    request.session.pop(PENDING, None)
    request.session.pop(SETUP, None)
    login(request, user, backend=BACKEND)  # rotates the session key
    request.session[VERIFIED] = user.pk
    record(AuditEvent.Action.SIGN_IN, actor=user, request=request, detail=f"{WHERE}, second step: {how}")


def is_verified(request) -> bool:
    """Signed in through both steps, as an active operator who still has two-factor sign-in."""
    user = request.user
    return (
        user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.role == User.Role.OPERATOR
        and request.session.get(VERIFIED) == user.pk
        and twofactor.enabled(user)
    )
