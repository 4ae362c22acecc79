from __future__ import annotations

from urllib.parse import urlencode

from django.shortcuts import redirect


class PasswordChangeRequiredMiddleware:
    """A recipient holding a temporary password can do nothing but replace it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and user.must_change_password
            and user.org_id
            and not request.path.startswith("/static/")
        ):
            allowed = (f"/r/{user.org.slug}/password", f"/r/{user.org.slug}/logout")
            if request.path not in allowed:
                target = allowed[0]
                if request.method == "GET" and request.path.startswith(f"/r/{user.org.slug}/"):
                    # Come back to the message the e-mail linked to once the password is set.
                    target += "?" + urlencode({"next": request.get_full_path()})
                return redirect(target)
        return self.get_response(request)
