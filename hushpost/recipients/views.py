"""The recipient portal: sign in, set a password, read, reply, print, delete."""

from __future__ import annotations

import secrets
from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages as flash
from django.contrib.auth import logout
from django.core import signing
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.crypto import constant_time_compare
from django.views.decorators.http import require_POST

from hushpost.accounts import passkey_pages, phrase, reauth, throttle
from hushpost.accounts import views as account_pages
from hushpost.accounts.flows import (
    begin_session,
    recipient_account,
    set_new_password,
    sign_in_recipient,
    sign_out_everywhere,
)
from hushpost.accounts.models import User
from hushpost.attachments import views as attachments
from hushpost.attachments.actions import FileRefused, files_of
from hushpost.crypto import macs
from hushpost.crypto.labels import RESEND_TEMPORARY
from hushpost.lib.client import client_address
from hushpost.lib.input import InputError, checks_input, line
from hushpost.lib.refusals import Refused
from hushpost.lib.sanitize import html_to_text
from hushpost.lib.urls import safe_next
from hushpost.lib.views import refused
from hushpost.messaging import listing
from hushpost.messaging.access import access_message_for_recipient
from hushpost.messaging.actions import (
    can_reply,
    check_can_reply,
    delete_for_recipient,
    print_message,
    read_message,
    reply_all_addressees,
    reply_as_recipient,
)
from hushpost.messaging.content import open_content
from hushpost.messaging.forms import ReplyForm
from hushpost.messaging.models import Message
from hushpost.messaging.threads import addressed, content_for, restrictions
from hushpost.notifications import links
from hushpost.notifications.actions import queue_notification
from hushpost.notifications.models import Notification
from hushpost.orgs.models import Organization

SIGN_IN_FAILED = "That e-mail address and password don't match an account."
EMAIL = "The e-mail address"


def _org(slug: str) -> Organization:
    return get_object_or_404(Organization, slug=slug, is_active=True)


_users_org = User._meta.get_field("org")


def _own_org(user, slug: str) -> Organization | None:
    """A signed-in recipient's organisation, as it was loaded with them, when ``slug`` names it
    and it is active; None otherwise (then it is read by its slug)."""
    if not (user.is_authenticated and user.is_recipient and user.org_id and _users_org.is_cached(user)):
        return None
    organisation = user.org
    return organisation if organisation.slug == slug and organisation.is_active else None


def recipient_required(view):
    @wraps(view)
    def wrapper(request, org_slug, *args, **kwargs):
        user = request.user
        organisation = _own_org(user, org_slug) or _org(org_slug)
        if not (user.is_authenticated and user.is_recipient and user.org_id == organisation.pk):
            query = urlencode({"next": request.path})
            return redirect(f"/r/{organisation.slug}/login?{query}")
        request.org = organisation
        return view(request, *args, **kwargs)

    return wrapper


@checks_input("email", "password")
def login_view(request, org_slug):
    organisation = _org(org_slug)
    prefix = f"/r/{organisation.slug}/"
    next_url = safe_next(request, request.GET.get("next"), prefix=prefix, default=prefix)
    user = request.user
    if user.is_authenticated and user.is_recipient and user.org_id == organisation.pk:
        return redirect(next_url)  # a GET never changes anything, it only forwards
    context = {"org": organisation, "email": "", "error": "", "next": next_url}
    try:
        context["email"] = email = line(request.GET.get("email", ""), label=EMAIL)
        if request.method == "POST":
            context["email"] = email = line(request.POST.get("email", ""), label=EMAIL)
    except InputError as problem:
        context["error"] = str(problem)
        return render(request, "recipients/login.html", context, status=400)
    status = 200
    if request.method == "POST":
        attempt = throttle.check_secret(
            client_address(request), throttle.account_key(f"r{organisation.pk}", email),
            # The right password, temporary or chosen, passes (the count starts again).
            lambda: sign_in_recipient(organisation, email, request.POST.get("password", "")),
            owner=lambda: recipient_account(organisation, email))
        result = attempt.value
        if result is not None and result.temporary_in_use_until is not None:
            context["in_use_until"] = result.temporary_in_use_until
            status = 400
        elif result is not None and result.needs_new_temporary:
            context["expired_at"] = result.user.temp_password_expires_at if result.temporary_expired else None
            context["already_used"] = result.temporary_used
            context["resend_token"] = _resend_token(result.user)
            status = 400
        elif result is not None:
            if begin_session(request, result.user):
                return redirect(f"/r/{organisation.slug}/login/2fa?" + urlencode({"next": next_url}))
            return redirect(next_url)
        else:
            context["error"] = str(attempt.refusal) if attempt.refusal else SIGN_IN_FAILED
            status = 429 if attempt.refusal else 400
    return render(request, "recipients/login.html", context, status=status)


def notification_link(request, org_slug, code):
    """Where an e-mail's link leads: the sign-in page with the address filled in, then the message.

    The code names the e-mail, never the address (:mod:`hushpost.notifications.links`). A code
    that names nothing gets the same plain sign-in page as no code at all, and counts against
    the client's look-ups: once they are used up, no code is looked at until the window ends.
    """
    organisation = _org(org_slug)
    prefix = f"/r/{organisation.slug}/"
    context = {"org": organisation, "email": "", "error": "", "next": prefix}
    client = client_address(request)
    notification = None
    if not throttle.lookup_refused(client):
        key = links.notification_key(code)
        notification = key and (
            Notification.objects.filter(key=key, org=organisation, user__role=User.Role.RECIPIENT,
                                        user__is_active=True)
            .select_related("user", "delivery__message").first())
        if notification is None:
            throttle.lookup_allowed(client)
    if notification is not None and notification.kind in (Notification.Kind.MESSAGE, Notification.Kind.REMINDER) and notification.delivery:
        context["next"] = f"{prefix}m/{notification.delivery.message.uid}"
    user = request.user
    if user.is_authenticated and user.is_recipient and user.org_id == organisation.pk:
        return redirect(context["next"])  # already signed in here: straight on
    if notification is not None:
        context["email"] = notification.user.email
        context["reference"] = links.reference(notification)
    return render(request, "recipients/login.html", context)


def _resend_token(user: User) -> str:
    # Bound to the current (temporary) password hash: once a new password is
    # chosen or a new temporary one issued, the token is worthless.
    return signing.dumps([user.pk, macs.password_fingerprint(user.password)], salt=RESEND_TEMPORARY)


@require_POST
def resend_temporary(request, org_slug):
    """Send a new temporary password to someone who just proved they held the expired one."""
    organisation = _org(org_slug)
    try:
        user_id, fingerprint = signing.loads(request.POST.get("token", ""), salt=RESEND_TEMPORARY, max_age=900)
    except (signing.BadSignature, ValueError, TypeError):
        user_id, fingerprint = None, ""
    user = User.objects.filter(
        pk=user_id, org=organisation, role=User.Role.RECIPIENT, must_change_password=True
    ).first()
    if user is None or not constant_time_compare(fingerprint, macs.password_fingerprint(user.password)):
        flash.error(request, "That request has expired. Sign in again to ask for a new password.")
        return redirect("recipients:login", org_slug=organisation.slug)
    with transaction.atomic():
        # One at a time: replaying the request while the e-mail is queued adds nothing.
        User.objects.select_for_update().filter(pk=user.pk).first()
        notification = Notification.objects.filter(
            user=user, kind=Notification.Kind.PASSWORD, status=Notification.Status.PENDING
        ).select_related("org").first()
        if notification is None:
            notification = queue_notification(Notification.Kind.PASSWORD, user)
    flash.success(request, f"A new temporary password is on its way to {user.email}.")
    # Back to the sign-in page through the new e-mail's own link: the address is filled in, and
    # never in the URL.
    return redirect(links.link_path(notification))


@checks_input("current", "current_code", "password", "confirm", "phrase")
@recipient_required
def set_password(request):
    errors: list[str] = []
    first_time = request.user.must_change_password
    next_url = safe_next(
        request, request.GET.get("next"), prefix=f"/r/{request.org.slug}/", default=f"/r/{request.org.slug}/"
    )
    if request.method == "POST":
        try:
            # Optional, chosen with the first password (the account page changes it later).
            chosen = phrase.clean(request.POST.get("phrase", ""))
        except InputError as problem:
            errors = [str(problem)]
        else:
            errors = set_new_password(
                request,
                request.user,
                request.POST.get("password", ""),
                request.POST.get("confirm", ""),
            )
            if not errors and first_time and chosen:
                phrase.set_phrase(request, request.user, chosen)
        if not errors:
            flash.success(request, "Your password is set. Use it next time you sign in.")
            return redirect(next_url)
    return render(
        request,
        "recipients/set_password.html",
        {"org": request.org, "errors": errors, "first_time": request.user.must_change_password,
         "has_phrase": bool(request.user.security_phrase_sealed), "phrase_max": phrase.MAX_LENGTH,
         "reauth": reauth.fields(request, always=True),
         **passkey_pages.listing(request, f"/r/{request.org.slug}/passkeys"),
         **account_pages.time_zone_card(request, f"/r/{request.org.slug}/time-zone")},
        status=400 if errors else 200,
    )


@checks_input("current", "current_code", "phrase")
@recipient_required
def security_phrase(request):
    """Choose, change or remove the phrase every later e-mail shows (confirming it is the owner)."""
    error, status = "", 200
    if request.method == "POST":
        try:
            chosen = phrase.clean(request.POST.get("phrase", ""))
        except InputError as problem:
            error, status = str(problem), 400
        else:
            # Someone holding only a session must not choose the phrase a look-alike would then show.
            unconfirmed = reauth.confirm(request, always=True)
            if unconfirmed is not None:
                error, status = unconfirmed.inline
            else:
                phrase.set_phrase(request, request.user, chosen)
        if not error:
            flash.success(request, "Your security phrase is saved. Every e-mail we send you from now on shows it."
                          if request.POST.get("phrase", "").strip() else "Your security phrase is removed.")
            return redirect(f"/r/{request.org.slug}/password")
    return render(request, "recipients/security_phrase.html",
                  {"org": request.org, "error": error, "phrase_max": phrase.MAX_LENGTH,
                   "has_phrase": bool(request.user.security_phrase_sealed),
                   "reauth": reauth.fields(request, always=True)},
                  status=status)


@require_POST
@recipient_required
def time_zone_view(request):
    return account_pages.time_zone(request, back=f"/r/{request.org.slug}/password")


@require_POST
def logout_view(request, org_slug):
    organisation = _org(org_slug)
    logout(request)
    flash.success(request, "You have signed out.")
    return redirect("recipients:login", org_slug=organisation.slug)


@recipient_required
def inbox(request):
    page, rows = listing.inbox(request.user, request.GET.get("page"))
    return render(
        request, "recipients/inbox.html", {"org": request.org, "page": page, "rows": rows, "tab": "inbox"}
    )


@recipient_required
def sent(request):
    page, rows = listing.sent(request.user, request.GET.get("page"))
    return render(
        request, "recipients/sent.html", {"org": request.org, "page": page, "rows": rows, "tab": "sent"}
    )


@recipient_required
def message_view(request, uid):
    access = access_message_for_recipient(request.user, uid, include_recalled=True)
    message = access.message
    if access.delivery is not None and access.delivery.recalled_at is not None:
        return render(request, "recipients/recalled.html",
                      {"org": request.org, "message": message, "delivery": access.delivery, "tab": "inbox"})
    read_message(request.user, message, access.delivery)
    if access.delivery is not None:
        # Who it was recalled for and, for Reply All, its addressees: one statement.
        addressed(message)
    content = content_for(request.user, message)
    replyable = access.delivery is not None and can_reply(message, request.user)
    # A recipient's replies to it are dated on their delivery: none, nothing to list.
    replied = access.delivery is not None and access.delivery.replied_at is not None
    my_replies = (Message.objects.filter(in_reply_to=message, author=request.user).order_by("created_at")
                  .only("uid", "created_at") if replied else [])
    return render(
        request,
        "recipients/message.html",
        {
            "org": request.org,
            "message": message,
            "content": content,
            "rules": restrictions(message),
            "files": files_of(message),
            "file_base": f"/r/{request.org.slug}/m/{message.uid}/files/",
            "access": access,
            "can_reply": replyable,
            "others": reply_all_addressees(message, request.user) if replyable else [],
            "my_replies": my_replies,
            "tab": "inbox" if access.delivery else "sent",
        },
    )


@checks_input("body")
@recipient_required
def reply(request, uid):
    access = access_message_for_recipient(request.user, uid)
    message = access.message
    if access.delivery is None:
        return refused(request, "You wrote this message; open the original to reply to it.")
    try:
        check_can_reply(message, request.user)
    except Refused as e:
        return refused(request, str(e))
    reply_all = request.POST.get("reply_all") == "True" or request.GET.get("all") == "1"
    file_uids: list[str] = []
    if request.method == "POST":
        form = ReplyForm(request.POST)
        file_uids, refused_files = attachments.form_files(request)
        for reason in refused_files:
            form.add_error(None, reason)
        if form.is_valid():
            try:
                reply_as_recipient(
                    recipient=request.user,
                    delivery=access.delivery,
                    body_html=form.cleaned_data["body"],
                    reply_all=form.cleaned_data["reply_all"],
                    send_token=form.cleaned_data["send_token"],
                    file_uids=file_uids,
                )
            except FileRefused as e:
                form.add_error(None, str(e))
            except Refused as e:  # expired between page load and submit
                return refused(request, str(e))
            else:
                flash.success(request, "Your reply was sent securely.")
                return redirect("recipients:message", org_slug=request.org.slug, uid=message.uid)
    else:
        form = ReplyForm(initial={"send_token": secrets.token_urlsafe(24), "reply_all": reply_all})
    content = open_content(message)
    return render(
        request,
        "recipients/reply.html",
        {
            "org": request.org,
            "message": message,
            "content": content,
            # The page may be printed: a "No Print" original is quoted for the
            # screen only, as its own page shows it (the print stylesheet).
            "rules": restrictions(message),
            "form": form,
            "reply_all": reply_all,
            "others": reply_all_addressees(message, request.user) if reply_all else [],
            "quoted": html_to_text(content.body_html)[:2000],
            "tab": "inbox",
            "upload_url": f"/r/{request.org.slug}/files",
            **attachments.form_context(request.user, file_uids),
        },
        status=400 if request.method == "POST" else 200,
    )


@recipient_required
def print_view(request, uid):
    access = access_message_for_recipient(request.user, uid)
    try:
        print_message(request.user, access.message)
    except Refused as e:
        return refused(request, str(e))
    return render(
        request,
        "recipients/print.html",
        {"org": request.org, "message": access.message, "content": content_for(request.user, access.message)},
    )


@require_POST
@recipient_required
def delete(request, uid):
    # A recalled message can still be removed from the Inbox.
    access = access_message_for_recipient(request.user, uid, include_recalled=True)
    if access.delivery is None:
        return refused(request, "Only messages you received can be deleted here.")
    delete_for_recipient(access.delivery)
    flash.success(request, "The message was deleted.")
    return redirect("recipients:inbox", org_slug=request.org.slug)




@require_POST
@recipient_required
def upload_file(request):
    return attachments.upload(request)


@require_POST
@recipient_required
def discard_file(request, file_uid):
    return attachments.discard(request, file_uid)


@recipient_required
def download_file(request, uid, file_uid):
    """A file of a message the recipient may see; an expired message keeps its files."""
    return attachments.download(request, access_message_for_recipient(request.user, uid).message, file_uid)


@checks_input("email")
def forgot_password(request, org_slug):
    organisation = _org(org_slug)
    return account_pages.forgot(
        request, find_account=lambda email: recipient_account(organisation, email),
        frame="recipients/portal.html", login_url=f"/r/{organisation.slug}/login", extra={"org": organisation})


@checks_input("password", "confirm")
def reset_password(request, org_slug):
    organisation = _org(org_slug)
    return account_pages.choose(
        request, role="recipient", org=organisation, frame="recipients/portal.html",
        login_url=f"/r/{organisation.slug}/login", forgot_url=f"/r/{organisation.slug}/forgot",
        extra={"org": organisation})


@require_POST
@recipient_required
def sign_out_everywhere_view(request):
    slug = request.org.slug
    sign_out_everywhere(request, request.user)
    flash.success(request, "You are signed out everywhere.")
    return redirect("recipients:login", org_slug=slug)


@checks_input("code")
def second_factor(request, org_slug):
    organisation = _org(org_slug)
    prefix = f"/r/{organisation.slug}/"
    return account_pages.second_factor(
        request, role="recipient", org=organisation, frame="recipients/portal.html",
        login_url=prefix + "login", next_url=safe_next(request, request.GET.get("next"), prefix=prefix, default=prefix),
        extra={"org": organisation})


@checks_input("code", "current", "current_code")
@recipient_required
def two_factor_settings(request):
    return account_pages.two_factor_settings(request, frame="recipients/portal.html",
                                             here=f"/r/{request.org.slug}/2fa",
                                             extra={"org": request.org, "passkeys_url": f"/r/{request.org.slug}/passkeys"})
