"""The e-mails messages cause: the Secure Messaging Notification, the read receipt, the reply notice."""

from __future__ import annotations

from hushpost.messaging.content import open_subject
from hushpost.notifications import kinds, links
from hushpost.notifications.emails import absolute, recipient_login_link
from hushpost.notifications.models import Notification

Kind = Notification.Kind


def _delivery(notification: Notification):
    if notification.delivery is None:
        raise ValueError(f"a {notification.kind} notification needs a delivery")
    return notification.delivery


def _message_context(notification: Notification) -> dict:
    message = _delivery(notification).message
    return {"link": recipient_login_link(notification),
            "author": message.author, "expires_at": message.expires_at}


def _named(notification: Notification, message) -> dict:
    """The message's subject, where the organisation chose that receipts and reply notices name it:
    the one case where an e-mail carries content. Otherwise its reference code alone says which."""
    if notification.org.receipt_includes_subject:
        return {"message_subject": open_subject(message)}
    return {}


def _read_receipt_context(notification: Notification) -> dict:
    delivery = _delivery(notification)
    return {"link": absolute(f"/app/m/{delivery.message.uid}"), "reader": delivery.recipient,
            "opened_at": delivery.first_opened_at, **_named(notification, delivery.message)}


def _reply_context(notification: Notification) -> dict:
    message = _delivery(notification).message
    original = message.in_reply_to
    return {"link": absolute(f"/app/m/{message.uid}"), "author": message.author,
            "original_reference": links.message_reference(original.uid) if original else "",
            **_named(notification, message)}


kinds.register(kinds.EmailKind(
    Kind.MESSAGE, "Secure Messaging Notification", "messaging/email/message", context=_message_context,
))
kinds.register(kinds.EmailKind(
    Kind.READ_RECEIPT, "Secure Messaging Read Receipt", "messaging/email/read_receipt",
    context=_read_receipt_context,
))
kinds.register(kinds.EmailKind(
    Kind.REPLY, "Secure Messaging Reply Notification", "messaging/email/reply", context=_reply_context,
))
