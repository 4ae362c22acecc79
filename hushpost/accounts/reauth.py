"""'Confirm it's you': the password, and the second factor where it is on, before a security change.

A stolen session must not become a lasting takeover.  So every change that
would let its holder keep or widen their hold asks again for what only the
owner knows, through the sign-in throttle (slowed, then locked, and the owner
told by e-mail):

* always, inline in the form: a new password, turning two-factor sign-in on
  or off, new recovery codes;
* in the admin area, where an admin makes many changes in a row: once per
  ``REAUTH_MINUTES`` (signing in counts), asked on a page of its own that
  carries the admin's form on unchanged.

A session opened by the organisation's identity provider may have no password
behind it: that page then offers to confirm at the identity provider, which is
asked to authenticate the person again (``force``), and brings them back.

The session remembers only *when* the owner last confirmed, never a secret.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest
from django.shortcuts import render
from django.urls import reverse

from hushpost.accounts import throttle, twofactor
from hushpost.accounts.sessions import SSO_SESSION
from hushpost.lib import clock
from hushpost.lib.client import client_address

CONFIRMED = "hushpost_confirmed"
PASSWORD_FIELD, CODE_FIELD = "current", "current_code"
MISSING = "Enter your current password to confirm it's you."
WRONG = "Your current password is not right."
WRONG_WITH_CODE = "Your current password or the code is not right."


def mark_confirmed(request, user, *, at: float | None = None) -> None:
    """Signing in, or answering the question, starts the confirmation window (``at``: when the
    identity provider says the person authenticated, if earlier than now)."""
    now = clock.now().timestamp()
    request.session[CONFIRMED] = {"user": user.pk, "at": min(at, now) if at is not None else now}


def recent(request) -> bool:
    stamp = request.session.get(CONFIRMED)
    if not isinstance(stamp, dict) or stamp.get("user") != request.user.pk:
        return False
    age = clock.now().timestamp() - stamp.get("at", 0)
    return 0 <= age <= settings.REAUTH_MINUTES * 60


def fields(request, *, always: bool = False) -> dict:
    """For the template: whether to ask, and whether for a code too."""
    return {"ask": always or not recent(request), "code": twofactor.enabled(request.user),
            "minutes": settings.REAUTH_MINUTES, "always": always}


def at_identity_provider(request) -> str:
    """For a session the identity provider opened: where to confirm there instead (a GET
    carrying no secret), coming back to the page asked for, or to the area's first page when
    that was an action on one item (it answers only the form's POST)."""
    user = request.user
    if not request.session.get(SSO_SESSION) or not user.is_sender or not user.org_id:
        return ""
    match = request.resolver_match
    back = request.path if match is None or not match.kwargs else "/".join(request.path.split("/")[:3]) + "/"
    return reverse("sso:start", args=[user.org.slug]) + "?" + urlencode({"force": "1", "next": back})


@dataclass(frozen=True)
class Unconfirmed:
    message: str  # empty when the question was not answered at all
    status: int

    @property
    def inline(self) -> tuple[str, int]:
        """For a form that asks in its own fields: an unanswered question is a mistake too."""
        return self.message or MISSING, max(self.status, 400)


def confirm(request, *, always: bool = False) -> Unconfirmed | None:
    """None when the owner has confirmed: recently (unless ``always``), or by this request's fields."""
    user = request.user
    if not always and recent(request):
        return None
    if PASSWORD_FIELD not in request.POST:
        return Unconfirmed("", 200)
    # Counted as sign-in attempts on the account: the same five tries, the same lock an admin can lift.
    wants_code = twofactor.enabled(user)
    attempt = throttle.check_secret(
        client_address(request), throttle.sign_in_key(user),
        # The code is tried only after the password passes, so a wrong password never uses up a recovery code.
        lambda: user.check_password(request.POST.get(PASSWORD_FIELD, "")) and (
            not wants_code or twofactor.verify(user, request.POST.get(CODE_FIELD, "")) is not None),
        owner=user)
    if attempt.passed:
        mark_confirmed(request, user)
        return None
    if attempt.refusal is not None:
        return Unconfirmed(str(attempt.refusal), 429)
    return Unconfirmed(WRONG_WITH_CODE if wants_code else WRONG, 400)


CARRIED_OVER_EXCEPT = {"csrfmiddlewaretoken", "username", PASSWORD_FIELD, CODE_FIELD}


def required(frame: str, *, always: bool | Callable[[HttpRequest], bool] = False, **extra):
    """For POST views of the admin area: ask first, on a page that posts the same form on.

    ``always``: every time (adding or removing a passkey), not once per ``REAUTH_MINUTES``;
    a function of the request says whether this request is one of those (a retention policy
    that destroys content sooner than before). An ``extra`` value that is a function is called
    with the request (the recipient's organisation)."""

    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method == "POST":
                every_time = always(request) if callable(always) else always
                problem = confirm(request, always=every_time)
                if problem is not None:
                    carried = [(name, value) for name, values in request.POST.lists()
                               if name not in CARRIED_OVER_EXCEPT for value in values]
                    return render(request, "accounts/confirm.html", {
                        "frame": frame, "error": problem.message, "carried": carried,
                        "action": request.get_full_path(), "reauth": fields(request, always=every_time),
                        # A confirmation asked every time cannot be carried back from the identity provider.
                        "identity_provider": "" if every_time else at_identity_provider(request),
                        **{name: value(request) if callable(value) else value for name, value in extra.items()}},
                        status=problem.status)
            return view(request, *args, **kwargs)

        return wrapper

    return decorate
