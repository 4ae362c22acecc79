"""Passkey pages, shared by the sender and the recipient portals.

Each portal's URL passes what differs (which accounts, which page frame, where
to go next); the ceremonies are :mod:`hushpost.accounts.passkeys`.  The
browser's side is ``static/hushpost/passkeys.js``: a first POST without an
answer returns the options, a second with the authenticator's answer signs in
(or adds the passkey) and says where to go.
"""

from __future__ import annotations

from django.contrib import messages as flash
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from hushpost.accounts import flows, passkeys, throttle, twofactor
from hushpost.lib.client import client_address

ANSWER = "credential"
NOT_HERE = ("That passkey does not open an account on this page. Use a passkey you added on this portal, "
            "or sign in with your password.")
NOT_NOW = "Start again: the passkey request was no longer valid."
NOT_ADDED = "The passkey was not added. Start again from your account page."


def _options(json_text: str) -> HttpResponse:
    return HttpResponse(json_text, content_type="application/json")


def _refused(error: str, status: int) -> JsonResponse:
    return JsonResponse({"error": error}, status=status)


@require_POST
def sign_in(request, *, scope: passkeys.Scope, next_url: str, allowed=None):
    """Signing in with a passkey alone: possession and the authenticator's check of the person."""
    answer = request.POST.get(ANSWER)
    if answer is None:
        return _options(passkeys.sign_in_options(request))
    if passkeys.CEREMONY not in request.session:
        return _refused(NOT_NOW, 400)
    attempt = throttle.check_secret(
        # Not account_key: it folds case, and base64url credential ids differ by case alone.
        client_address(request), f"passkey:{passkeys.credential_id(answer)}",
        lambda: passkeys.verify_sign_in(request, answer, scope, allowed=allowed),
        owner=lambda: passkeys.owner(answer, scope))
    if attempt.passed:
        flows.start_session(request, attempt.value, how="passkey")
        return JsonResponse({"redirect": next_url})
    if attempt.refusal is not None:
        return _refused(str(attempt.refusal), 429)
    return _refused(NOT_HERE, 400)


@require_POST
def second_step(request, *, role: str, org, login_url: str, next_url: str):
    """The second step with a passkey, after the password (under the same throttle as codes)."""
    user = flows.pending_second_factor(request, role=role, org=org)
    if user is None:
        return JsonResponse({"redirect": login_url}, status=400)
    answer = request.POST.get(ANSWER)
    if answer is None:
        return _options(passkeys.second_step_options(request, user))
    attempt = throttle.check_secret(client_address(request), throttle.account_key("2fa", str(user.pk)),
                                    lambda: passkeys.verify_second_step(request, user, answer), owner=user)
    if attempt.passed:
        flows.finish_second_factor(request, user, attempt.value)
        return JsonResponse({"redirect": next_url})
    if attempt.refusal is not None:
        return _refused(str(attempt.refusal), 429)
    return _refused("That passkey is not one of this account's. Try another, or use a code.", 400)


def listing(request, url: str) -> dict:
    """For an account page's "Passkeys" card."""
    return {"passkeys": passkeys.of(request.user), "passkeys_url": url}


def add(request, *, frame: str, here: str, back: str, extra: dict):
    """Confirmed (``reauth.required(always=True)`` on the portal's URL): the page that makes the passkey;
    its answer comes back to ``here``/add."""
    user = request.user
    if not passkeys.may_use(user):
        flash.error(request, "Choose your own password before adding a passkey.")
        return redirect(back)
    if passkeys.of(user).count() >= passkeys.MAX_PER_ACCOUNT:
        flash.error(request, f"An account can hold {passkeys.MAX_PER_ACCOUNT} passkeys. Remove one first.")
        return redirect(back)
    return render(request, "accounts/passkey_add.html", {
        "frame": frame, "options": passkeys.registration_options(request, user), "here": here, "back": back,
        **extra})


@require_POST
def keep(request, *, back: str):
    try:
        passkey = passkeys.add(request, request.user, request.POST.get(ANSWER, ""))
    except passkeys.NotAccepted:
        return _refused(NOT_ADDED, 400)
    flash.success(request, f"{passkey.name}: from now on you can sign in with it.")
    return JsonResponse({"redirect": back})


def remove(request, *, back: str):
    """Confirmed like adding. The last second step of an account whose organisation requires one stays."""
    user = request.user
    keep_one = twofactor.required(user) and not twofactor.enabled(user)
    if keep_one and passkeys.of(user).count() <= 1:
        flash.error(request, "Your organisation requires two-factor sign-in: add another passkey or set up "
                             "an authenticator app before removing this one.")
        return redirect(back)
    removed = passkeys.remove(request, user, request.POST.get("passkey", ""), keep_one=keep_one)
    if removed is not None:
        flash.success(request, f"{removed.name} is removed; it no longer signs you in.")
    return redirect(back)
