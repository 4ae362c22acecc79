"""The sender portal: sign in, Inbox (replies), Sent, Compose and message pages."""

from __future__ import annotations

import re
import secrets
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth import logout
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from hushpost.accounts import reauth, throttle
from hushpost.accounts import views as account_pages
from hushpost.accounts.flows import (
    begin_session,
    sender_account,
    set_new_password,
    sign_in_sender,
    sign_out_everywhere,
)
from hushpost.attachments import views as attachments
from hushpost.attachments.actions import AttachmentError, files_of
from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.lib.input import InputError, checks_input, line
from hushpost.lib.urls import safe_next
from hushpost.messaging import listing
from hushpost.messaging.access import access_message_for_sender, access_own_message_for_sender
from hushpost.messaging.actions import (
    RefusedError,
    change_expiry,
    open_message,
    recall,
    send_message,
)
from hushpost.messaging.content import open_content, open_subject
from hushpost.messaging.forms import ComposeForm
from hushpost.messaging.models import Message
from hushpost.messaging.threads import restrictions
from hushpost.notifications.actions import retry_now
from hushpost.notifications.models import Notification
from hushpost.orgs.models import Domain
from hushpost.regions.discovery import region_for_domain


class NotifiedState:
    """What the sender needs to know about a recipient's e-mails, in one state.

    A new recipient gets two (password, then message); the worst one counts.
    """

    def __init__(self, status: str, sent_at=None, problem: Notification | None = None):
        self.status, self.sent_at, self.problem = status, sent_at, problem

    @classmethod
    def of(cls, notifications: list[Notification]) -> NotifiedState:
        notifications = [n for n in notifications if n.status != Notification.Status.CANCELLED]
        for n in notifications:
            if n.status == Notification.Status.FAILED:
                return cls("failed", problem=n)
        for n in notifications:
            if n.status == Notification.Status.PENDING:
                return cls("pending", problem=n)
        if not notifications:
            return cls("pending")
        return cls("sent", sent_at=max(n.sent_at for n in notifications))


SIGN_IN_FAILED = "That e-mail address and password don't match an account."
RECIPIENT_ID = re.compile(r"[0-9]{1,18}")


def sender_required(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        user = request.user
        if not (user.is_authenticated and user.is_sender):
            return redirect("/login?" + urlencode({"next": request.path}))
        return view(request, *args, **kwargs)

    return wrapper


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
    if request.method != "POST":
        return _login_page(request, email)
    password = request.POST.get("password", "")
    if not _looks_like_address(email):
        return _login_page(request, "", error=ENTER_ADDRESS)
    client = throttle.client_address(request)
    try:
        elsewhere = _region_elsewhere(email, client)
    except LookupRefused:
        return _login_page(request, "", error=TOO_MANY_LOOKUPS, status=429)
    if elsewhere is not None:
        # The organisation lives in another region: its own login page takes
        # over, with the address filled in (the password never leaves here).
        return redirect(elsewhere.base_url + "/login?" + urlencode({"email": email}))
    if not password:
        # "Next": the same password step for every address, hosted or not.
        return _login_page(request, email)
    account = throttle.account_key("sender", email)
    refusal = throttle.check(client, account)
    if refusal is not None:
        return _login_page(request, email, error=refusal.message, status=429)
    result = sign_in_sender(email, password)
    if result.user is not None:
        throttle.succeeded(account, client)
        next_url = safe_next(request, request.GET.get("next"), prefix="/app/", default="/app/")
        if begin_session(request, result.user):
            return redirect("/login/2fa?" + urlencode({"next": next_url}))
        return redirect(next_url)
    refusal = throttle.failed(client, account, user=sender_account(email))
    if refusal is not None:
        return _login_page(request, email, error=refusal.message, status=429)
    return _login_page(request, email, error=SIGN_IN_FAILED)


ENTER_ADDRESS = "Enter your e-mail address, for example name@example.org."
EMAIL = "The e-mail address"


def _looks_like_address(email: str) -> bool:
    local, _, domain = email.rpartition("@")
    return bool(local) and "." in domain and not any(c.isspace() for c in email)


TOO_MANY_LOOKUPS = "Too many look-ups from your network just now. Try again in a few minutes."


class LookupRefused(Exception):
    pass


def _login_page(request, email: str, error: str = "", status: int | None = None):
    if email and not _looks_like_address(email):
        email = ""
    response = render(request, "senders/login.html", {"email": email, "error": error},
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
        raise LookupRefused
    return region_for_domain(domain)


@require_POST
def logout_view(request):
    logout(request)
    flash.success(request, "You have signed out.")
    return redirect("senders:login")


@sender_required
def inbox(request):
    page, rows = listing.inbox(request.user, request.GET.get("page"))
    return render(request, "senders/inbox.html", {"page": page, "rows": rows, "tab": "inbox"})


@sender_required
def sent(request):
    page, rows = listing.sent(request.user, request.GET.get("page"))
    return render(request, "senders/sent.html", {"page": page, "rows": rows, "tab": "sent"})


@checks_input("to", "cc", "subject", "body")
@sender_required
def compose(request):
    replying_to = None
    file_uids: list[str] = []
    if request.method == "POST":
        form = ComposeForm(request.POST, org=request.user.org)
        file_uids, refused_files = attachments.form_files(request)
        for reason in refused_files:
            form.add_error(None, reason)
        if form.is_valid() and form.cleaned_data["in_reply_to"]:
            replying_to = access_message_for_sender(request.user, form.cleaned_data["in_reply_to"]).message
        if form.is_valid() and request.POST.get("confirm") == "1":
            addressees = form.addressees()
            try:
                message = send_message(
                    author=request.user,
                    addressees=addressees,
                    subject=form.cleaned_data["subject"],
                    body_html=form.cleaned_data["body"],
                    options=form.options(),
                    send_token=form.cleaned_data["send_token"],
                    in_reply_to=replying_to,
                    file_uids=file_uids,
                )
            except (AttachmentError, RefusedError) as exc:
                form.add_error(None, str(exc))
            else:
                count = addressees.count
                flash.success(
                    request,
                    f"Your secure message was sent to {count} recipient{'s' if count != 1 else ''}.",
                )
                return redirect("senders:message", uid=message.uid)
        # Valid but not yet confirmed (no script): show the send options.
        show_options = form.is_valid()
    else:
        initial = {"send_token": secrets.token_urlsafe(24)}
        reply_uid = request.GET.get("reply_to")
        if reply_uid:
            access = access_message_for_sender(request.user, reply_uid)
            replying_to = access.message
            content = open_content(replying_to)
            subject = content.subject
            initial.update(
                to=replying_to.author.email if not access.is_author else "",
                subject=subject if subject.lower().startswith("re:") else "Re: " + subject,
                in_reply_to=replying_to.uid,
            )
        form = ComposeForm(initial=initial, org=request.user.org)
        show_options = False
    return render(
        request,
        "senders/compose.html",
        {"form": form, "show_options": show_options, "tab": "compose", "replying_to": replying_to,
         "upload_url": "/app/files", **attachments.form_context(request.user, file_uids)},
        status=400 if request.method == "POST" and not form.is_valid() else 200,
    )


@require_POST
@sender_required
def upload_file(request):
    return attachments.upload(request)


@require_POST
@sender_required
def discard_file(request, file_uid):
    return attachments.discard(request, file_uid)


@sender_required
def download_file(request, uid, file_uid):
    return attachments.download(request, access_message_for_sender(request.user, uid).message, file_uid)


@sender_required
def message_view(request, uid):
    access = access_message_for_sender(request.user, uid)
    message = access.message
    if access.delivery is not None:
        open_message(access.delivery)
        record(AuditEvent.Action.OPEN, actor=request.user, obj=message)
    content = open_content(message)
    recipients = []
    if access.is_author:
        deliveries = message.deliveries.select_related("recipient").order_by("id")
        notes: dict[int, list[Notification]] = {}
        for n in Notification.objects.filter(delivery__message=message).order_by("id"):
            notes.setdefault(n.delivery_id, []).append(n)
        recipients = [(d, NotifiedState.of(notes.get(d.pk, []))) for d in deliveries]
    replies = [
        (r, open_subject(r))
        for r in Message.objects.filter(in_reply_to=message, kind=Message.Kind.REPLY)
        .select_related("author").order_by("created_at")
        if r.author_id == request.user.pk or r.deliveries.filter(recipient=request.user).exists()
    ]
    return render(
        request,
        "senders/message.html",
        {
            "files": files_of(message),
            "file_base": f"/app/m/{message.uid}/files/",
            "expiry_options": [(value, label) for value, label, days in EXPIRY_CHANGES
                               if days == 0 or message.org.allows_expiry(days or 0)],
            "any_active": any(d.recalled_at is None for d, _ in recipients),
            "message": message,
            "content": content,
            "rules": restrictions(message),
            "access": access,
            "recipients": recipients,
            "replies": replies,
            "tab": "sent" if access.is_author else "inbox",
        },
    )


@require_POST
@sender_required
def retry_notification(request, uid, notification_id):
    message = access_own_message_for_sender(request.user, uid)
    notification = Notification.objects.filter(
        pk=notification_id, delivery__message=message
    ).first()
    if notification is None:
        raise Http404
    retry_now(notification)
    flash.success(request, f"Trying again to notify {notification.user.email}.")
    return redirect("senders:message", uid=uid)


@checks_input("email")
def forgot_password(request):
    return account_pages.forgot(request, find_account=sender_account, frame="base.html",
                                login_url="/login", extra={})


@checks_input("password", "confirm")
def reset_password(request):
    return account_pages.choose(request, role="sender", org=None, frame="base.html",
                                login_url="/login", forgot_url="/forgot", extra={})


@checks_input("current", "current_code", "password", "confirm")
@sender_required
def account(request):
    errors: list[str] = []
    if request.method == "POST":
        errors = set_new_password(request, request.user, request.POST.get("password", ""),
                                  request.POST.get("confirm", ""))
        if not errors:
            flash.success(request, "Your password is changed. Every other session is signed out.")
            return redirect("senders:account")
    return render(request, "senders/account.html",
                  {"errors": errors, "tab": "account", "reauth": reauth.fields(request, always=True)},
                  status=400 if errors else 200)


@require_POST
@sender_required
def sign_out_everywhere_view(request):
    sign_out_everywhere(request, request.user)
    flash.success(request, "You are signed out everywhere.")
    return redirect("senders:login")


@require_POST
@sender_required
def recall_view(request, uid):
    """The author recalls the message for one recipient (``recipient``) or for everyone."""
    message = access_own_message_for_sender(request.user, uid)
    who = request.POST.get("recipient")
    if who is not None and not RECIPIENT_ID.fullmatch(who):  # not str.isdigit: "²" is a digit int() refuses
        return HttpResponseBadRequest("Choose a recipient of this message.")
    ids = [int(who)] if who is not None else None
    count = recall(message, recipient_ids=ids, by=request.user)
    flash.success(request, "The message was recalled." if count else "Nothing more to recall.")
    return redirect("senders:message", uid=uid)


# The sent message's "Change expiry" choices: (form value, label, days for change_expiry).
EXPIRY_CHANGES = [("1", "1 day from now", 1), ("7", "7 days from now", 7), ("30", "30 days from now", 30),
                  ("never", "Never", None), ("now", "Now (expire it)", 0)]


@require_POST
@sender_required
def expiry_view(request, uid):
    message = access_own_message_for_sender(request.user, uid)
    choice = request.POST.get("expiry", "")
    allowed = {value: days for value, _, days in EXPIRY_CHANGES}
    if choice not in allowed:
        flash.error(request, "Choose when the message should expire.")
        return redirect("senders:message", uid=uid)
    try:
        change_expiry(message, allowed[choice], by=request.user)
    except RefusedError as e:  # the organisation's policy: the page offers only what it allows
        flash.error(request, str(e))
        return redirect("senders:message", uid=uid)
    flash.success(request, "The message no longer expires." if choice == "never" else
                  "The message has expired." if choice == "now" else
                  f"The message now expires in {choice} day{'s' if choice != '1' else ''}.")
    return redirect("senders:message", uid=uid)


@checks_input("code")
def second_factor(request):
    return account_pages.second_factor(
        request, role="sender", org=None, frame="base.html", login_url="/login",
        next_url=safe_next(request, request.GET.get("next"), prefix="/app/", default="/app/"), extra={})


@checks_input("code", "current", "current_code")
@sender_required
def two_factor_settings(request):
    return account_pages.two_factor_settings(request, frame="senders/app.html", here="/app/account/2fa",
                                             extra={"tab": "account"})
