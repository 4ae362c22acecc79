"""Bounces: which e-mail a delivery report is about, and what it said.

With ``HUSHPOST_BOUNCE_ADDRESS`` set (``bounces@bounce.example``), every e-mail goes out with the
envelope sender ``bounces+<tag>@bounce.example`` (VERP): the tag is the notification's key, hidden
as in e-mail links, and a keyed hash of it (:func:`hushpost.crypto.macs.bounce_tag`), so a report naming it can only come
from someone who saw that e-mail's envelope: its recipient's mail system. The gateway hands every
report sent there with the null sender to :func:`receive`:

* a permanent failure (``Action: failed``, a 5.x.x status) marks the e-mail *Bounced* with the
  report's Status and Diagnostic-Code, cleaned and shortened, and tells the owning app (for a
  message, its sender gets a *Secure Messaging Delivery Failure* e-mail);
* a delay (``Action: delayed``, 4.x.x) is kept as a note, the e-mail still *Sent*;
* anything else, or a tag that does not verify, is dropped: the gateway answers 250 all the same,
  so nobody learns from the reply which tags are real.

Reports are RFC 3464 ``multipart/report; report-type=delivery-status``; a mail server's own kind
of report (a text saying "550 5.1.1 ...") counts when it names the e-mail, by its tag or by the
Message-ID of the e-mail quoted in it. Read with the standard library's compat32 parser, which
parses no structured header, from at most ``HUSHPOST_BOUNCE_MAX_BYTES``.
"""

from __future__ import annotations

import base64
import email
import hashlib
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message as MimeMessage
from email.policy import compat32

from django.conf import settings
from django.db import transaction

from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.crypto import macs
from hushpost.lib import clock
from hushpost.notifications.models import Notification

log = logging.getLogger("hushpost.notifications")

KEY_CHARS, MAC_CHARS = 26, 16  # a UUID's 16 bytes and the 10-byte MAC, in base32 without padding
_TAG = re.compile(rf"[a-z2-7]{{{KEY_CHARS + MAC_CHARS}}}")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_REPLY = re.compile(r"\b([45]\d\d)[ -]")
_MESSAGE_ID = re.compile(r"^message-id:\s*(<[^>\s]{1,250}>)", re.I | re.M)
REASON_CHARS = 200

# What owning apps do when one of their e-mails bounces, called in the transaction that marks it.
_on_bounce: list[Callable[[Notification], None]] = []


def on_bounce(callback: Callable[[Notification], None]) -> None:
    """Register what follows a bounce (messaging tells the message's sender)."""
    _on_bounce.append(callback)


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()


def return_path(key: uuid.UUID) -> str:
    """The envelope sender of the e-mail with this key; "" when no bounce address is set."""
    if not settings.BOUNCE_ADDRESS:
        return ""
    local, _, domain = settings.BOUNCE_ADDRESS.partition("@")
    # The key hidden as in e-mail links (never the key itself), and a keyed hash of the key.
    return f"{local}+{_b32(macs.hide_notification_key(key.bytes))}{_b32(macs.bounce_tag(key.bytes))}@{domain}"


def is_bounce_address(address: str) -> bool:
    """The bounce address, with or without a tag (whether the tag is good is not said here)."""
    if not settings.BOUNCE_ADDRESS:
        return False
    local, _, domain = address.strip().lower().rpartition("@")
    base_local, _, base_domain = settings.BOUNCE_ADDRESS.partition("@")
    return domain == base_domain and (local == base_local or local.startswith(base_local + "+"))


def key_of(address: str) -> uuid.UUID | None:
    """The notification key a tagged bounce address names, if its keyed hash holds."""
    local = address.strip().lower().rpartition("@")[0]
    tag = local.rpartition("+")[2]
    if not _TAG.fullmatch(tag):
        return None
    try:
        raw = base64.b32decode(tag[:KEY_CHARS].upper() + "======")
        mac = base64.b32decode(tag[KEY_CHARS:].upper())
    except ValueError:
        return None
    if len(raw) != 16:
        return None
    raw = macs.reveal_notification_key(raw)
    for secret in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]:
        if macs.matches(_b32(macs.bounce_tag(raw, secret)), _b32(mac)):
            return uuid.UUID(bytes=raw)
    return None


@dataclass(frozen=True)
class Report:
    permanent: bool  # a failure for good; otherwise a delay
    reason: str  # Status and Diagnostic-Code, cleaned, at most REASON_CHARS


def clean(text: str) -> str:
    """A report's words as the sender may see them: printable, one line, short."""
    text = "".join(c if c.isprintable() else " " for c in text)
    text = " ".join(text.split())
    return text[:REASON_CHARS]


def read_report(mail: MimeMessage) -> Report | None:
    """What a delivery report says about our one recipient, or None if it reports no failure."""
    found: list[Report] = []
    for part in mail.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            continue
        for block in blocks[1:] or blocks:  # the first block describes the report, the others recipients
            action = str(block.get("Action", "")).strip().lower()
            status = str(block.get("Status", "")).strip()
            code = _STATUS.search(status)
            diagnostic = str(block.get("Diagnostic-Code", "")).strip()
            diagnostic = diagnostic.split(";", 1)[1] if ";" in diagnostic[:20] else diagnostic
            status = code.group(0) if code else status
            reason = clean(diagnostic if status and status in diagnostic else f"{status} {diagnostic}")
            if action == "failed" and (code is None or code.group(1) == "5"):
                found.append(Report(True, reason))
            elif action == "delayed" or (code is not None and code.group(1) == "4"):
                found.append(Report(False, reason))
    if found:
        return next((r for r in found if r.permanent), found[0])
    if str(mail.get("Auto-Submitted", "")).strip().lower().startswith("auto-replied"):
        return None  # an out-of-office answer, not a report
    return _plain_report(_text_of(mail))


def _plain_report(text: str) -> Report | None:
    """A mail server's own kind of report: its first enhanced status code or SMTP reply, in context."""
    for line in text.splitlines():
        code = _STATUS.search(line) or _REPLY.search(line)
        if code is None or code.group(1) == "2":
            continue
        return Report(code.group(1).startswith("5"), clean(line))
    return None


def _text_of(mail: MimeMessage) -> str:
    parts = []
    for part in mail.walk():
        if part.get_content_maintype() == "text" or part.get_content_type() == "message/rfc822":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                parts.append(payload.decode("utf-8", "replace"))
            elif part.get_content_type() == "message/rfc822":
                parts.extend(str(p) for p in part.get_payload() if isinstance(p, MimeMessage))
    return "\n".join(parts)


def _identify(rcpt_tos: list[str], mail: MimeMessage, raw: bytes) -> Notification | None:
    """The e-mail reported on: by the envelope recipient's tag, else a tag or the Message-ID quoted."""
    keys = [key_of(a) for a in rcpt_tos]
    text = raw.decode("utf-8", "replace").lower()
    if not any(keys) and settings.BOUNCE_ADDRESS:
        local, _, domain = settings.BOUNCE_ADDRESS.partition("@")
        quoted = re.findall(rf"{re.escape(local)}\+([a-z2-7]{{{KEY_CHARS + MAC_CHARS}}})@{re.escape(domain)}", text)
        keys = [key_of(f"{local}+{tag}@{domain}") for tag in dict.fromkeys(quoted)]
    key = next((k for k in keys if k is not None), None)
    if key is not None:
        return Notification.objects.filter(key=key).select_related("user").first()
    if any("+" in a.rpartition("@")[0] for a in rcpt_tos):
        return None  # a tag was given and does not verify: no second way in
    message_ids = _MESSAGE_ID.findall(_text_of(mail))
    if message_ids:
        return (Notification.objects.filter(smtp_message_id__in=message_ids[:5])
                .select_related("user").first())
    return None


def receive(raw: bytes, rcpt_tos: list[str]) -> str:
    """Act on a delivery report sent to the bounce address; what was done, for the log."""
    mail = email.message_from_bytes(raw, policy=compat32)
    notification = _identify(rcpt_tos, mail, raw)
    if notification is None:
        return "ignored"
    report = read_report(mail)
    if report is None:
        return "ignored"
    with transaction.atomic():
        if report.permanent:
            marked = Notification.objects.filter(
                pk=notification.pk, status=Notification.Status.SENT
            ).update(status=Notification.Status.BOUNCED, bounce_reason=report.reason, bounced_at=clock.now())
            if not marked:
                return "already"
            notification.status = Notification.Status.BOUNCED
            notification.bounce_reason = report.reason
            record(AuditEvent.Action.BOUNCE, org=notification.org, obj=notification,
                   detail=f"{notification.kind} e-mail bounced: {_code(report.reason)}")
            for callback in _on_bounce:
                callback(notification)
            return "bounced"
        if notification.status != Notification.Status.SENT:
            return "already"
        # The first delay alone is noted and audited: whoever holds the tag could send any number.
        noted = Notification.objects.filter(pk=notification.pk, status=Notification.Status.SENT,
                                            bounced_at__isnull=True, bounce_reason="").update(
            bounce_reason=report.reason)
        if not noted:
            return "already"
        record(AuditEvent.Action.BOUNCE, org=notification.org, obj=notification,
               detail=f"{notification.kind} e-mail delayed: {_code(report.reason)}")
        return "delayed"


# What the commonest permanent status codes (RFC 3463) mean, in words a sender can act on.
_MEANINGS = {
    "5.1.1": "the address does not exist",
    "5.1.2": "the address's domain does not exist or takes no mail",
    "5.1.3": "the address is not a valid address",
    "5.1.6": "the mailbox has moved",
    "5.1.10": "the address's domain takes no mail",
    "5.2.1": "the mailbox is disabled",
    "5.2.2": "the mailbox is full",
    "5.2.3": "the e-mail was too large for the mailbox",
    "5.4.1": "the recipient's mail server refused it",
    "5.4.4": "the address's domain could not be found",
    "5.7.1": "the recipient's mail server refused it",
}


def meaning(reason: str) -> str:
    """A report's status code and what it means, without the report's own words."""
    code = _code(reason)
    if code == "no status code":
        return "their mail server gave no status code"
    if code in _MEANINGS:
        return f"{code}: {_MEANINGS[code]}"
    return f"{code}: the recipient's mail server could not deliver it"


def _code(reason: str) -> str:
    """The status code alone, for the audit trail (the diagnostic text may quote an address)."""
    code = _STATUS.search(reason) or _REPLY.search(reason + " ")
    return code.group(0).strip() if code else "no status code"


def fingerprint(raw: bytes) -> str:
    """How logs name a report: a hash, never its content."""
    return hashlib.sha256(raw).hexdigest()[:16]
