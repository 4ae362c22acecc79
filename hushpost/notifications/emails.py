"""Writing the e-mails Hushpost sends, whatever their kind.

None carries message content; the one exception an organisation may choose is
the subject in read receipts (its policy's ``receipt_includes_subject``).
"""

from __future__ import annotations

from email.utils import formataddr, make_msgid
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from hushpost.notifications import kinds
from hushpost.notifications.models import Notification


def absolute(path: str) -> str:
    return settings.BASE_URL + path


def recipient_login_link(org_slug: str, email: str, next_path: str = "") -> str:
    query = {"email": email}
    if next_path:
        query["next"] = next_path
    return absolute(f"/r/{org_slug}/login?{urlencode(query)}")


def build_email(notification: Notification, prepared: kinds.Prepared | None = None) -> EmailMultiAlternatives:
    kind = kinds.of(notification)
    org = notification.org
    context = {"org": org, "user": notification.user, "delivery": notification.delivery,
               "subject": kind.subject, **kind.context(notification), **(prepared or kinds.Prepared()).context}
    text = render_to_string(f"{kind.template}.txt", context)
    html = render_to_string(f"{kind.template}.html", context)
    host = urlsplit(settings.BASE_URL).hostname or "hushpost.localhost"
    email = EmailMultiAlternatives(
        subject=kind.subject,
        body=text,
        from_email=formataddr((org.sender_name, org.notify_from_email or settings.DEFAULT_FROM_EMAIL) if org
                              else ("Secure Messaging", settings.DEFAULT_FROM_EMAIL)),
        to=[notification.to_address],
        headers={
            "Message-ID": make_msgid(domain=host),
            "Auto-Submitted": "auto-generated",
            "X-Auto-Response-Suppress": "All",
        },
    )
    email.attach_alternative(html, "text/html")
    return email
