"""'Forgot your password?' pages, shared by the sender and the recipient portals.

Each portal's URL passes what differs (which accounts, which page frame, where
to sign in); the flow itself is :mod:`hushpost.accounts.reset`.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages as flash
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.shortcuts import redirect, render
from django.utils import timezone

from hushpost.accounts import actions, flows, passkeys, reauth, reset, throttle, twofactor
from hushpost.lib import zones
from hushpost.lib.client import client_address
from hushpost.lib.input import InputError, line
from hushpost.lib.refusals import Refused
from hushpost.lib.views import refused

TOO_MANY = "Too many requests from your network just now. Try again in a few minutes."


def forgot(request, *, find_account, frame: str, login_url: str, extra: dict, no_password_for=None):
    """``no_password_for(address)``: why no password can be reset for it (single sign-on), or None."""
    context = {"frame": frame, "login_url": login_url, "email": "", "sent": False, "error": "",
               "minutes": settings.PASSWORD_RESET_TIMEOUT // 60, **extra}
    status = 200
    if request.method == "POST":
        email = context["email"] = request.POST.get("email", "")
        try:
            email = line(email, label="The e-mail address").lower()
            validate_email(email)
        except InputError as problem:
            context["error"], status = str(problem), 400
        except ValidationError:
            context["error"], status = "Enter the e-mail address you sign in with.", 400
        else:
            elsewhere = no_password_for(email) if no_password_for else None
            if elsewhere:
                context["error"], status = elsewhere, 400
            elif not throttle.lookup_allowed(client_address(request)):
                context["error"], status = TOO_MANY, 429
            else:
                reset.request_reset(find_account(email))
                context["sent"] = True
    return render(request, "accounts/forgot.html", context, status=status)


RESET_SESSION = "hushpost_reset"
INVITATION_SESSION = "hushpost_invitation"


def choose(request, *, role: str, org, frame: str, login_url: str, forgot_url: str, extra: dict,
           kind: reset.LinkTokens = reset.tokens):
    """The e-mailed link's page (a reset link, or with ``kind`` an invitation). Its secret arrives
    in the fragment, which no server sees; the page's script posts it once (``link``) and the
    session keeps only a ticket. Without script, the page asks for the link to be pasted.
    A GET changes nothing."""
    invitation = kind is reset.invitation_tokens
    session_key = INVITATION_SESSION if invitation else RESET_SESSION
    context = {"frame": frame, "account": None, "errors": [], "forgot_url": forgot_url,
               "minutes": settings.PASSWORD_RESET_TIMEOUT // 60, "state": "opening",
               "invitation": invitation, "days": settings.INVITATION_DAYS, **extra}
    if request.method == "POST" and "link" in request.POST:
        client = client_address(request)
        link = request.POST["link"][:400]
        attempt = throttle.check_secret(
            client, throttle.account_key("reset-link", client),  # links are 128-bit: only guessing clients slow down
            lambda: reset.ticket_for_link(link, role=role, org=org, kind=kind))
        if not attempt.passed:
            context["state"] = "gone"
            if attempt.refusal is None:
                if reset.expired(link, role=role, org=org, kind=kind):
                    context["state"] = "expired"
                return render(request, "accounts/reset.html", context, status=404)
            # Refused, before the check or by the miss that began a block: say how long to wait
            # (the throttle's own words speak of signing in, which is not what happened here).
            context["wait"] = throttle.wait_text(attempt.refusal.retry_after or 60)
            return render(request, "accounts/reset.html", context, status=429)
        request.session.cycle_key()  # a session someone planted never holds the ticket
        request.session[session_key] = attempt.value
        return redirect(request.path)
    ticket = request.session.get(session_key)
    account = reset.user_for_ticket(ticket, role=role, org=org, kind=kind) if ticket else None
    if account is None:
        if ticket is not None:
            del request.session[session_key]  # used or expired; a newer link may be on its way in
        if request.method == "POST":
            context["state"] = "gone"
            return render(request, "accounts/reset.html", context, status=404)
        return render(request, "accounts/reset.html", context)
    context["account"], context["state"] = account, "choose"
    if request.method == "POST":
        errors = reset.reset_password(account, request.POST.get("password", ""), request.POST.get("confirm", ""),
                                      ticket=ticket, kind=kind)
        if not errors:
            request.session.pop(session_key, None)
            if invitation:
                flash.success(request, "Your account is ready. Sign in with your new password.")
                return redirect(login_url + "?" + urlencode({"email": account.email}))
            flash.success(request, "Your password is changed, and every other session is signed out. "
                                   "Sign in with your new password.")
            return redirect(login_url)
        context["errors"] = errors  # shown again, 400 like every form with a problem
    return render(request, "accounts/reset.html", context, status=400 if context["errors"] else 200)


SETUP = "hushpost_2fa_setup"
WRONG_CODE = "That code is not right. Use the 6-digit code your authenticator app shows now, or a recovery code."
WRONG_FIRST_CODE = "That code is not right. Check the time on your phone, and type the code shown now."


def second_factor(request, *, role: str, org, frame: str, login_url: str, next_url: str, extra: dict):
    """The second step of signing in: a code from the authenticator app, a recovery code, or a passkey
    (whose answer goes to :func:`hushpost.accounts.passkey_pages.second_step`)."""
    user = flows.pending_second_factor(request, role=role, org=org)
    if user is None:
        flash.info(request, "Sign in again: the second step waits five minutes at most.")
        return redirect(login_url)
    context = {"frame": frame, "error": "", "login_url": login_url, "code": twofactor.enabled(user),
               "passkey": passkeys.registered(user), **extra}
    if request.method != "POST":
        return render(request, "accounts/second_factor.html", context)
    attempt = throttle.check_secret(client_address(request), throttle.account_key("2fa", str(user.pk)),
                                    lambda: twofactor.verify(user, request.POST.get("code", "")), owner=user)
    if attempt.passed:
        how = attempt.value
        flows.finish_second_factor(request, user, how)
        if how == "recovery":
            left = twofactor.recovery_codes_left(user)
            flash.warning(request, f"You used a recovery code; {left} left. "
                                   "Make new ones in your account settings if you are running low.")
        return redirect(next_url)
    refusal = attempt.refusal
    context["error"] = str(refusal) if refusal else WRONG_CODE
    return render(request, "accounts/second_factor.html", context, status=429 if refusal else 400)


def two_factor_settings(request, *, frame: str, here: str, extra: dict):
    """Turn two-factor sign-in on (scan, confirm a code, keep the recovery codes) or off.

    Each change asks the owner to confirm it is them: new codes and turning it off
    every time, turning it on unless they signed in or confirmed a moment ago."""
    user = request.user
    enabled = twofactor.enabled(user)
    context = {"frame": frame, "here": here, "required": twofactor.required(user), "error": "",
               "reauth": reauth.fields(request, always=enabled), **extra}
    action = request.POST.get("action") if request.method == "POST" else None
    status = 200
    if enabled:
        if action in ("disable", "codes") and not (action == "disable" and context["required"]):
            unconfirmed = reauth.confirm(request, always=True)
            if unconfirmed is not None:
                context["error"], status = unconfirmed.inline
            elif action == "disable":
                flows.turn_off_two_factor(user)
                flash.success(request, "Two-factor sign-in is off.")
                return redirect(here)
            else:
                codes = flows.renew_recovery_codes(user)
                return render(request, "accounts/recovery_codes.html", {**context, "codes": codes})
        context["left"] = twofactor.recovery_codes_left(user)
        return render(request, "accounts/two_factor.html", context, status=status)
    secret = twofactor.secret_from_session(user, request.session.get(SETUP))
    if action == "enable" and secret:
        unconfirmed = reauth.confirm(request)
        codes = flows.turn_on_two_factor(user, secret, request.POST.get("code", "")) if unconfirmed is None else None
        if codes is not None:
            request.session.pop(SETUP, None)
            return render(request, "accounts/recovery_codes.html", {**context, "codes": codes, "first": True})
        context["error"], status = unconfirmed.inline if unconfirmed is not None else (WRONG_FIRST_CODE, 400)
        context["reauth"] = reauth.fields(request)
    if not secret:
        secret = twofactor.new_secret()
        request.session[SETUP] = twofactor.secret_for_session(user, secret)  # sealed: no secret in the session
    context.update(twofactor.provisioning(user, secret))
    return render(request, "accounts/two_factor.html", context, status=status)


def time_zone(request, *, back: str):
    """The account's time zone, chosen from zoneinfo's list, or "" for the browser's (Automatic)."""
    try:
        actions.set_time_zone(request.user, request.POST.get("time_zone", ""))
    except Refused as e:
        return refused(request, str(e), 400, heading="Not a time zone", back=back)
    chosen = request.user.time_zone
    flash.success(request, f"Times are now shown in {chosen}." if chosen
                  else "Times are now shown in your browser's time zone.")
    return redirect(back)


def time_zone_card(request, action: str) -> dict:
    """What the account page's time zone card (accounts/time_zone_card.html) shows."""
    return {"zone_choices": zones.choices(), "zone_chosen": request.user.time_zone,
            "zone_in_use": timezone.get_current_timezone_name(), "zone_action": action}
