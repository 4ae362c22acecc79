"""The sender portal's passkeys: signing in with one (or using one as the second step), adding and removing."""

from __future__ import annotations

from django.views.decorators.http import require_POST

from hushpost.accounts import passkey_pages, reauth
from hushpost.accounts.passkeys import Scope
from hushpost.lib.urls import safe_next
from hushpost.senders.views import sender_required
from hushpost.sso.routing import sso_for_org

ACCOUNT = "/app/account"
HERE = "/app/account/passkeys"


def _next(request) -> str:
    return safe_next(request, request.GET.get("next"), prefix="/app/", default="/app/")


def _password_sign_in_allowed(user) -> bool:
    # Where the organisation requires its identity provider, a passkey must not go around it.
    sso = sso_for_org(user.org)
    return sso is None or not sso.required


def sign_in(request):
    return passkey_pages.sign_in(request, scope=Scope(role="sender"), next_url=_next(request),
                                 allowed=_password_sign_in_allowed)


def second_step(request):
    return passkey_pages.second_step(request, role="sender", org=None, login_url="/login", next_url=_next(request))


@require_POST
@sender_required
@reauth.required("senders/app.html", always=True, tab="account")
def add(request):
    return passkey_pages.add(request, frame="senders/app.html", here=HERE, back=ACCOUNT, extra={"tab": "account"})


@sender_required
def keep(request):
    return passkey_pages.keep(request, back=ACCOUNT)


@require_POST
@sender_required
@reauth.required("senders/app.html", always=True, tab="account")
def remove(request):
    return passkey_pages.remove(request, back=ACCOUNT)
