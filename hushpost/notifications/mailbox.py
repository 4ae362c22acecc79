"""The development mailbox: an e-mail backend that stores instead of sending."""

from __future__ import annotations

from django.core.mail.backends.base import BaseEmailBackend

from hushpost.notifications.models import DevMail


class MailboxBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        for m in email_messages:
            html = ""
            for content, mimetype in getattr(m, "alternatives", []):
                if mimetype == "text/html":
                    html = content
            DevMail.objects.create(
                to=", ".join(m.to + m.cc),
                from_email=m.from_email,
                subject=m.subject,
                text=m.body,
                html=html,
                raw=m.message().as_string(),
            )
        return len(email_messages)
