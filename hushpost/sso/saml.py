"""SAML 2.0: the Web Browser SSO profile (HTTP-Redirect request, HTTP-POST response)."""

from __future__ import annotations

from django.http import HttpResponse

from hushpost.sso.signin import Identity, SSORefused  # noqa: F401


def begin(request, sso, *, login_hint: str, next_url: str, force: bool):
    raise SSORefused("misconfigured", "SAML sign-in is not available yet")


def finish(request, sso) -> tuple[Identity, str]:
    raise SSORefused("misconfigured", "SAML sign-in is not available yet")


def check(sso) -> list[str]:
    return []


def metadata(request, sso) -> HttpResponse:
    return HttpResponse(status=404)


def entity_id(sso) -> str:
    from django.conf import settings
    return f"{settings.BASE_URL}/sso/{sso.org.slug}/saml/metadata"


def acs_url(sso) -> str:
    from django.conf import settings
    return f"{settings.BASE_URL}/sso/{sso.org.slug}/saml/acs"
