"""The statements every page of a message runs, written out.

Every message a signed-in user opens (the recipient's page, the sender's, a
reply, a print, a download) is loaded through :mod:`hushpost.messaging.access`.
Built by the ORM, its two look-ups (the message with its author, organisation
and the message it answers, then the user's own delivery of it) cost more of
the web server's CPU in compiling than PostgreSQL spent running them. Here
they are one SELECT: the user's delivery is joined to the message, at most one
row (one delivery per message and person). The columns are every column of
each model, as the ORM's ``select_related`` reads them, converted as the ORM
converts them, so the objects are the ones the ORM would have built. The same
SQL serves PostgreSQL and SQLite. So does the recipient's page's read of who
the message was sent to and who it, or one above it, was recalled for
(:func:`hushpost.messaging.threads.addressed`), the read of its files that both
the recipient's and the sender's page run (:func:`hushpost.attachments.actions.files_of`),
and the sender's page's read of each addressee's delivery and e-mails
(:func:`hushpost.messaging.status.states_of_message`). The first opening's
conditional UPDATE is written out too.

Only the statements are here: what the user may see is decided in ``access``,
what a conversation allows in ``threads``, what an opening causes in ``actions``.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from hushpost.accounts.models import User
from hushpost.attachments.models import Attachment
from hushpost.lib.rows import Columns, build
from hushpost.messaging.models import Delivery, Message
from hushpost.notifications.models import Notification
from hushpost.orgs.models import Organization

_MESSAGE = Columns(Message, "m")
_AUTHOR = Columns(User, "a")
_ORG = Columns(Organization, "o")
_ANSWERED = Columns(Message, "p")
_DELIVERY = Columns(Delivery, "d")
_PARTS = (_MESSAGE, _AUTHOR, _ORG, _ANSWERED, _DELIVERY)
_ADDRESSEE = Columns(User, "a")
_FILE = Columns(Attachment, "f")
_REPLACEMENT = Columns(Delivery, "r")
_REPLACEMENT_RECIPIENT = Columns(User, "ra")
_NOTIFICATION = Columns(Notification, "n")


_MESSAGE_FROM = (
    ' FROM "messaging_message" m'
    ' INNER JOIN "accounts_user" a ON a."id" = m."author_id"'
    ' INNER JOIN "orgs_organization" o ON o."id" = m."org_id"'
    ' LEFT OUTER JOIN "messaging_message" p ON p."id" = m."in_reply_to_id"'
    ' LEFT OUTER JOIN "messaging_delivery" d ON d."message_id" = m."id" AND d."recipient_id" = %s'
    ' WHERE m."uid" = %s AND m."org_id" = %s'
)
# The columns are the models' own (every value is a parameter).
_MESSAGE_AND_DELIVERY = "SELECT " + ", ".join(part.sql for part in _PARTS) + _MESSAGE_FROM  # noqa: S608

_author = Message._meta.get_field("author")
_org = Message._meta.get_field("org")
_in_reply_to = Message._meta.get_field("in_reply_to")
_delivered = Delivery._meta.get_field("message")
_recipient = Delivery._meta.get_field("recipient")


def message_and_delivery(user: User, uid: str, org_id: int) -> tuple[Message, Delivery | None] | None:
    """The organisation's message ``uid`` with its author, organisation and the message it
    answers, and ``user``'s delivery of it (None if they have none); None if there is no
    such message. The delivery knows its message and its recipient, ``user``."""
    with connection.cursor() as cursor:
        cursor.execute(_MESSAGE_AND_DELIVERY, [user.pk, uid, org_id])
        row = cursor.fetchone()
    if row is None:
        return None
    message, author, org, answered, delivery = build(_PARTS, row)
    _author.set_cached_value(message, author)
    _org.set_cached_value(message, org)
    _in_reply_to.set_cached_value(message, answered)
    if delivery is not None:
        _delivered.set_cached_value(delivery, message)
        if type(user) is User:  # not a lazy stand-in for one
            _recipient.set_cached_value(delivery, user)
    return message, delivery


# The deliveries of the message (the first parameter) with their recipients, and those of
# the messages above it that were recalled; the ids of all of them follow.
_ADDRESSED_FROM = (
    ' FROM "messaging_delivery" d INNER JOIN "accounts_user" a ON a."id" = d."recipient_id"'
    ' WHERE (d."message_id" = %s OR d."recalled_at" IS NOT NULL) AND d."message_id" IN '
)
_ADDRESSED = "SELECT " + _DELIVERY.sql + ", " + _ADDRESSEE.sql + _ADDRESSED_FROM  # noqa: S608


def deliveries_in(message_id: int, chain: list[int]) -> list[Delivery]:
    """Every delivery of message ``message_id``, and the recalled ones of the other messages
    of ``chain`` (the message and those above it), each with its recipient."""
    with connection.cursor() as cursor:
        cursor.execute(_ADDRESSED + "(" + ", ".join(["%s"] * len(chain)) + ")", [message_id, *chain])
        rows = cursor.fetchall()
    found = []
    for row in rows:
        delivery = _DELIVERY.build(row, 0)
        _recipient.set_cached_value(delivery, _ADDRESSEE.build(row, len(_DELIVERY.cols)))
        found.append(delivery)
    return found


_FILES_FROM = ' FROM "attachments_attachment" f WHERE f."message_id" = %s ORDER BY f."position", f."id"'
_FILES = "SELECT " + _FILE.sql + _FILES_FROM  # noqa: S608
_attached_to = Attachment._meta.get_field("message")


def attachments_of(message: Message) -> list[Attachment]:
    """The message's attachments in the order they were attached, each knowing its message."""
    with connection.cursor() as cursor:
        cursor.execute(_FILES, [message.pk])
        rows = cursor.fetchall()
    found = []
    for row in rows:
        attachment = _FILE.build(row, 0)
        _attached_to.set_cached_value(attachment, message)
        found.append(attachment)
    return found


# The sender's page: each delivery of the message with its recipient and the delivery that
# replaced it (with its recipient), in the order they were made; then their notifications.
_SENT_PARTS = (_DELIVERY, _ADDRESSEE, _REPLACEMENT, _REPLACEMENT_RECIPIENT)
_SENT_FROM = (
    ' FROM "messaging_delivery" d INNER JOIN "accounts_user" a ON a."id" = d."recipient_id"'
    ' LEFT OUTER JOIN "messaging_delivery" r ON r."id" = d."replaced_by_id"'
    ' LEFT OUTER JOIN "accounts_user" ra ON ra."id" = r."recipient_id"'
    ' WHERE d."message_id" = %s ORDER BY d."id"'
)
_SENT = "SELECT " + ", ".join(part.sql for part in _SENT_PARTS) + _SENT_FROM  # noqa: S608
_NOTIFICATIONS_FROM = (
    ' FROM "notifications_notification" n WHERE n."delivery_id" IN'
    ' (SELECT d."id" FROM "messaging_delivery" d WHERE d."message_id" = %s) ORDER BY n."id"'
)
_NOTIFICATIONS = "SELECT " + _NOTIFICATION.sql + _NOTIFICATIONS_FROM  # noqa: S608
_replaced_by = Delivery._meta.get_field("replaced_by")


def deliveries_with_notifications(message: Message) -> list[tuple[Delivery, list[Notification]]]:
    """Each delivery of the message, oldest first, with its recipient, the delivery that replaced
    it and that one's recipient, and its notifications in the order they were queued."""
    with connection.cursor() as cursor:
        cursor.execute(_SENT, [message.pk])
        rows = cursor.fetchall()
        cursor.execute(_NOTIFICATIONS, [message.pk])
        notification_rows = cursor.fetchall()
    notes: dict[int, list[Notification]] = {}
    for row in notification_rows:
        notification = _NOTIFICATION.build(row, 0)
        notes.setdefault(notification.delivery_id, []).append(notification)
    found = []
    for row in rows:
        delivery, recipient, replacement, replacement_recipient = build(_SENT_PARTS, row)
        _recipient.set_cached_value(delivery, recipient)
        _delivered.set_cached_value(delivery, message)
        _replaced_by.set_cached_value(delivery, replacement)
        if replacement is not None:
            _recipient.set_cached_value(replacement, replacement_recipient)
        found.append((delivery, notes.get(delivery.pk, [])))
    return found


_OPENED = 'UPDATE "messaging_delivery" SET "first_opened_at" = %s WHERE "id" = %s AND "first_opened_at" IS NULL'


def mark_opened(delivery: Delivery, at: datetime) -> bool:
    """Date the delivery's first opening, unless another request did first; whether this one did."""
    with connection.cursor() as cursor:
        cursor.execute(_OPENED, [connection.ops.adapt_datetimefield_value(at), delivery.pk])
        return cursor.rowcount == 1
