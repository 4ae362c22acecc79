"""The sender portal: sign in, Inbox (replies), Sent, Compose and message pages."""

from __future__ import annotations

import secrets
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth import logout
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from hushpost.accounts.flows import sign_in_sender, start_session
from hushpost.attachments import views as attachments
from hushpost.attachments.actions import AttachmentError, files_of
from hushpost.lib.sanitize import html_to_text
from hushpost.lib.urls import safe_next
from hushpost.messaging import listing
from hushpost.messaging.access import access_message_for_sender
from hushpost.messaging.actions import open_message, send_message
from hushpost.messaging.content import open_content, open_subject
from hushpost.messaging.forms import ComposeForm
from hushpost.messaging.models import Message
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


def sender_required(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        user = request.user
        if not (user.is_authenticated and user.is_sender):
            return redirect("/login?" + urlencode({"next": request.path}))
        return view(request, *args, **kwargs)

    return wrapper


def login_view(request):
    """Two steps, like the big portals: the address ("Next"), then the password.

    The first step finds the organisation's region; the second signs in here.
    Both fields posted together (a password manager, a script) sign in at once.
    """
    if request.user.is_authenticated and request.user.is_sender:
        return redirect("senders:inbox")
    email = request.GET.get("email", "")[:254].strip()
    if request.method != "POST":
        return _login_page(request, email)
    email = request.POST.get("email", "")[:254].strip()
    password = request.POST.get("password", "")
    if not _looks_like_address(email):
        return _login_page(request, "", error=ENTER_ADDRESS)
    elsewhere = _region_elsewhere(email)
    if elsewhere is not None:
        # The organisation lives in another region: its own login page takes
        # over, with the address filled in (the password never leaves here).
        return redirect(elsewhere.base_url + "/login?" + urlencode({"email": email}))
    if not password:
        # "Next": the same password step for every address, hosted or not.
        return _login_page(request, email)
    result = sign_in_sender(email, password)
    if result.user is not None:
        start_session(request, result.user)
        return redirect(safe_next(request, request.GET.get("next"), prefix="/app/", default="/app/"))
    return _login_page(request, email, error=SIGN_IN_FAILED)


ENTER_ADDRESS = "Enter your e-mail address, for example name@example.org."


def _looks_like_address(email: str) -> bool:
    local, _, domain = email.rpartition("@")
    return bool(local) and "." in domain and not any(c.isspace() for c in email)


def _login_page(request, email: str, error: str = ""):
    if email and not _looks_like_address(email):
        email = ""
    response = render(request, "senders/login.html", {"email": email, "error": error},
                      status=400 if error else 200)
    # "Next" may answer with a redirect to another region's login; browsers
    # hold that redirect to the page's form-action, so the listed regions join it.
    others = [r.base_url for r in settings.REGIONS.others]
    if others:
        response._csp_update = {"form-action": others}
    return response


def _region_elsewhere(email: str):
    """The other region hosting this address's domain; None for here or nowhere.

    Only regions listed in the regions file can come back, so this never
    redirects anywhere else; an unknown domain stays here like any other.
    """
    domain = email.rsplit("@", 1)[-1].lower() if "@" in email else ""
    if not domain or Domain.objects.filter(name=domain).exists():
        return None
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
            except AttachmentError as exc:
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
    access = access_message_for_sender(request.user, uid)
    response = attachments.download(access.message, file_uid)
    if response is None:
        raise Http404
    return response


@sender_required
def message_view(request, uid):
    access = access_message_for_sender(request.user, uid)
    message = access.message
    if access.delivery is not None:
        open_message(access.delivery)
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
            "message": message,
            "content": content,
            "access": access,
            "recipients": recipients,
            "replies": replies,
            "quoted": html_to_text(content.body_html)[:2000],
            "tab": "sent" if access.is_author else "inbox",
        },
    )


@require_POST
@sender_required
def retry_notification(request, uid, notification_id):
    access = access_message_for_sender(request.user, uid)
    if not access.is_author:
        raise Http404
    notification = Notification.objects.filter(
        pk=notification_id, delivery__message=access.message
    ).first()
    if notification is None:
        raise Http404
    retry_now(notification)
    flash.success(request, f"Trying again to notify {notification.user.email}.")
    return redirect("senders:message", uid=uid)
