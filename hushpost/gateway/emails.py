"""The e-mail the spool sends a sender whose relayed e-mail could not be stored
(``gateway/spool.py``): what a mail server's bounce says, without the e-mail's content."""

from __future__ import annotations

from hushpost.gateway.models import SpooledMail
from hushpost.notifications import kinds
from hushpost.notifications.emails import absolute
from hushpost.notifications.models import Notification


def _not_sent_context(notification: Notification) -> dict:
    row = SpooledMail.objects.filter(notification=notification).first()
    return {"received_at": row.received_at if row else notification.created_at,
            "recipients": row.recipients if row else "", "reason": row.outcome.rstrip(".") if row else "",
            "link": absolute("/app/compose")}


kinds.register(kinds.EmailKind(
    Notification.Kind.NOT_SENT, "Secure Messaging Not Sent", "gateway/email/not_sent", context=_not_sent_context,
))
