"""'Forgot your password?' pages, shared by the sender and the recipient portals.

Each portal's URL passes what differs (which accounts, which page frame, where
to sign in); the flow itself is :mod:`hushpost.accounts.reset`.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages as flash
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.shortcuts import redirect, render

from hushpost.accounts import reset, throttle
from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent

TOO_MANY = "Too many requests from your network just now. Try again in a few minutes."


def forgot(request, *, find_account, frame: str, login_url: str, extra: dict):
    context = {"frame": frame, "login_url": login_url, "email": "", "sent": False, "error": "",
               "minutes": settings.PASSWORD_RESET_TIMEOUT // 60, **extra}
    status = 200
    if request.method == "POST":
        email = context["email"] = request.POST.get("email", "").strip().lower()[:254]
        try:
            validate_email(email)
        except ValidationError:
            context["error"], status = "Enter the e-mail address you sign in with.", 400
        else:
            if not throttle.lookup_allowed(throttle.client_address(request)):
                context["error"], status = TOO_MANY, 429
            else:
                reset.request_reset(find_account(email))
                context["sent"] = True
    return render(request, "accounts/forgot.html", context, status=status)


RESET_SESSION = "hushpost_reset"
CHOOSE_STEP = "set-password"


def choose(request, uidb64: str, token: str, *, role: str, org, frame: str, login_url: str,
           forgot_url: str, extra: dict):
    """The e-mailed link. Its token moves into the session at once, so it is not in the
    address bar, the history or any log while the password is chosen; a GET changes nothing."""
    client = throttle.client_address(request)
    per_client = throttle.account_key("reset-link", client)  # links are 128-bit: only guessing clients slow down
    context = {"frame": frame, "account": None, "errors": [], "forgot_url": forgot_url,
               "minutes": settings.PASSWORD_RESET_TIMEOUT // 60, **extra}
    prefix = forgot_url.rsplit("/forgot", 1)[0]
    if token != CHOOSE_STEP:
        refusal = throttle.check(client, per_client)
        account = None if refusal else reset.user_for_link(uidb64, token, role=role, org=org)
        if account is None:
            if refusal is None:
                throttle.failed(client, per_client)
            return render(request, "accounts/reset.html", context, status=429 if refusal else 404)
        throttle.succeeded(per_client, client)
        request.session[RESET_SESSION] = {"uid": uidb64, "token": token}
        return redirect(f"{prefix}/reset/{uidb64}/{CHOOSE_STEP}")
    stored = request.session.get(RESET_SESSION) or {}
    account = None
    if stored.get("uid") == uidb64:
        account = reset.user_for_link(uidb64, stored.get("token", ""), role=role, org=org)
    if account is None:
        return render(request, "accounts/reset.html", context, status=404)
    context["account"] = account
    if request.method == "POST":
        errors = reset.reset_password(account, request.POST.get("password", ""), request.POST.get("confirm", ""),
                                      token=stored["token"])
        if not errors:
            request.session.pop(RESET_SESSION, None)
            throttle.succeeded(throttle.account_key(f"r{account.org_id}" if account.is_recipient else "sender",
                                                    account.email))
            flash.success(request, "Your password is changed, and every other session is signed out. "
                                   "Sign in with your new password.")
            return redirect(login_url)
        context["errors"] = errors  # shown again with 200: nothing here for a log to keep
    return render(request, "accounts/reset.html", context)


SETUP = "hushpost_2fa_setup"
WRONG_CODE = "That code is not right. Use the 6-digit code your authenticator app shows now, or a recovery code."


def second_factor(request, *, role: str, org, frame: str, login_url: str, next_url: str, extra: dict):
    """The second step of signing in: a code from the authenticator app, or a recovery code."""
    from hushpost.accounts import flows, twofactor

    user = flows.pending_second_factor(request, role=role, org=org)
    if user is None:
        flash.info(request, "Sign in again: the second step waits five minutes at most.")
        return redirect(login_url)
    context = {"frame": frame, "error": "", "login_url": login_url, **extra}
    if request.method != "POST":
        return render(request, "accounts/second_factor.html", context)
    client = throttle.client_address(request)
    account = throttle.account_key("2fa", str(user.pk))
    refusal = throttle.check(client, account)
    if refusal is None:
        how = twofactor.verify(user, request.POST.get("code", ""))
        if how is not None:
            throttle.succeeded(account, client)
            flows.finish_second_factor(request, user, how)
            if how == "recovery":
                left = twofactor.recovery_codes_left(user)
                flash.warning(request, f"You used a recovery code; {left} left. "
                                       "Make new ones in your account settings if you are running low.")
            return redirect(next_url)
        refusal = throttle.failed(client, account, user=user)
    context["error"] = refusal.message if refusal else WRONG_CODE
    return render(request, "accounts/second_factor.html", context, status=429 if refusal else 400)


def two_factor_settings(request, *, frame: str, here: str, extra: dict):
    """Turn two-factor sign-in on (scan, confirm a code, keep the recovery codes) or off."""
    from hushpost.accounts import twofactor

    user = request.user
    context = {"frame": frame, "here": here, "required": twofactor.required(user), "error": "", **extra}
    action = request.POST.get("action") if request.method == "POST" else None
    if twofactor.enabled(user):
        if action == "disable" and not context["required"]:
            if not user.check_password(request.POST.get("password", "")):
                context["error"] = "Your password is not right."
            else:
                twofactor.disable(user)
                record(AuditEvent.Action.ADMIN, actor=user, request=request, detail="turned off two-factor sign-in")
                flash.success(request, "Two-factor sign-in is off.")
                return redirect(here)
        elif action == "codes":
            codes = twofactor.enable_new_codes(user)
            record(AuditEvent.Action.ADMIN, actor=user, request=request, detail="made new recovery codes")
            return render(request, "accounts/recovery_codes.html", {**context, "codes": codes})
        context["left"] = twofactor.recovery_codes_left(user)
        return render(request, "accounts/two_factor.html", context, status=400 if context["error"] else 200)
    secret = request.session.get(SETUP)
    if action == "enable" and secret:
        codes = twofactor.enable(user, secret, request.POST.get("code", ""))
        if codes is not None:
            request.session.pop(SETUP, None)
            record(AuditEvent.Action.ADMIN, actor=user, request=request, detail="turned on two-factor sign-in")
            return render(request, "accounts/recovery_codes.html", {**context, "codes": codes, "first": True})
        context["error"] = "That code is not right. Check the time on your phone, and type the code shown now."
    if not secret:
        secret = request.session[SETUP] = twofactor.new_secret()
    context["uri"], context["qr"] = twofactor.provisioning(user, secret)
    context["secret"] = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    return render(request, "accounts/two_factor.html", context, status=400 if context["error"] else 200)
