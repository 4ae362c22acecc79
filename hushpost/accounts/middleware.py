from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import logout
from django.shortcuts import redirect

from hushpost.accounts.flows import temporary_session_ends
from hushpost.lib import clock


class PasswordChangeRequiredMiddleware:
    """A recipient holding a temporary password can do nothing but replace it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and user.is_recipient
            and user.must_change_password
            and not request.path.startswith("/static/")
        ):
            ends = temporary_session_ends(user)
            if ends is None or ends <= clock.now():
                # The temporary password's one session is over; signing in
                # again offers a new temporary password.
                slug = user.org.slug
                logout(request)
                messages.error(request, "That session has timed out. Sign in again to get a new temporary password.")
                return redirect(f"/r/{slug}/login")
            allowed = (f"/r/{user.org.slug}/password", f"/r/{user.org.slug}/logout")
            if request.path not in allowed:
                target = allowed[0]
                if request.method == "GET" and request.path.startswith(f"/r/{user.org.slug}/"):
                    # Come back to the message the e-mail linked to once the password is set.
                    target += "?" + urlencode({"next": request.get_full_path()})
                return redirect(target)
        return self.get_response(request)
