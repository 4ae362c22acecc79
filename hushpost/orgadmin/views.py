"""The organisation admin area: senders, recipients and policy, for that organisation only."""

from __future__ import annotations

import re
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages as flash
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from hushpost.accounts import invitations, reauth, reset, throttle
from hushpost.accounts.actions import (
    create_sender,
    reset_recipient_password,
    set_active,
)
from hushpost.accounts.models import User
from hushpost.audit.actions import now_label
from hushpost.audit.models import AuditEvent
from hushpost.lib.input import checks_input
from hushpost.lib.refusals import Refused
from hushpost.messaging.actions import recall
from hushpost.notifications.models import Notification
from hushpost.orgadmin import audit_csv, importing, search
from hushpost.orgadmin.access import access_member_for_admin, access_message_for_admin
from hushpost.orgadmin.forms import (
    MESSAGE_STATUSES,
    AddSenderForm,
    AuditFilters,
    MessageFilters,
    PolicyForm,
    ProvisioningTokenForm,
    RecipientSearch,
)
from hushpost.orgs.actions import change_policy
from hushpost.scim import tokens
from hushpost.scim.resources import base_url
from hushpost.senders.views import sender_required
from hushpost.sso.actions import save_single_sign_on, service_provider_values
from hushpost.sso.forms import SingleSignOnForm
from hushpost.sso.models import SingleSignOn
from hushpost.sso.routing import sso_for_org

QUERY = re.compile(r"[A-Za-z0-9_.~%+=&-]*")  # what urlencode writes, and nothing a header could break on
# Changes to accounts and policy ask the admin to confirm it is them (hushpost/accounts/reauth.py).
ADMIN_FRAME = "senders/app.html"
SSO_TYPED = ("oidc_issuer", "oidc_client_id", "oidc_client_secret", "saml_metadata_url", "saml_metadata_xml",
             "group_claim", "admin_group")
confirmed = reauth.required(ADMIN_FRAME, tab="admin")


def org_admin_required(view):
    @sender_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_org_admin:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


@checks_input("email", "name")
@org_admin_required
@confirmed
def senders(request):
    """The organisation's senders; adding one sends them an invitation to choose their own password."""
    form = AddSenderForm(request.POST or None)
    sso = sso_for_org(request.user.org)
    if request.method == "POST" and form.is_valid():
        try:
            user = create_sender(
                email=form.cleaned_data["email"], name=form.cleaned_data["name"],
                admin=form.cleaned_data["admin"], org=request.user.org, by=request.user,
            )
        except Refused as e:
            form.add_error(None, str(e))
        else:
            flash.success(request, f"An invitation is on its way to {user.email}. " + (
                "They sign in with single sign-on." if sso is not None and sso.required else
                f"It works once, for {settings.INVITATION_DAYS} days; they choose their own password."))
            return redirect("orgadmin:senders")
    people = list(User.objects.filter(org=request.user.org, role=User.Role.SENDER).order_by("email"))
    for person in people:
        person.locked_until = throttle.locked_until(person)
        # With single sign-on on, a sender with no password of their own signs in through it.
        person.sso = sso is not None and not person.has_usable_password()
        person.invited = not person.sso and invitations.is_invited(person)
    return render(
        request, "orgadmin/senders.html",
        {"form": form, "people": people, "tab": "admin", "section": "senders"},
        status=400 if request.method == "POST" else 200,
    )


@require_POST
@org_admin_required
@confirmed
def sender_active(request, user_id):
    member = access_member_for_admin(request.user, user_id, User.Role.SENDER)
    if member.pk == request.user.pk:
        flash.error(request, "You cannot disable your own account.")
        return redirect("orgadmin:senders")
    active = request.POST.get("active") == "1"
    try:
        set_active(member, active, by=request.user)
    except Refused as exc:
        flash.error(request, str(exc))
        return redirect("orgadmin:senders")
    flash.success(request, f"{member.email} is {'enabled' if active else 'disabled'}.")
    return redirect("orgadmin:senders")


@require_POST
@org_admin_required
@confirmed
def sender_reset(request, user_id):
    """E-mail the sender a reset link. An admin never chooses or sees anyone's password."""
    member = access_member_for_admin(request.user, user_id, User.Role.SENDER)
    if not member.is_active:
        flash.error(request, f"{member.email} is disabled. Enable them first.")
    elif invitations.is_invited(member):
        flash.info(request, f"{member.email} has not set up their account yet: send a new invitation instead.")
    elif not reset.request_reset(member, by=request.user):
        flash.info(request, f"A reset link went to {member.email} less than five minutes ago; "
                            "ask them to look for it (and in their spam folder).")
    else:
        minutes = settings.PASSWORD_RESET_TIMEOUT // 60
        flash.success(request, f"A password reset link is on its way to {member.email}. "
                               f"It works once, for {minutes} minutes; their password stays as it is until then.")
    return redirect("orgadmin:senders")


@require_POST
@org_admin_required
@confirmed
def sender_invite(request, user_id):
    """Send a new invitation (the last one expired or went astray); the earlier links stop working."""
    member = access_member_for_admin(request.user, user_id, User.Role.SENDER)
    try:
        sent = invitations.resend(member, by=request.user)
    except Refused as exc:
        flash.error(request, str(exc))
    else:
        if sent:
            flash.success(request, f"A new invitation is on its way to {member.email}. It works once, for "
                                   f"{settings.INVITATION_DAYS} days; earlier invitation links no longer work.")
        else:
            flash.info(request, f"An invitation went to {member.email} less than five minutes ago; "
                                "ask them to look for it (and in their spam folder).")
    return redirect("orgadmin:senders")


IMPORT_SESSION = "hushpost_sender_import"


@org_admin_required
@confirmed
def sender_import(request):
    """Invite many senders from a CSV file: upload, a preview with each row's problem, confirm."""
    context = {"tab": "admin", "section": "senders", "rows": None, "error": "", "days": settings.INVITATION_DAYS}
    if request.method != "POST":
        return render(request, "orgadmin/import.html", context)
    if request.POST.get("action") == "confirm":
        rows = importing.from_session(request.session.pop(IMPORT_SESSION, None))
        if not rows:
            flash.error(request, "That list is gone (it is kept until you confirm or upload another). Upload it again.")
            return redirect("orgadmin:sender-import")
        invited, refused = importing.invite_all(rows, by=request.user)
        flash.success(request, f"{invited} invitation{'s' if invited != 1 else ''} on the way; each works once, "
                               f"for {settings.INVITATION_DAYS} days.")
        for row in refused:
            flash.error(request, f"Line {row.line}, {row.email}: {row.problem}")
        return redirect("orgadmin:senders")
    upload = request.FILES.get("senders_csv")
    if upload is None:
        context["error"] = "Choose a CSV file to upload (again, if you have just confirmed it's you)."
        return render(request, "orgadmin/import.html", context, status=400)
    rows, problem = importing.read(upload.read(), request.user.org)
    if problem:
        context["error"] = problem
        return render(request, "orgadmin/import.html", context, status=400)
    request.session[IMPORT_SESSION] = importing.to_session(rows)
    context.update(rows=rows, good=sum(1 for r in rows if not r.problem),
                   bad=sum(1 for r in rows if r.problem))
    return render(request, "orgadmin/import.html", context)


@checks_input("q")
@org_admin_required
def recipients(request):
    search_form = RecipientSearch(request.GET)
    context = {"q": request.GET.get("q", ""), "tab": "admin", "section": "recipients"}
    if not search_form.is_valid():
        return render(request, "orgadmin/recipients.html", {**context, "errors": search_form.problems()},
                      status=400)
    query = search_form.cleaned_data["q"]
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
    for person, _ in rows:
        person.locked_until = throttle.locked_until(person)
    return render(request, "orgadmin/recipients.html", {**context, "rows": rows, "page": page, "q": query})


@require_POST
@org_admin_required
@confirmed
def recipient_reset(request, user_id):
    member = access_member_for_admin(request.user, user_id, User.Role.RECIPIENT)
    reset_recipient_password(member, by=request.user)
    flash.success(request, f"A new Secure Messaging Password Notification is on its way to {member.email}.")
    return redirect("orgadmin:recipients")


@checks_input("sender_name", "notify_from_email")
@org_admin_required
@confirmed
def policy(request):
    org = request.user.org
    form = PolicyForm(request.POST or None, instance=org)
    if request.method == "POST" and form.is_valid():
        change_policy(form.save(commit=False), form.changed_data, by=request.user)
        flash.success(request, "The organisation's settings are saved.")
        return redirect("orgadmin:policy")
    return render(
        request, "orgadmin/policy.html",
        {"form": form, "tab": "admin", "section": "policy"},
        status=400 if request.method == "POST" else 200,
    )


@checks_input(*SSO_TYPED)
@org_admin_required
@confirmed
def single_sign_on(request):
    """The organisation's identity provider (OpenID Connect or SAML) and its rules for senders."""
    org = request.user.org
    sso = SingleSignOn.objects.filter(org=org).first() or SingleSignOn(org=org)
    form = SingleSignOnForm(request.POST or None, instance=sso)
    if request.method == "POST" and form.is_valid():
        save_single_sign_on(form.save(commit=False), form.changed_data,
                            form.cleaned_data.get("oidc_client_secret") or "", by=request.user)
        flash.success(request, "Single sign-on settings are saved.")
        return redirect("orgadmin:sso")
    return render(request, "orgadmin/sso.html", {
        "form": form, "sso": sso, "tab": "admin", "section": "sso",
        "service": service_provider_values(sso),
    }, status=400 if request.method == "POST" else 200)


@checks_input("name")
@org_admin_required
@confirmed
def provisioning(request):
    """Tokens for the identity provider's provisioning (SCIM); a new token is shown on this answer only."""
    form = ProvisioningTokenForm(request.POST or None)
    context = {"form": form, "tab": "admin", "section": "provisioning", "base_url": base_url()}
    if request.method == "POST" and form.is_valid():
        context["new_token"], context["secret"] = tokens.issue(
            request.user.org, form.cleaned_data["name"], by=request.user)
        context["form"] = ProvisioningTokenForm()
    context["tokens"] = tokens.active_tokens(request.user.org)
    return render(request, "orgadmin/provisioning.html", context,
                  status=400 if request.method == "POST" and not form.is_valid() else 200)


@require_POST
@org_admin_required
@confirmed
def provisioning_revoke(request, token_id):
    token = tokens.active_tokens(request.user.org).filter(pk=token_id).first()
    if token is None:
        raise Http404
    tokens.revoke(token, by=request.user)
    flash.success(request, f"The token {token.name} ({token.prefix}…) no longer works.")
    return redirect("orgadmin:provisioning")


@require_POST
@org_admin_required
@confirmed
def unlock(request, user_id):
    """End a lockout now (the owner asked, or the admin knows the attempts were theirs)."""
    role = request.POST.get("role")
    member = access_member_for_admin(
        request.user, user_id, User.Role.RECIPIENT if role == "recipient" else User.Role.SENDER)
    throttle.unlock(member, by=request.user)
    flash.success(request, f"{member.email} can sign in again.")
    return redirect("orgadmin:recipients" if member.is_recipient else "orgadmin:senders")


@checks_input("sender", "recipient", "since", "until")
@org_admin_required
def messages(request):
    """Find messages by sender, recipient, date and status (never by content), and recall them."""
    filters = MessageFilters(request.GET)
    f = {k: request.GET.get(k, "") for k in filters.fields}  # shown again as typed
    context = {"f": f, "statuses": MESSAGE_STATUSES, "tab": "admin", "section": "messages"}
    if not filters.is_valid():
        return render(request, "orgadmin/messages.html", {**context, "errors": filters.problems()}, status=400)
    page = Paginator(search.messages(request.user.org, filters.cleaned_data), 50).get_page(request.GET.get("page"))
    rows = []
    for m in page.object_list:
        deliveries = list(m.deliveries.all())
        recalled = sum(1 for d in deliveries if d.recalled_at)
        rows.append({"message": m, "recipients": [d.recipient.email for d in deliveries],
                     "recalled": recalled, "all_recalled": deliveries and recalled == len(deliveries)})
    return render(request, "orgadmin/messages.html", {**context, "rows": rows, "page": page, "query": _query(f)})


@require_POST
@org_admin_required
@confirmed
def message_recall(request, uid):
    message = access_message_for_admin(request.user, uid)
    count = recall(message, by=request.user)
    flash.success(request, f"Recalled for {count} recipient{'s' if count != 1 else ''}." if count
                  else "That message was already recalled.")
    back = request.POST.get("back", "")  # the search it came from, as urlencode wrote it
    return redirect("/app/admin/messages" + ("?" + back if QUERY.fullmatch(back) else ""))


@checks_input("actor", "since", "until")
@org_admin_required
def audit(request):
    """The organisation's audit trail: filter by who, what and when; export as CSV."""
    filters = AuditFilters(request.GET)
    f = {k: request.GET.get(k, "") for k in filters.fields}  # shown again as typed
    context = {"f": f, "actions": AuditEvent.Action.choices, "tab": "admin", "section": "audit"}
    if not filters.is_valid():  # the CSV too: the page says what to fix
        return render(request, "orgadmin/audit.html", {**context, "errors": filters.problems()}, status=400)
    events = search.audit_events(request.user.org, filters.cleaned_data)
    if request.GET.get("format") == "csv":
        return _audit_csv(request.user.org, events)
    page = Paginator(events, 100).get_page(request.GET.get("page"))
    return render(request, "orgadmin/audit.html", {**context, "page": page, "query": _query(f)})


def _query(typed: dict) -> str:
    return urlencode({k: v.strip() for k, v in typed.items() if v.strip()})


def _audit_csv(org, events):
    response = StreamingHttpResponse(audit_csv.lines(events.iterator()), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{org.slug}-{now_label()}.csv"'
    return response
