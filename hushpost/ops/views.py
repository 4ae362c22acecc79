"""The operators' sign-in pages: password, then the code (or, the first time, the enrolment)."""

from __future__ import annotations

from django.contrib import messages as flash
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from hushpost.accounts import twofactor
from hushpost.accounts.views import WRONG_CODE, WRONG_FIRST_CODE
from hushpost.lib.urls import safe_next
from hushpost.ops import signin

NOT_AN_OPERATOR = "That e-mail address and password do not match an operator account."
TIMED_OUT = "Sign in again: the second step waits a few minutes at most."


def _page(request, site, template: str, context: dict, status: int = 200):
    request.current_app = site.name
    return TemplateResponse(request, template, {**site.each_context(request), **context}, status=status)


def _to(site, name: str):
    return redirect(reverse(f"admin:{name}", current_app=site.name))


def login(request, site):
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"), prefix="/ops/",
                         default="/ops/")
    if request.method == "GET" and site.has_permission(request):
        return redirect(next_url)
    context = {"title": "Sign in", "next": next_url, "email": "", "error": ""}
    if request.method != "POST":
        return _page(request, site, "ops/login.html", context)
    context["email"] = request.POST.get("username", "").strip()[:254]
    user, refusal = signin.check_password(request, context["email"], request.POST.get("password", ""))
    if user is None:
        context["error"] = str(refusal) if refusal else NOT_AN_OPERATOR
        return _page(request, site, "ops/login.html", context, status=429 if refusal else 400)
    signin.begin(request, user, next_url)
    return _to(site, "ops-code" if twofactor.enabled(user) else "ops-enrol")


def _pending_or_restart(request):
    user, next_url = signin.pending(request)
    if user is None:
        flash.info(request, TIMED_OUT)
    return user, next_url


def code(request, site):
    user, next_url = _pending_or_restart(request)
    if user is None:
        return _to(site, "login")
    if not twofactor.enabled(user):
        return _to(site, "ops-enrol")
    context = {"title": "Two-factor sign-in", "error": ""}
    if request.method == "POST":
        how, refusal = signin.verify(request, user, request.POST.get("code", ""))
        if how is not None:
            if how == "recovery":
                left = twofactor.recovery_codes_left(user)
                flash.warning(request, f"You used a recovery code; {left} left.")
            return redirect(next_url)
        context["error"] = str(refusal) if refusal else WRONG_CODE
        return _page(request, site, "ops/code.html", context, status=429 if refusal else 400)
    return _page(request, site, "ops/code.html", context)


def enrol(request, site):
    user, next_url = _pending_or_restart(request)
    if user is None:
        return _to(site, "login")
    if twofactor.enabled(user):
        return _to(site, "ops-code")
    secret = signin.enrolment_secret(request, user)
    context = {"title": "Set up two-factor sign-in", "error": ""}
    status = 200
    if request.method == "POST":
        codes, refusal = signin.enrol(request, user, request.POST.get("code", ""))
        if codes is not None:
            return _page(request, site, "ops/recovery_codes.html",
                         {"title": "Two-factor sign-in is on", "codes": codes, "next": next_url})
        context["error"] = str(refusal) if refusal else WRONG_FIRST_CODE
        status = 429 if refusal else 400
    context.update(twofactor.provisioning(user, secret))
    return _page(request, site, "ops/enrol.html", context, status=status)
