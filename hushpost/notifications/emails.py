"""Writing the e-mails Hushpost sends, whatever their kind.

None carries message content; the one exception an organisation may choose is
the subject in read receipts and reply notices (its policy's ``receipt_includes_subject``).
Each ends with its reference code (:mod:`.links`), what Hushpost never asks by e-mail, and
the portal's address to type instead of following the link.
"""

from __future__ import annotations

import re
import secrets
import sys
from email.policy import compat32
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from functools import lru_cache

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import (
    RFC5322_EMAIL_LINE_LENGTH_LIMIT,
    forbid_multi_line_headers,
    sanitize_address,
)
from django.core.mail.utils import DNS_NAME
from django.template.loader import render_to_string
from django.utils import timezone

from hushpost.crypto import dkim, labels, master
from hushpost.lib import zones
from hushpost.notifications import bounces, kinds, links
from hushpost.notifications.models import Notification


def absolute(path: str) -> str:
    return settings.BASE_URL + path


def recipient_login_link(notification: Notification) -> str:
    """The link a recipient's e-mail carries: it names the e-mail, never the address (:mod:`.links`)."""
    return absolute(links.link_path(notification))


def security_phrase(user) -> str:
    """The phrase the account's owner chose to recognise our e-mails by, or ""."""
    sealed = getattr(user, "security_phrase_sealed", None)
    if not sealed:
        return ""
    return master.open_sealed(bytes(sealed), labels.security_phrase_aad(user.pk)).decode()


def portal_address(notification: Notification) -> str:
    """Where to sign in without the e-mail's link, written to be typed (no scheme, never a link)."""
    site = settings.BASE_URL.split("://", 1)[-1]
    user = notification.user
    if notification.org is None or user is None:
        return f"{site}/find-my-portal"
    return f"{site}/login" if user.is_sender else f"{site}/r/{notification.org.slug}/"


def domain_of(address: str) -> str:
    """The domain of an address (``Name <user@example.org>`` or ``user@example.org``), lower case."""
    return parseaddr(address)[1].rpartition("@")[2].lower() or DNS_NAME.get_fqdn()


def build_email(notification: Notification, prepared: kinds.Prepared | None = None) -> Notice:
    kind = kinds.of(notification)
    org = notification.org
    subject = kind.subject_of(notification)
    context = {"org": org, "user": notification.user, "delivery": notification.delivery,
               "subject": subject, "reference": links.reference(notification),
               "portal_address": portal_address(notification),
               "logo_url": absolute(org.logo_path) if org and org.logo_digest else "",
               "security_phrase": security_phrase(notification.user),
               "recipient": notification.user is not None and notification.user.is_recipient,
               **kind.context(notification), **(prepared or kinds.Prepared()).context}
    # Times in the zone of whoever reads it (their account's, else the organisation's), from rows
    # already loaded with the notification; the Date header stays RFC 5322.
    with timezone.override(zones.zone(zones.for_account(notification.user, org))):
        text = render_to_string(f"{kind.template}.txt", context)
        if org is not None and (org.brand_footer or org.support_line):
            # Every kind's text ends the same way: the organisation's footer and support contact below it.
            text = text.rstrip("\n") + "\n" + render_to_string("notifications/email/footer.txt", context)
        html = render_to_string(f"{kind.template}.html", context)
    from_address = (org.notify_from_email if org else "") or settings.DEFAULT_FROM_EMAIL
    email = Notice(
        subject=subject,
        body=text,
        from_email=formataddr((org.sender_name if org else "Secure Messaging", from_address)),
        to=[notification.to_address],
        headers={
            # The sending domain's, as DKIM signs it and DMARC aligns it, not this server's name.
            "Message-ID": make_msgid(domain=domain_of(from_address)),
            "Auto-Submitted": "auto-generated",
            "X-Auto-Response-Suppress": "All",
        },
    )
    email.attach_alternative(html, "text/html")
    email.return_path = bounces.return_path(notification.key)
    return email


# Written the way the stdlib's generator writes Django's message (the compat32 policy).
_FOLD = compat32.clone(linesep="\r\n")
_NEWLINE = re.compile(r"\r\n|\r|\n")
# The commonest shape of address, which Django's sanitize_address gives back unchanged.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+")


class Notice(EmailMultiAlternatives):
    """An e-mail Hushpost sends: a text part and its HTML alternative.

    Any Django backend can send it (the development mailbox does). The relay
    sends :meth:`as_bytes` instead: the same bytes as Django's ``message()``
    flattened by the stdlib's generator, written directly (header lines that
    repeat from e-mail to e-mail, such as the subject and the sender, are folded
    once), which costs a fraction of building and walking the MIME tree.

    What goes is :meth:`signed_bytes`: those bytes under a DKIM signature of the From
    address's domain, when that domain has a key (:mod:`hushpost.crypto.dkim`).
    """

    # The envelope sender when it is not the From address: the tagged bounce address
    # (``bounces.return_path``), so a delivery report comes back to Hushpost and names this e-mail.
    return_path = ""

    def envelope(self) -> tuple[str, list[str]]:
        """MAIL FROM and RCPT TO, as Django's SMTP backend gives them to smtplib (MAIL FROM the
        tagged bounce address when one is set)."""
        return self.return_path or _sanitized(self.from_email), [_address(to) for to in self.recipients()]

    def signed_bytes(self) -> bytes:
        """:meth:`as_bytes` with the DKIM signature of the From address's domain before them, if it has a key."""
        unsigned = self.as_bytes()
        return dkim.signature(unsigned, domain_of(self.from_email)) + unsigned

    def as_bytes(self) -> bytes:
        names = {name.lower() for name in self.extra_headers}
        texts = [self.body, *(content for content, _ in self.alternatives)]
        if ((self.encoding or settings.DEFAULT_CHARSET) != "utf-8" or self.attachments or self.cc
                or self.reply_to or not self.to or not self.body or names & {"from", "to", "cc", "reply-to"}
                or [mimetype for _, mimetype in self.alternatives] != ["text/html"]
                or any(_long_lines(text) for text in texts)):
            return self.message().as_bytes(linesep="\r\n")  # not the usual shape: Django writes it
        bodies = [_part(texts[0], "plain"), _part(texts[1], "html")]
        boundary = _boundary(bodies)
        head = [f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n'.encode(),
                b"MIME-Version: 1.0\r\n", _header("Subject", self.subject), _header("From", self.from_email),
                _line("To", ", ".join(str(to) for to in self.to))]
        if "date" not in names:
            head.append(_line("Date", formatdate(localtime=settings.EMAIL_USE_LOCALTIME)))
        if "message-id" not in names:
            head.append(_line("Message-ID", make_msgid(domain=domain_of(self.from_email))))
        head += [_line(name, value) for name, value in self.extra_headers.items()]
        dash = f"--{boundary}".encode()
        return b"".join([*head, b"\r\n", dash, b"\r\n", bodies[0], b"\r\n", dash, b"\r\n", bodies[1],
                         b"\r\n", dash, b"--\r\n"])


def _line(name: str, value: str) -> bytes:
    """One header line: as it is when it fits and needs no encoding, else folded as Django's would be."""
    if name.lower() != "subject" and value.isascii() and value.isprintable() and len(name) + len(value) <= 76:
        return f"{name}: {value}\r\n".encode()
    return _folded(name, value)


@lru_cache(maxsize=256)
def _header(name: str, value: str) -> bytes:
    """A header line that repeats (a kind's subject, an organisation's sender), folded once."""
    return _line(name, value)


def _folded(name: str, value: str) -> bytes:
    return _FOLD.fold_binary(*forbid_multi_line_headers(name, value, "utf-8"))


@lru_cache(maxsize=256)
def _sanitized(address: str) -> str:
    return sanitize_address(address, "utf-8")


def _address(address: str) -> str:
    return address if _PLAIN_ADDRESS.fullmatch(address) else _sanitized(address)


def _long_lines(text: str) -> bool:
    """Django quoted-printable-encodes a part with a line this long."""
    return any(len(line.encode(errors="surrogateescape")) > RFC5322_EMAIL_LINE_LENGTH_LIMIT
               for line in text.splitlines())


def _part(text: str, subtype: str) -> bytes:
    encoding = "7bit" if text.isascii() else "8bit"
    lines = _NEWLINE.sub("\r\n", text)
    return (f'Content-Type: text/{subtype}; charset="utf-8"\r\nMIME-Version: 1.0\r\n'
            f"Content-Transfer-Encoding: {encoding}\r\n\r\n{lines}").encode()


def _boundary(bodies: list[bytes]) -> str:
    """A boundary in the generator's form that appears in neither part."""
    while True:
        boundary = "=" * 15 + f"{secrets.randbelow(sys.maxsize):019d}" + "=="
        if not any(f"--{boundary}".encode() in body for body in bodies):
            return boundary
