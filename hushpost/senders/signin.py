"""The sender portal's way in: the address first ("Next", which finds the region), then the
password and, where it is on, the second step; signing out; "Forgot your password?"; an invitation's link."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth import logout
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from hushpost.accounts import reset, throttle
from hushpost.accounts import views as account_pages
from hushpost.accounts.flows import begin_session, sender_account, sign_in_sender
from hushpost.lib.client import client_address
from hushpost.lib.input import InputError, checks_input, line
from hushpost.lib.refusals import Refused
from hushpost.lib.urls import safe_next
from hushpost.orgs.models import Domain
from hushpost.regions.discovery import region_for_domain
from hushpost.sso.routing import sso_for_address, to_identity_provider

SIGN_IN_FAILED = "That e-mail address and password don't match an account."


@checks_input("email", "password")
def login_view(request):
    """Two steps, like the big portals: the address ("Next"), then the password.

    The first step finds the organisation's region; the second signs in here.
    Both fields posted together (a password manager, a script) sign in at once.
    """
    if request.user.is_authenticated and request.user.is_sender:
        return redirect("senders:inbox")
    try:
        email = line(request.GET.get("email", ""), label=EMAIL)
        if request.method == "POST":
            email = line(request.POST.get("email", ""), label=EMAIL)
    except InputError as problem:
        return _login_page(request, "", error=str(problem))
    next_url = safe_next(request, request.GET.get("next"), prefix="/app/", default="/app/")
    if request.method != "POST":
        sso = sso_for_address(email) if _looks_like_address(email) else None
        if sso is not None and sso.required:
            # Arrived with the address (another region's "Next"): on to the identity provider.
            return to_identity_provider(request, sso, email, next_url)
        return _login_page(request, email, sso=sso)
    password = request.POST.get("password", "")
    if not _looks_like_address(email):
        return _login_page(request, "", error=ENTER_ADDRESS)
    client = client_address(request)
    try:
        elsewhere = _region_elsewhere(email, client)
    except Refused as refusal:
        return _login_page(request, "", error=str(refusal), status=429)
    if elsewhere is not None:
        # The organisation lives in another region: its own login page takes
        # over, with the address filled in (the password never leaves here).
        return redirect(elsewhere.base_url + "/login?" + urlencode({"email": email}))
    sso = sso_for_address(email)
    if sso is not None and (sso.required or request.POST.get("sso")):
        if password:
            # Never checked: the organisation's senders sign in only through its identity provider.
            return _login_page(request, email, sso=sso, status=403, error=SSO_REQUIRED.format(org=sso.org.name))
        return to_identity_provider(request, sso, email, next_url)
    if not password:
        # "Next": the same password step for every address, hosted or not.
        return _login_page(request, email, sso=sso)
    attempt = throttle.check_secret(client, throttle.account_key("sender", email),
                                    lambda: sign_in_sender(email, password),
                                    owner=lambda: sender_account(email))
    if attempt.passed:
        if begin_session(request, attempt.value):
            return redirect("/login/2fa?" + urlencode({"next": next_url}))
        return redirect(next_url)
    if attempt.refusal is not None:
        return _login_page(request, email, error=str(attempt.refusal), status=429)
    return _login_page(request, email, error=SIGN_IN_FAILED, sso=sso)


SSO_REQUIRED = ("{org} signs its staff in through its own identity provider, so passwords are not used here. "
                "Continue with single sign-on.")
ENTER_ADDRESS = "Enter your e-mail address, for example name@example.org."
EMAIL = "The e-mail address"


def _looks_like_address(email: str) -> bool:
    local, _, domain = email.rpartition("@")
    return bool(local) and "." in domain and not any(c.isspace() for c in email)


TOO_MANY_LOOKUPS = "Too many look-ups from your network just now. Try again in a few minutes."


def _login_page(request, email: str, error: str = "", status: int | None = None, sso=None):
    if email and not _looks_like_address(email):
        email = ""
    response = render(request, "senders/login.html", {"email": email, "error": error, "sso": sso},
                      status=status or (400 if error else 200))
    # "Next" may answer with a redirect to another region's login; browsers
    # hold that redirect to the page's form-action, so the listed regions join it.
    others = [r.base_url for r in settings.REGIONS.others]
    if others:
        response._csp_update = {"form-action": others}
    return response


def _region_elsewhere(email: str, client: str):
    """The other region hosting this address's domain; None for here or nowhere.

    Only regions listed in the regions file can come back, so this never
    redirects anywhere else; an unknown domain stays here like any other.
    Asking the other regions counts against the client's share of look-ups.
    """
    domain = email.rsplit("@", 1)[-1].lower() if "@" in email else ""
    if not domain or not settings.REGIONS.others or Domain.objects.filter(name=domain).exists():
        return None
    if not throttle.lookup_allowed(client):
        raise Refused(TOO_MANY_LOOKUPS)
    return region_for_domain(domain)


@require_POST
def logout_view(request):
    logout(request)
    flash.success(request, "You have signed out.")
    return redirect("senders:login")


@checks_input("email")
def forgot_password(request):
    return account_pages.forgot(request, find_account=sender_account, frame="base.html",
                                login_url="/login", extra={}, no_password_for=_sso_only)


def _sso_only(email: str) -> str | None:
    sso = sso_for_address(email)
    if sso is None or not sso.required:
        return None
    return (f"{sso.org.name} signs its staff in through its own identity provider, so Secure Messaging "
            "holds no password to reset. Sign in with single sign-on, or ask your IT team for help "
            "with your work account.")


@checks_input("password", "confirm")
def reset_password(request):
    return account_pages.choose(request, role="sender", org=None, frame="base.html",
                                login_url="/login", forgot_url="/forgot", extra={})


@checks_input("password", "confirm")
def accept_invitation(request):
    """An invitation's link: the new sender chooses their first password ("Set up your account")."""
    return account_pages.choose(request, role="sender", org=None, frame="base.html", login_url="/login",
                                forgot_url="/forgot", extra={}, kind=reset.invitation_tokens)


@checks_input("code")
def second_factor(request):
    return account_pages.second_factor(
        request, role="sender", org=None, frame="base.html", login_url="/login",
        next_url=safe_next(request, request.GET.get("next"), prefix="/app/", default="/app/"), extra={})
