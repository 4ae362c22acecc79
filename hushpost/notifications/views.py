"""The development mailbox at /dev/mailbox: every e-mail Hushpost would have sent."""

from __future__ import annotations

from csp.decorators import csp_replace
from django.conf import settings
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render

from hushpost.notifications.models import DevMail


def _enabled():
    if not settings.DEV_MAILBOX_ENABLED or settings.PRODUCTION:
        raise Http404


def mailbox(request):
    _enabled()
    mails = DevMail.objects.all()[:200]
    return render(request, "notifications/mailbox.html", {"mails": mails})


def mail_detail(request, pk):
    _enabled()
    mail = get_object_or_404(DevMail, pk=pk)
    return render(request, "notifications/mail_detail.html", {"mail": mail})


@csp_replace({"style-src": ["'unsafe-inline'"], "sandbox": [""], "frame-ancestors": ["'self'"]})
def mail_html(request, pk):
    """The HTML part as the recipient's mail client would show it, sandboxed."""
    _enabled()
    mail = get_object_or_404(DevMail, pk=pk)
    response = HttpResponse(mail.html, content_type="text/html; charset=utf-8")
    response["X-Frame-Options"] = "SAMEORIGIN"
    return response
