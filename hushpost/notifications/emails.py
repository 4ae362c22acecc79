"""Writing the e-mails Hushpost sends.

None carries message content; the one exception an organisation may choose is
the subject in read receipts (its policy's ``receipt_includes_subject``).
"""

from __future__ import annotations

from email.utils import formataddr, make_msgid
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from hushpost.accounts.flows import temporary_password_days
from hushpost.messaging.content import open_subject
from hushpost.notifications.models import Notification

SUBJECTS = {
    Notification.Kind.PASSWORD: "Secure Messaging Password Notification",
    Notification.Kind.MESSAGE: "Secure Messaging Notification",
    Notification.Kind.READ_RECEIPT: "Secure Messaging Read Receipt",
    Notification.Kind.REPLY: "Secure Messaging Reply Notification",
    Notification.Kind.LOCKOUT: "Secure Messaging Account Locked",
    Notification.Kind.RESET: "Secure Messaging Password Reset",
}


def absolute(path: str) -> str:
    return settings.BASE_URL + path


def recipient_login_link(org_slug: str, email: str, next_path: str = "") -> str:
    query = {"email": email}
    if next_path:
        query["next"] = next_path
    return absolute(f"/r/{org_slug}/login?{urlencode(query)}")


def build_email(notification: Notification, *, temporary_password: str = "") -> EmailMultiAlternatives:
    org = notification.org
    user = notification.user
    delivery = notification.delivery
    context = {
        "org": org,
        "user": user,
        "delivery": delivery,
        "temporary_password": temporary_password,
        "temp_days": temporary_password_days(user),
    }
    kind = notification.kind
    if kind not in (Notification.Kind.PASSWORD, Notification.Kind.LOCKOUT, Notification.Kind.RESET) \
            and delivery is None:
        raise ValueError(f"a {kind} notification needs a delivery")
    if kind == Notification.Kind.PASSWORD:
        context["link"] = recipient_login_link(org.slug, user.email)
    elif kind == Notification.Kind.MESSAGE:
        message = delivery.message
        context["link"] = recipient_login_link(org.slug, user.email, f"/r/{org.slug}/m/{message.uid}")
        context["author"] = message.author
        context["expires_at"] = message.expires_at
    elif kind == Notification.Kind.READ_RECEIPT:
        context["link"] = absolute(f"/app/m/{delivery.message.uid}")
        context["reader"] = delivery.recipient
        context["opened_at"] = delivery.first_opened_at
        if org.receipt_includes_subject:
            # The organisation chose this: the one case where an e-mail names content.
            context["message_subject"] = open_subject(delivery.message)
    elif kind == Notification.Kind.RESET:
        from hushpost.accounts.reset import link_path

        # Made now, as the e-mail is written: the token is never stored anywhere else.
        context["link"] = absolute(link_path(user))
        context["minutes"] = settings.PASSWORD_RESET_TIMEOUT // 60
    elif kind == Notification.Kind.LOCKOUT:
        context["link"] = (absolute("/login") if user.is_sender else recipient_login_link(org.slug, user.email))
        context["minutes"] = settings.LOCKOUT_MINUTES
    elif kind == Notification.Kind.REPLY:
        context["link"] = absolute(f"/app/m/{delivery.message.uid}")
        context["author"] = delivery.message.author
    context["subject"] = SUBJECTS[kind]
    text = render_to_string(f"notifications/email/{kind}.txt", context)
    html = render_to_string(f"notifications/email/{kind}.html", context)
    host = urlsplit(settings.BASE_URL).hostname or "hushpost.localhost"
    email = EmailMultiAlternatives(
        subject=SUBJECTS[kind],
        body=text,
        from_email=formataddr((org.sender_name, org.notify_from_email or settings.DEFAULT_FROM_EMAIL)),
        to=[user.email],
        headers={
            "Message-ID": make_msgid(domain=host),
            "Auto-Submitted": "auto-generated",
            "X-Auto-Response-Suppress": "All",
        },
    )
    email.attach_alternative(html, "text/html")
    return email
