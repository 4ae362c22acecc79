from __future__ import annotations

from django.shortcuts import redirect, render


def csrf_failure(request, reason=""):
    return render(request, "csrf_failure.html", status=403)


def home(request):
    user = request.user
    if user.is_authenticated and user.is_sender:
        return redirect("senders:inbox")
    if user.is_authenticated and user.is_recipient:
        return redirect("recipients:inbox", org=user.org.slug)
    return redirect("senders:login")


def refused(request, text: str, status: int = 403):
    """A restriction the server enforces, explained in words."""
    return render(request, "refused.html", {"reason": text}, status=status)
