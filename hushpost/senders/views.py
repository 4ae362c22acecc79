"""The sender portal: Inbox (replies), Sent, Compose, message pages and the account (sign-in: ``signin.py``)."""

from __future__ import annotations

import re
import secrets
from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages as flash
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from hushpost.accounts import passkey_pages, reauth
from hushpost.accounts import views as account_pages
from hushpost.accounts.flows import (
    set_new_password,
    sign_out_everywhere,
)
from hushpost.attachments import views as attachments
from hushpost.attachments.actions import files_of
from hushpost.lib.input import InputError, checks_input, line
from hushpost.lib.refusals import Refused
from hushpost.lib.urls import safe_next
from hushpost.messaging import listing, reminders
from hushpost.messaging.access import (
    access_message_for_sender,
    access_own_message_for_sender,
    replies_for_sender,
)
from hushpost.messaging.actions import (
    change_expiry,
    correct_address,
    read_message,
    recall,
    send_message,
)
from hushpost.messaging.content import open_content, open_subject
from hushpost.messaging.forms import ComposeForm, parse_addresses
from hushpost.messaging.models import Delivery
from hushpost.messaging.status import states_of_message, summarise
from hushpost.messaging.threads import restrictions
from hushpost.notifications.actions import retry_now
from hushpost.notifications.models import Notification

RECIPIENT_ID = re.compile(r"[0-9]{1,18}")


def sender_required(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        user = request.user
        if not (user.is_authenticated and user.is_sender):
            return redirect("/login?" + urlencode({"next": request.path}))
        return view(request, *args, **kwargs)

    return wrapper


@sender_required
def inbox(request):
    page, rows = listing.inbox(request.user, request.GET.get("page"))
    return render(request, "senders/inbox.html", {"page": page, "rows": rows, "tab": "inbox"})


@sender_required
def sent(request):
    page, rows = listing.sent(request.user, request.GET.get("page"), delivery_state=True)
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
            except Refused as exc:
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
    if access.delivery is not None:  # a reply addressed to this sender, not their own message
        read_message(request.user, access.message, access.delivery)
    return _message_page(request, access)


def _message_page(request, access, *, correction: dict | None = None, status: int = 200):
    """The message page; ``correction``: a corrected address refused (``delivery``, ``address``, ``error``)."""
    message = access.message
    content = open_content(message)
    recipients, resendable = [], set()
    if access.is_author:
        recipients = states_of_message(message)
        resendable = {d.pk for d, _ in recipients if reminders.can_resend(d, message)}
    # Only a recipient writes a reply, and writing one dates their delivery: on the
    # author's page, no delivery replied to means no reply to read.
    replied = not access.is_author or any(d.replied_at is not None for d, _ in recipients)
    replies = [(r, open_subject(r)) for r in replies_for_sender(request.user, message)] if replied else []
    return render(
        request,
        "senders/message.html",
        {
            "files": files_of(message),
            "file_base": f"/app/m/{message.uid}/files/",
            "expiry_options": [(value, label) for value, label, days in EXPIRY_CHANGES
                               if days == 0 or message.org.allows_expiry(days or 0)],
            "any_active": any(d.recalled_at is None for d, _ in recipients),
            "resendable": resendable,
            "message": message,
            "content": content,
            "rules": restrictions(message),
            "access": access,
            "recipients": recipients,
            "summary": summarise(recipients) if access.is_author else None,
            "replies": replies,
            "correction": correction or {},
            "tab": "sent" if access.is_author else "inbox",
        },
        status=status,
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


@checks_input("current", "current_code", "password", "confirm")
@sender_required
def account(request):
    errors: list[str] = []
    # A password someone else chose (``hushpost user add``): replaced before anything else.
    first_time = request.user.must_change_password
    if request.method == "POST":
        errors = set_new_password(request, request.user, request.POST.get("password", ""),
                                  request.POST.get("confirm", ""))
        if not errors:
            if first_time:
                flash.success(request, "Your password is set. Only you know it.")
                return redirect(safe_next(request, request.GET.get("next"), prefix="/app/", default="/app/"))
            flash.success(request, "Your password is changed. Every other session is signed out.")
            return redirect("senders:account")
    return render(request, "senders/account.html",
                  {"errors": errors, "tab": "account", "first_time": first_time,
                   "reauth": reauth.fields(request, always=not first_time),
                   **passkey_pages.listing(request, "/app/account/passkeys"),
                   **account_pages.time_zone_card(request, "/app/account/time-zone")},
                  status=400 if errors else 200)


@require_POST
@sender_required
def time_zone_view(request):
    return account_pages.time_zone(request, back="/app/account")


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


@require_POST
@sender_required
def resend_view(request, uid):
    """The author sends the message's notification again to one addressee who has not opened it."""
    message = access_own_message_for_sender(request.user, uid)
    who = request.POST.get("recipient", "")
    if not RECIPIENT_ID.fullmatch(who):
        return HttpResponseBadRequest("Choose a recipient of this message.")
    try:
        delivery = reminders.resend(message, int(who), by=request.user, request=request)
    except Refused as e:
        flash.error(request, str(e))
        return redirect("senders:message", uid=uid)
    flash.success(request, f"A new Secure Messaging Notification is on its way to {delivery.recipient.email}.")
    return redirect("senders:message", uid=uid)


@require_POST
@checks_input("address")
@sender_required
def correct_address_view(request, uid):
    """The author sends the message to a corrected address instead of one whose e-mail bounced."""
    access = access_message_for_sender(request.user, uid)
    if not access.is_author:
        raise Http404
    message = access.message
    who = request.POST.get("delivery", "")
    if not RECIPIENT_ID.fullmatch(who):
        return HttpResponseBadRequest("Choose a recipient of this message.")
    delivery = Delivery.objects.filter(pk=int(who), message=message).first()
    if delivery is None:
        raise Http404
    typed = request.POST.get("address", "")
    try:
        addresses = parse_addresses(line(typed, label="The corrected address"), label="The corrected address")
        if len(addresses) != 1:
            raise InputError("Give one corrected address.")
        replacement = correct_address(message, delivery, addresses[0], by=request.user)
    except (InputError, ValidationError, Refused) as e:
        error = e.messages[0] if isinstance(e, ValidationError) else str(e)
        return _message_page(request, access, status=400,
                             correction={"delivery": delivery.pk, "address": typed, "error": error})
    flash.success(request, f"The message is on its way to {replacement.recipient.email}.")
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
    except Refused as e:  # the organisation's policy: the page offers only what it allows
        flash.error(request, str(e))
        return redirect("senders:message", uid=uid)
    flash.success(request, "The message no longer expires." if choice == "never" else
                  "The message has expired." if choice == "now" else
                  f"The message now expires in {choice} day{'s' if choice != '1' else ''}.")
    return redirect("senders:message", uid=uid)


@checks_input("code", "current", "current_code")
@sender_required
def two_factor_settings(request):
    return account_pages.two_factor_settings(request, frame="senders/app.html", here="/app/account/2fa",
                                             extra={"tab": "account", "passkeys_url": "/app/account/passkeys"})
