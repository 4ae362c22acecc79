from __future__ import annotations

from django.http.multipartparser import MultiPartParserError
from django.shortcuts import redirect, render

UNREADABLE_FORM = ("The form could not be read, and nothing of it was kept: a part of it is too large to "
                   "read, usually a file whose name is too long (a file's name and type must fit in 1 KB). "
                   "Go back, rename the file and attach it again.")


def csrf_failure(request, reason=""):
    return render(request, "csrf_failure.html", status=403)


def home(request):
    user = request.user
    if user.is_authenticated and user.is_sender:
        return redirect("senders:inbox")
    if user.is_authenticated and user.is_recipient:
        return redirect("recipients:inbox", org_slug=user.org.slug)
    return redirect("senders:login")


def refused(request, text: str, status: int = 403, *, heading: str = "Not allowed", back: str = ""):
    """What the server will not do, explained in words (``back``: where the Back button leads)."""
    return render(request, "refused.html", {"reason": text, "heading": heading, "back": back}, status=status)


def bad_request(request, exception=None):
    """Django's 400, in words: a form it could not read says what to do about it."""
    if isinstance(exception, MultiPartParserError):
        reason = UNREADABLE_FORM
    else:
        reason = "The request could not be understood. Go back and try again."
    return refused(request, reason, 400, heading="Could not be read")
