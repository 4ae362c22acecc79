"""The organisation admin area: senders, recipients and policy, for that organisation only."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages as flash
from django.contrib.auth import update_session_auth_hash
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from hushpost.accounts.actions import (
    AccountError,
    create_sender,
    reset_recipient_password,
    reset_sender_password,
    set_active,
)
from hushpost.accounts.models import User
from hushpost.notifications.models import Notification
from hushpost.orgadmin.access import access_member_for_admin
from hushpost.orgadmin.forms import AddSenderForm, PolicyForm
from hushpost.senders.views import sender_required


def org_admin_required(view):
    @sender_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_org_admin:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


@org_admin_required
def senders(request):
    form = AddSenderForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = create_sender(
                email=form.cleaned_data["email"], name=form.cleaned_data["name"],
                password=form.cleaned_data["password"], admin=form.cleaned_data["admin"],
                org=request.user.org,
            )
        except AccountError as e:
            form.add_error(None, str(e))
        else:
            flash.success(request, f"{user.email} can now sign in and send secure messages.")
            return redirect("orgadmin:senders")
    people = User.objects.filter(org=request.user.org, role=User.Role.SENDER).order_by("email")
    return render(
        request, "orgadmin/senders.html",
        {"form": form, "people": people, "tab": "admin", "section": "senders"},
        status=400 if request.method == "POST" else 200,
    )


@require_POST
@org_admin_required
def sender_active(request, user_id):
    member = access_member_for_admin(request.user, user_id, User.Role.SENDER)
    if member.pk == request.user.pk:
        flash.error(request, "You cannot disable your own account.")
        return redirect("orgadmin:senders")
    active = request.POST.get("active") == "1"
    try:
        set_active(member, active, by=request.user)
    except AccountError as exc:
        flash.error(request, str(exc))
        return redirect("orgadmin:senders")
    flash.success(request, f"{member.email} is {'enabled' if active else 'disabled'}.")
    return redirect("orgadmin:senders")


@org_admin_required
def sender_password(request, user_id):
    member = access_member_for_admin(request.user, user_id, User.Role.SENDER)
    errors: list[str] = []
    if request.method == "POST":
        errors = reset_sender_password(member, request.POST.get("password", ""))
        if not errors and member.pk == request.user.pk:
            update_session_auth_hash(request, member)  # other sessions end, this one stays
        if not errors:
            flash.success(request, f"{member.email} has a new password; their sessions have ended.")
            return redirect("orgadmin:senders")
    return render(
        request, "orgadmin/sender_password.html",
        {"member": member, "errors": errors, "tab": "admin", "section": "senders"},
        status=400 if errors else 200,
    )


@org_admin_required
def recipients(request):
    query = request.GET.get("q", "").strip()[:254]
    people = User.objects.filter(org=request.user.org, role=User.Role.RECIPIENT).order_by("email")
    if query:
        people = people.filter(Q(email__icontains=query) | Q(name__icontains=query))
    page = Paginator(people, 50).get_page(request.GET.get("page"))
    latest = {}
    for n in Notification.objects.filter(
        user__in=list(page.object_list), kind=Notification.Kind.PASSWORD
    ).order_by("id"):
        latest[n.user_id] = n
    rows = [(p, latest.get(p.pk)) for p in page.object_list]
    return render(
        request, "orgadmin/recipients.html",
        {"rows": rows, "page": page, "q": query, "tab": "admin", "section": "recipients"},
    )


@require_POST
@org_admin_required
def recipient_reset(request, user_id):
    member = access_member_for_admin(request.user, user_id, User.Role.RECIPIENT)
    reset_recipient_password(member)
    flash.success(request, f"A new Secure Messaging Password Notification is on its way to {member.email}.")
    return redirect("orgadmin:recipients")


@org_admin_required
def policy(request):
    org = request.user.org
    form = PolicyForm(request.POST or None, instance=org)
    if request.method == "POST" and form.is_valid():
        form.save()
        flash.success(request, "The organisation's settings are saved.")
        return redirect("orgadmin:policy")
    return render(
        request, "orgadmin/policy.html",
        {"form": form, "tab": "admin", "section": "policy"},
        status=400 if request.method == "POST" else 200,
    )
