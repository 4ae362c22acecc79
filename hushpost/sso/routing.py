"""Which organisations sign their senders in through an identity provider, and the way there
from the address-first sign-in."""

from __future__ import annotations

from urllib.parse import urlencode

from django.shortcuts import render

from hushpost.sso.models import SingleSignOn

# Where the session keeps the address typed at "Next", for the identity provider's login hint
# (kept out of the URL, which servers log).
LOGIN_HINT = "hushpost_sso_hint"


def sso_for_address(email: str) -> SingleSignOn | None:
    """The single sign-on of the organisation owning the address's domain, when it is on."""
    domain = email.rsplit("@", 1)[-1].strip().lower() if "@" in email else ""
    if not domain:
        return None
    return (SingleSignOn.objects.select_related("org")
            .filter(org__domains__name=domain, org__is_active=True).exclude(protocol="").first())


def sso_for_org(org) -> SingleSignOn | None:
    """The organisation's single sign-on when it is on."""
    return SingleSignOn.objects.filter(org=org).exclude(protocol="").first()


def to_identity_provider(request, sso: SingleSignOn, email: str, next_url: str):
    """A page that moves straight on to the identity provider (and a button, if it does not).

    Not a redirect: the sign-in form posted here, and browsers hold every redirect after a form
    post to the posting page's ``form-action``, which cannot list every organisation's identity
    provider. A page's refresh is a new navigation, outside that rule.
    """
    request.session[LOGIN_HINT] = email
    return render(request, "sso/continue.html", {
        "org": sso.org, "url": start_url(sso, next_url)})


def start_url(sso: SingleSignOn, next_url: str, *, force: bool = False) -> str:
    query = {"next": next_url, **({"force": "1"} if force else {})}
    return f"/sso/{sso.org.slug}/start?" + urlencode(query)
