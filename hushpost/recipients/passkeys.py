"""The recipient portal's passkeys: signing in with one on the organisation's portal (or using one as
the second step), adding and removing."""

from __future__ import annotations

from django.views.decorators.http import require_POST

from hushpost.accounts import passkey_pages, reauth
from hushpost.accounts.passkeys import Scope
from hushpost.lib.urls import safe_next
from hushpost.recipients.views import _org, recipient_required

FRAME = "recipients/portal.html"


def _next(request, organisation) -> str:
    prefix = f"/r/{organisation.slug}/"
    return safe_next(request, request.GET.get("next"), prefix=prefix, default=prefix)


def sign_in(request, org_slug):
    organisation = _org(org_slug)
    return passkey_pages.sign_in(request, scope=Scope(role="recipient", org=organisation),
                                 next_url=_next(request, organisation))


def second_step(request, org_slug):
    organisation = _org(org_slug)
    return passkey_pages.second_step(request, role="recipient", org=organisation,
                                     login_url=f"/r/{organisation.slug}/login", next_url=_next(request, organisation))


def _pages(request) -> tuple[str, str]:
    return f"/r/{request.org.slug}/passkeys", f"/r/{request.org.slug}/password"


@require_POST
@recipient_required
@reauth.required(FRAME, always=True, org=lambda request: request.org)
def add(request):
    here, back = _pages(request)
    return passkey_pages.add(request, frame=FRAME, here=here, back=back, extra={"org": request.org})


@recipient_required
def keep(request):
    return passkey_pages.keep(request, back=_pages(request)[1])


@require_POST
@recipient_required
@reauth.required(FRAME, always=True, org=lambda request: request.org)
def remove(request):
    return passkey_pages.remove(request, back=_pages(request)[1])
