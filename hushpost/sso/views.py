"""The sender's way through the identity provider: start (from the address-first sign-in, or
"confirm it's you"), the provider's answer, and the service provider's own metadata (SAML).

URLs carry the organisation's slug, so an identity provider is configured with one fixed
redirect (OIDC) or assertion consumer service (SAML) address per organisation.
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from hushpost.lib.urls import safe_next
from hushpost.lib.views import refused as page_refused
from hushpost.sso import oidc, saml
from hushpost.sso.models import SingleSignOn
from hushpost.sso.routing import LOGIN_HINT
from hushpost.sso.signin import SSORefused, complete, refused, start_session

PROTOCOLS = {"oidc": oidc, "saml": saml}


def _sso(org_slug: str, protocol: str | None = None) -> SingleSignOn:
    sso = SingleSignOn.objects.select_related("org").filter(org__slug=org_slug, org__is_active=True).first()
    if sso is None or not sso.is_on or (protocol is not None and sso.protocol != protocol):
        raise Http404
    return sso


@require_GET
def start(request, org_slug):
    """Off to the identity provider; ``force`` asks it to authenticate again (confirming it's you)."""
    sso = _sso(org_slug)
    next_url = safe_next(request, request.GET.get("next"), prefix="/app/", default="/app/")
    if request.headers.get("Sec-Fetch-Site", "none") not in ("same-origin", "none"):
        # A link from another site: going on at once would let any organisation's identity provider
        # sign a visitor into an account of its choosing (login CSRF). The person decides, here.
        return render(request, "sso/continue.html", {"org": sso.org, "url": request.get_full_path(),
                                                     "from_elsewhere": True})
    hint = request.session.pop(LOGIN_HINT, "")
    force = request.GET.get("force") == "1"
    try:
        return PROTOCOLS[sso.protocol].begin(request, sso, login_hint=hint, next_url=next_url, force=force)
    except SSORefused as refusal:
        return refused(request, sso, refusal)


def _finish(request, org_slug, protocol):
    sso = _sso(org_slug, protocol)
    try:
        identity, next_url = PROTOCOLS[protocol].finish(request, sso)
        user = complete(request, sso, identity, protocol=protocol)
    except SSORefused as refusal:
        return refused(request, sso, refusal, protocol=protocol)
    start_session(request, user, identity, protocol=protocol)
    return redirect(safe_next(request, next_url, prefix="/app/", default="/app/"))


@require_GET
def oidc_callback(request, org_slug):
    return _finish(request, org_slug, "oidc")


# The identity provider posts the response from its own site: no CSRF token can be in it. What
# stands in for one is the signed response itself, its audience, its InResponseTo (the request
# this session started) and its one use.
@csrf_exempt
@require_POST
def saml_acs(request, org_slug):
    if "SAMLResponse" not in request.POST:
        return page_refused(request, "This address takes your identity provider's answer, and there is none here. "
                                     "Start again from the sign-in page.", 400, back="/login")
    if settings.SESSION_COOKIE_NAME not in request.COOKIES and not request.POST.get("again"):
        # Posted from the identity provider's site, so the browser kept back the session cookie
        # (SameSite=Lax): the same response is posted again from this site, where it is sent.
        return render(request, "sso/repost.html", {"saml_response": request.POST.get("SAMLResponse", "")})
    return _finish(request, org_slug, "saml")


@require_GET
def saml_metadata(request, org_slug):
    sso = SingleSignOn.objects.select_related("org").filter(org__slug=org_slug, org__is_active=True).first()
    if sso is None:
        raise Http404
    return saml.metadata(request, sso)
