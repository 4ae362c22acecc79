"""The admin area's Retention tab: the policy, what the next purge removes, and legal holds.

Changing the policy and placing or releasing a hold are confirmed like every other
change of the admin area (``reauth``): each one decides what evidence survives. The
two that let content be destroyed sooner, a policy shorter than before (or newly on)
and releasing a hold, ask every time, however recently the admin confirmed: a
session left open must not be enough to destroy evidence.
"""

from __future__ import annotations

from django.contrib import messages as flash
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from hushpost.accounts import reauth
from hushpost.accounts.models import User
from hushpost.lib.input import checks_input
from hushpost.lib.refusals import Refused
from hushpost.messaging.threads import ancestors
from hushpost.orgadmin.access import (
    access_hold_for_admin,
    access_message_for_admin,
    member_by_address_for_admin,
)
from hushpost.orgadmin.forms import HoldForm, RetentionPolicyForm
from hushpost.orgadmin.views import ADMIN_FRAME, confirmed, org_admin_required
from hushpost.retention import actions, summary
from hushpost.retention.actions import DAYS_FIELDS
from hushpost.retention.plan import policy_of


def _page(request, *, policy_form=None, hold_form=None, picked=None, status=200):
    org = request.user.org
    policy = policy_of(org)
    if policy_form is None:
        policy_form = RetentionPolicyForm(initial={name: getattr(policy, name) for name in DAYS_FIELDS})
    if hold_form is None:
        hold_form = HoldForm(initial={"kind": "conversation" if picked else "sender",
                                      "conversation": picked.uid if picked else ""})
    holds = [(hold, summary.what_is_held(hold)) for hold in summary.active_holds(org)]
    released = [(hold, summary.what_is_held(hold)) for hold in summary.released_holds(org)]
    return render(request, "orgadmin/retention.html", {
        "tab": "admin", "section": "retention", "policy": policy, "policy_form": policy_form,
        "hold_form": hold_form, "picked": picked, "holds": holds, "released": released,
        "preview": summary.next_purge(org) if policy.is_on else None,
    }, status=status)


def _picked(request, uid: str):
    """The conversation a Messages tab row asked to hold, as its first message (404 outside the organisation)."""
    if not uid:
        return None
    message = access_message_for_admin(request.user, uid)
    try:
        return ancestors(message)[-1]
    except Refused:
        return message


def _destroys_sooner(request) -> bool:
    """Whether the posted policy purges anything sooner than the saved one: a count that was
    never and is now set, or is now shorter. An invalid form changes nothing, so asks nothing extra."""
    form = RetentionPolicyForm(request.POST)
    if not form.is_valid():
        return False
    policy = policy_of(request.user.org)
    return any(new is not None and (old is None or new < old)
               for old, new in ((getattr(policy, name), form.cleaned_data[name]) for name in DAYS_FIELDS))


@org_admin_required
@reauth.required(ADMIN_FRAME, always=_destroys_sooner, tab="admin")
def retention(request):
    """The policy form (POST saves it), the next purge's list and the holds."""
    if request.method != "POST":
        return _page(request, picked=_picked(request, request.GET.get("conversation", "")))
    form = RetentionPolicyForm(request.POST)
    if not form.is_valid():
        return _page(request, policy_form=form, status=400)
    actions.set_policy(request.user.org, by=request.user, request=request, **form.cleaned_data)
    flash.success(request, "The retention policy is saved. The next purge follows it.")
    return redirect("orgadmin:retention")


@require_POST
@checks_input("address", "reason")
@org_admin_required
@confirmed
def hold_place(request):
    form = HoldForm(request.POST)
    picked = None
    if form.is_valid():
        data = form.cleaned_data
        if data["kind"] == "conversation":
            picked = _picked(request, data["conversation"])
            hold = actions.place_hold(request.user.org, reason=data["reason"], by=request.user,
                                      request=request, conversation=picked)
        else:
            role = User.Role.SENDER if data["kind"] == "sender" else User.Role.RECIPIENT
            account = member_by_address_for_admin(request.user, data["address"], role)
            if account is None:
                form.add_error("address", f"No {data['kind']} of {request.user.org.name} has that address.")
                return _page(request, hold_form=form, status=400)
            hold = actions.place_hold(request.user.org, reason=data["reason"], by=request.user,
                                      request=request, account=account)
        flash.success(request, f"Legal hold placed: {summary.what_is_held(hold)} is kept until it is released.")
        return redirect("orgadmin:retention")
    return _page(request, hold_form=form, status=400)


@require_POST
@org_admin_required
@reauth.required(ADMIN_FRAME, always=True, tab="admin")
def hold_release(request, hold_id):
    hold = access_hold_for_admin(request.user, hold_id)
    if actions.release_hold(hold, by=request.user, request=request):
        flash.success(request, f"Hold released: {summary.what_is_held(hold)} follows the retention policy again.")
    else:
        flash.success(request, "That hold was already released.")
    return redirect("orgadmin:retention")
