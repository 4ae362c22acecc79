"""The e-mail the spool sends a sender whose relayed e-mail could not be stored
(``gateway/spool.py``): what a mail server's bounce says, without the e-mail's content."""

from __future__ import annotations

from django.conf import settings

from hushpost.gateway.models import SpooledMail
from hushpost.notifications import kinds
from hushpost.notifications.emails import absolute
from hushpost.notifications.models import Notification

Reason = SpooledMail.Reason
# Hushpost's own words for each kind of refusal: what the sender can do about it.
WHY = {
    Reason.SENDER: "it did not come from your own address as an active Secure Messaging sender, "
                   "through a mail server your organisation relays from (the From address must be yours)",
    Reason.POLICY: "your organisation's settings do not allow it as written: the subject needs the "
                   "secure keyword, or it asked for an expiry your organisation does not allow",
    Reason.SIZE: "it, one of its files, or all its files together are larger than your organisation allows",
    Reason.FORM: "it could not be read as a secure message: it had no text and no files, an option "
                 "Secure Messaging does not know, or a structure too complex to read",
    Reason.DAMAGED: "it was damaged while it waited to be stored",
    Reason.OTHER: "it could not be stored as a secure message",
}


def _why(reason: str) -> str:
    if reason == Reason.GAVE_UP:
        seconds = settings.SMTPD_SPOOL_GIVE_UP_SECONDS
        n, unit = (round(seconds / 86400), "day") if seconds >= 86400 else (max(1, round(seconds / 3600)), "hour")
        return f"Secure Messaging could not store it for {n} {unit}{'s' if n != 1 else ''}"
    return WHY.get(reason, WHY[Reason.OTHER])


def _not_sent_context(notification: Notification) -> dict:
    row = SpooledMail.objects.filter(notification=notification).first()
    return {"received_at": row.received_at if row else notification.created_at,
            "recipients": row.recipients if row else "", "reason": _why(row.outcome if row else ""),
            "link": absolute("/app/compose")}


kinds.register(kinds.EmailKind(
    Notification.Kind.NOT_SENT, "Secure Messaging Not Sent", "gateway/email/not_sent", context=_not_sent_context,
))
