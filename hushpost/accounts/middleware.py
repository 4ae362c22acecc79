from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth import logout
from django.contrib.auth.middleware import (
    AuthenticationMiddleware as DjangoAuthenticationMiddleware,
)
from django.shortcuts import redirect

from hushpost.accounts import twofactor
from hushpost.accounts.flows import second_step_needed, temporary_session_ends
from hushpost.accounts.sessions import SEEN, SSO_SESSION, STARTED, restoring
from hushpost.lib import clock


class AuthenticationMiddleware(DjangoAuthenticationMiddleware):
    """Django's ``request.user``, restored from the account read with the session row
    (one statement for both, :mod:`hushpost.accounts.sessions`) and checked by Django's
    own ``auth.get_user`` as before: the backend's rules, then the session's hash.

    Read at once rather than lazily as Django does: the middleware after this one asks for
    it on every request anyway, and a page reads ``request.user`` hundreds of times, each
    through the lazy wrapper's attribute proxy."""

    def process_request(self, request):
        super().process_request(request)
        request.user = signed_in_user(request)


def signed_in_user(request):
    if not hasattr(request, "_cached_user"):
        token = restoring.set(request.session)
        try:
            request._cached_user = auth.get_user(request)
        finally:
            restoring.reset(token)
    return request._cached_user


class PasswordChangeRequiredMiddleware:
    """A recipient holding a temporary password, or a sender holding one chosen by someone
    else (``hushpost user add``), can do nothing but replace it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is None
            or not user.is_authenticated
            or not user.must_change_password
            or request.path.startswith("/static/")
        ):
            return self.get_response(request)
        if user.is_sender and request.session.get(SSO_SESSION):
            # Signed in through the identity provider: the password someone else chose was not used.
            return self.get_response(request)
        if user.is_sender:
            allowed, portal = ("/app/account", "/logout", *reset_pages(user)), "/app/"
        elif user.is_recipient:
            ends = temporary_session_ends(user)
            if ends is None or ends <= clock.now():
                # The temporary password's one session is over; signing in
                # again offers a new temporary password.
                slug = user.org.slug
                logout(request)
                messages.error(request, "That session has timed out. Sign in again to get a new temporary password.")
                return redirect(f"/r/{slug}/login")
            allowed = (f"/r/{user.org.slug}/password", f"/r/{user.org.slug}/logout", *reset_pages(user))
            portal = f"/r/{user.org.slug}/"
        else:
            return self.get_response(request)
        if request.path not in allowed:
            target = allowed[0]
            if request.method == "GET" and request.path.startswith(portal):
                # Come back to the page asked for (the message the e-mail linked to) once the password is set.
                target += "?" + urlencode({"next": request.get_full_path()})
            return redirect(target)
        return self.get_response(request)


def reset_pages(user) -> tuple[str, ...]:
    # A reset link opened while signed in stays on its page: a redirect would carry
    # the link's secret (after '#') on to the next address and into the history.
    return ("/reset", "/welcome", f"/r/{user.org.slug}/reset")


class SessionLimitsMiddleware:
    """Sessions end after a while without activity, and after a fixed lifetime anyway.

    Idle limits: ``SENDER_IDLE_MINUTES`` and ``RECIPIENT_IDLE_MINUTES`` (an
    organisation may set its own); lifetime: ``SESSION_HOURS``.  Activity is
    written to the session at most every ``TOUCH_SECONDS``, not on every request.
    """

    TOUCH_SECONDS = 30

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        # An organisation's public branding files are cached for a year by anyone: fetching one is
        # no activity, and its response must never carry the session's cookie.
        if (user is not None and user.is_authenticated and (user.is_sender or user.is_recipient)
                and not request.path.startswith("/brand/")):
            self._check(request, user)
        return self.get_response(request)

    def _check(self, request, user) -> None:
        now = clock.now().timestamp()
        session = request.session
        started = session.setdefault(STARTED, now)
        seen = session.get(SEEN, now)
        idle = idle_minutes(user) * 60
        reason = ""
        if now - seen > idle:
            reason = f"You were signed out after {idle // 60} minutes without activity. Sign in again to continue."
        elif now - started > settings.SESSION_COOKIE_AGE:
            reason = "Your session reached its time limit. Sign in again to continue."
        if reason:
            # The request goes on, signed out: a page asks to sign in (and comes back
            # after), and a sign-in posted from an old tab simply signs in.
            logout(request)
            messages.info(request, reason)
            return None
        if now - seen >= self.TOUCH_SECONDS or SEEN not in session:
            session[SEEN] = now
        return None




def idle_minutes(user) -> int:
    field = "sender_idle_minutes" if user.is_sender else "recipient_idle_minutes"
    default = settings.SENDER_IDLE_MINUTES if user.is_sender else settings.RECIPIENT_IDLE_MINUTES
    return getattr(user.org, field, None) or default


class TwoFactorRequiredMiddleware:
    """Where the organisation requires two-factor sign-in, nothing else opens until it is set up."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        # A temporary password is replaced first (the middleware before this one), then this.
        if user is not None and user.is_authenticated and (user.is_sender or user.is_recipient) \
                and not user.must_change_password and not request.path.startswith("/static/"):
            if twofactor.required(user) and not second_step_needed(user):
                here = "/app/account/2fa" if user.is_sender else f"/r/{user.org.slug}/2fa"
                # A passkey satisfies the policy too: the set-up page offers one.
                passkey_pages = "/app/account/passkeys" if user.is_sender else f"/r/{user.org.slug}/passkeys"
                allowed = {here, "/logout", f"/r/{user.org.slug}/logout", *reset_pages(user)}
                if request.path not in allowed and not request.path.startswith(passkey_pages):
                    return redirect(here)
        return self.get_response(request)
