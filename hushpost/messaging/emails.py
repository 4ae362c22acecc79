"""The e-mails messages cause: the Secure Messaging Notification, the read receipt, the reply notice,
and a reminder of an unopened message with the note to its sender that one went (``reminders.py``),
and the Delivery Failure that tells a sender a recipient's e-mail bounced."""

from __future__ import annotations

from django.db import transaction

from hushpost.messaging import reminders
from hushpost.messaging.content import open_subject
from hushpost.messaging.models import Delivery
from hushpost.notifications import bounces, kinds, links
from hushpost.notifications.actions import queue_notification
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


def _reminder_context(notification: Notification) -> dict:
    # The message notification's own link and words, so the two never differ.
    return {**_message_context(notification), "sent_at": _delivery(notification).message.created_at}


def _still_unopened(notification: Notification) -> kinds.Prepared | None:
    """A reminder whose message was opened, recalled, deleted, expired or purged meanwhile does not go."""
    return kinds.Prepared() if reminders.still_wanted(_delivery(notification)) else None


def _tell_the_sender(notification: Notification, prepared: kinds.Prepared) -> None:
    """Once the relay has taken a reminder, its sender hears of it if the policy says so (never of
    one that did not go: opened or recalled before its turn)."""
    if notification.org.remind_tells_sender:
        delivery = _delivery(notification)
        queue_notification(Kind.REMINDER_SENT, delivery.message.author, delivery=delivery)


def _reminder_sent_context(notification: Notification) -> dict:
    delivery = _delivery(notification)
    return {"link": absolute(f"/app/m/{delivery.message.uid}"), "reader": delivery.recipient,
            "count": delivery.reminders_sent}


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


def _bounce_context(notification: Notification) -> dict:
    delivery = _delivery(notification)
    bounced = (Notification.objects.filter(delivery=delivery, user_id=delivery.recipient_id,
                                           status=Notification.Status.BOUNCED)
               .order_by("-bounced_at").first())
    # The status code alone and what it means: the report's own words come from whoever sent it,
    # so they stay on the signed-in message page and never reach an e-mail signed for the
    # organisation's domain.
    return {"link": absolute(f"/app/m/{delivery.message.uid}"), "recipient": delivery.recipient,
            "reason": bounces.meaning(bounced.bounce_reason if bounced else "")}


def tell_sender(notification: Notification) -> None:
    """A recipient's e-mail about a message bounced: its sender gets one Delivery Failure per
    recipient, however many of that recipient's e-mails (password, message) bounce."""
    if notification.delivery_id is None or notification.kind not in (Kind.MESSAGE, Kind.PASSWORD):
        return
    with transaction.atomic():
        delivery = (Delivery.objects.select_for_update().select_related("message__author")
                    .filter(pk=notification.delivery_id).first())
        if delivery is None or notification.user_id != delivery.recipient_id:
            return
        author = delivery.message.author
        if not author.is_sender or Notification.objects.filter(delivery=delivery, kind=Kind.BOUNCE).exists():
            return
        queue_notification(Kind.BOUNCE, author, delivery=delivery)


bounces.on_bounce(tell_sender)
kinds.register(kinds.EmailKind(
    Kind.BOUNCE, "Secure Messaging Delivery Failure", "messaging/email/bounce", context=_bounce_context,
))
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
kinds.register(kinds.EmailKind(
    Kind.REMINDER, "Reminder: Secure Messaging Notification", "messaging/email/reminder",
    context=_reminder_context, prepare=_still_unopened, accepted=_tell_the_sender,
))
kinds.register(kinds.EmailKind(
    Kind.REMINDER_SENT, "Secure Messaging Reminder Sent", "messaging/email/reminder_sent",
    context=_reminder_sent_context,
))
