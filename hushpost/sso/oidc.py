"""OpenID Connect: the authorization code flow with PKCE, against the organisation's issuer."""

from __future__ import annotations

from hushpost.sso.signin import Identity, SSORefused  # noqa: F401


def begin(request, sso, *, login_hint: str, next_url: str, force: bool):
    """A redirect to the provider's authorization endpoint; state kept in the session."""
    raise SSORefused("misconfigured", "OpenID Connect sign-in is not available yet")


def finish(request, sso) -> tuple[Identity, str]:
    """The identity in the provider's answer, checked, and where the sender was going."""
    raise SSORefused("misconfigured", "OpenID Connect sign-in is not available yet")


def check(sso, client_secret: str) -> list[str]:
    """Problems with the settings, found by asking the provider (shown in the admin's form)."""
    return []


def redirect_uri(sso) -> str:
    from django.conf import settings
    return f"{settings.BASE_URL}/sso/{sso.org.slug}/oidc/callback"
