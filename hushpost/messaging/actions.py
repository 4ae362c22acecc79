"""Every state change of a message: send, open, reply, delete.

Views parse HTTP and call one of these; each runs in one transaction, with
the notifications it causes queued in that same transaction, so a message is
never stored without its notifications or the other way round.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import IntegrityError, transaction

from hushpost.accounts.models import User
from hushpost.attachments import actions as files
from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock, rows
from hushpost.lib.refusals import Refused
from hushpost.messaging.content import open_subject, seal_content
from hushpost.messaging.models import Delivery, Message, Restriction
from hushpost.messaging.sql import mark_opened
from hushpost.messaging.threads import (
    TOO_LONG,
    addressed,
    ancestors,
    forget_recalls,
    is_withdrawn,
    recalled_above,
    restrictions,
    root_of,
)
from hushpost.notifications.actions import queue_notification
from hushpost.notifications.models import Notification
from hushpost.orgs.models import Organization

EXPIRY_CHOICES = (0, 1, 7, 30)  # days; 0 = never


def check_expiry(org: Organization, days: int) -> None:
    """The organisation's expiry policy, for every way an expiry is set: Compose,
    the SMTP gateway and a change on a sent message's page.  ``days`` 0 is never."""
    if org.allows_expiry(days):
        return
    asked = "messages that never expire" if days == 0 else f"an expiry of {_days(days)}"
    raise Refused(f"Your organisation does not allow {asked}: choose {expiry_choices_text(org)}.")


def expiry_choices_text(org: Organization) -> str:
    """"never or 7 days", "1, 7 or 30 days": the choices in words."""
    days = [d for d in org.expiry_choices if d]
    words = ["never"] if 0 in org.expiry_choices else []
    if days:
        numbers = ", ".join(str(d) for d in days[:-1]) + (" or " if len(days) > 1 else "")
        words.append(numbers + _days(days[-1]))
    return " or ".join(words)


def _days(n: int) -> str:
    return f"{n} day" + ("s" if n != 1 else "")


@dataclass
class SendOptions:
    read_receipt: bool = False
    restriction: str = Restriction.NONE
    expire_days: int = 0


@dataclass
class Addressees:
    to: list[str]
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)  # the SMTP gateway's envelope-only recipients

    @property
    def count(self) -> int:
        return len(dict.fromkeys(self.to + self.cc + self.bcc))


def _recipient_account(org_id: int, email: str) -> tuple[User, bool]:
    """The organisation's recipient account for ``email``, created if new. An existing one
    comes back with its key and organisation only: all a delivery and its e-mail need."""
    existing = rows.find_id(User, org=org_id, role=User.Role.RECIPIENT, email=email)
    if existing is not None:
        return User.from_db(User.objects.db, ["id", "org_id", "email", "role"],
                            [existing, org_id, email, User.Role.RECIPIENT]), False
    try:
        with transaction.atomic():
            user = User(org_id=org_id, email=email, role=User.Role.RECIPIENT)
            user.set_unusable_password()
            user.must_change_password = True
            user.save()
            return user, True
    except IntegrityError:  # created by a concurrent send
        return User.objects.get(org_id=org_id, role=User.Role.RECIPIENT, email=email), False


def _create_deliveries(message: Message, addressees: Addressees) -> None:
    seen: set[str] = set()
    for field_name, addresses in ((Delivery.Field.TO, addressees.to), (Delivery.Field.CC, addressees.cc),
                                  (Delivery.Field.BCC, addressees.bcc)):
        for email in addresses:
            if email in seen:
                continue
            seen.add(email)
            account, created = _recipient_account(message.org_id, email)
            delivery = Delivery(message=message, recipient=account, field=field_name)
            rows.insert(delivery)
            if created:
                # Once per account, ever: the first-time temporary password.
                # Tied to this delivery so its sender sees whether it went out.
                queue_notification(Notification.Kind.PASSWORD, account, delivery=delivery)
            queue_notification(Notification.Kind.MESSAGE, account, delivery=delivery)


def send_message(
    *,
    author: User,
    addressees: Addressees,
    subject: str,
    body_html: str,
    options: SendOptions,
    send_token: str,
    in_reply_to: Message | None = None,
    file_uids: list[str] | tuple[str, ...] = (),
) -> Message:
    """Store and encrypt a sender's message and queue its notifications.

    Idempotent per ``send_token``: a repeated submit returns the first message, with
    ``stored_before`` true (false on a message stored now).
    ``file_uids`` names the sender's uploaded drafts to attach (the SMTP gateway
    stores a message's files as drafts first); they are attached in the
    message's transaction: all or nothing.
    """
    if not author.is_sender:
        raise ValueError("only an organisation's senders send messages")
    check_expiry(author.org, options.expire_days)
    # No look-up first: the unique (author, send_token) constraint turns a
    # repeated submit into an IntegrityError, answered with the first message.
    now = clock.now()

    def store() -> Message:
        message = Message(
            org_id=author.org_id,
            author=author,
            kind=Message.Kind.MESSAGE,
            in_reply_to=in_reply_to,
            send_token=send_token,
            created_at=now,
            read_receipt=options.read_receipt,
            restriction=options.restriction,
            expires_at=now + timedelta(days=options.expire_days) if options.expire_days else None,
        )
        message.org = author.org
        seal_content(message, subject, body_html)
        # On PostgreSQL the message, its deliveries, their notifications and tasks and the
        # audit event are written by one statement at the end of this block.
        with rows.together():
            rows.insert(message)
            attached = _attach_drafts(message, author, file_uids)
            _create_deliveries(message, addressees)
            record(AuditEvent.Action.SEND, actor=author, obj=message,
                   detail=f"{addressees.count} recipient(s), {attached} file(s)")
        return message

    return _store_once(author, send_token, store)


def _attach_drafts(message: Message, owner: User, file_uids) -> int:
    """How many files the message now has."""
    # After the message row: a repeated submit stops at its unique token first.
    if not file_uids:
        return 0
    rows.written(message)  # the files are attached by the message's key
    drafts = files.drafts(owner, file_uids)
    files.check_total(owner, drafts)
    files.attach(message, drafts)
    return len(drafts)


def _store_once(author: User, send_token: str, store) -> Message:
    """Run ``store`` in one transaction, once per (author, send_token).

    The unique constraint turns a repeated submit (a double click, a retried
    request) into an IntegrityError, answered with the message stored first.
    """
    try:
        with transaction.atomic():
            message = store()
    except IntegrityError:
        existing = Message.objects.filter(author=author, send_token=send_token).first()
        if existing is None:
            raise
        existing.stored_before = True
        return existing
    message.stored_before = False
    return message


def read_message(reader: User, message: Message, delivery: Delivery | None) -> None:
    """``reader`` sees ``message``: every view is audited, and the first opening of
    their copy (``delivery``) counts as read.

    A first opening that sends a read receipt writes the event in its transaction,
    with the opening and the receipt; any other view writes it on its own (one INSERT).
    """
    if delivery is not None and delivery.first_opened_at is None and _sends_receipt(delivery):
        with transaction.atomic():
            open_message(delivery)
            record(AuditEvent.Action.OPEN, actor=reader, obj=message)
        return
    if delivery is not None:
        open_message(delivery)
    record(AuditEvent.Action.OPEN, actor=reader, obj=message)


def print_message(reader: User, message: Message) -> None:
    """``reader`` prints ``message``, unless the conversation may not be printed."""
    check_can_print(message)
    record(AuditEvent.Action.PRINT, actor=reader, obj=message)


def _sends_receipt(delivery: Delivery) -> bool:
    message = delivery.message  # already loaded by the access gate
    return message.read_receipt and message.kind == Message.Kind.MESSAGE


def open_message(delivery: Delivery) -> bool:
    """Record the first opening; queue the read receipt if one was asked for.

    Returns True the first time only, however many tabs open it at once. The opening
    and its receipt are one transaction (the caller's, if it has one); without a
    receipt to queue, the opening is one conditional UPDATE.
    """
    if delivery.first_opened_at is not None:
        return False
    now = clock.now()
    receipt = _sends_receipt(delivery)
    with transaction.atomic(savepoint=False) if receipt else nullcontext():
        if not mark_opened(delivery, now):
            return False
        delivery.first_opened_at = now
        if receipt:
            queue_notification(Notification.Kind.READ_RECEIPT, delivery.message.author, delivery=delivery)
    return True


def check_can_reply(message: Message, recipient: User | None = None) -> None:
    # Answering a reply answers the sender's message too: its restriction and
    # expiry hold for the whole conversation.
    rules = restrictions(message)
    if rules.too_long:
        raise Refused(TOO_LONG)
    if rules.no_reply:
        raise Refused("The sender restricted this message: replies are not allowed.")
    if rules.expired:
        raise Refused("This message has expired, so you can no longer reply to it.")
    if recipient is not None and is_withdrawn(recipient, message):
        raise Refused("The sender recalled a message of this conversation, "
                      "so you can no longer reply to it.")


def can_reply(message: Message, recipient: User | None = None) -> bool:
    try:
        check_can_reply(message, recipient)
    except Refused:
        return False
    return True


def check_can_print(message: Message) -> None:
    # A reply quotes the subject of what it answers and answers its content:
    # "No Print" anywhere above it holds for it too, on every route.
    if restrictions(message).no_print:
        raise Refused("The sender restricted this conversation: it cannot be printed.")


def reply_as_recipient(
    *, recipient: User, delivery: Delivery, body_html: str, reply_all: bool, send_token: str,
    file_uids: list[str] | tuple[str, ...] = (),
) -> Message:
    """A recipient's reply: to the sender's Hushpost inbox (and, for Reply All,
    to the other addressees of the original)."""
    original = delivery.message
    check_can_reply(original, recipient)
    existing = Message.objects.filter(author=recipient, send_token=send_token).first()
    if existing:
        return existing
    subject = open_subject(original)
    if not subject.lower().startswith("re:"):
        subject = "Re: " + subject
    now = clock.now()

    def store() -> Message:
        reply = Message(
            org_id=original.org_id,
            author=recipient,
            kind=Message.Kind.REPLY,
            in_reply_to=original,
            send_token=send_token,
            created_at=now,
        )
        reply.org = original.org
        seal_content(reply, subject, body_html)
        reply.save()
        _attach_drafts(reply, recipient, file_uids)
        # Replies always reach the organisation's sender of the thread; a
        # reply to a Reply All goes there too, never only between outsiders.
        sender = root_of(ancestors(original)).author
        to_sender = Delivery.objects.create(message=reply, recipient=sender)
        queue_notification(Notification.Kind.REPLY, sender, delivery=to_sender)
        if reply_all:
            for other in reply_all_addressees(original, recipient):
                d = Delivery.objects.create(message=reply, recipient=other, field=Delivery.Field.CC)
                queue_notification(Notification.Kind.MESSAGE, other, delivery=d)
        Delivery.objects.filter(pk=delivery.pk, replied_at__isnull=True).update(replied_at=now)
        record(AuditEvent.Action.REPLY, actor=recipient, obj=reply, detail=f"to {original.uid}")
        return reply

    return _store_once(recipient, send_token, store)


def reply_all_addressees(message: Message, user: User) -> list[User]:
    """Who a recipient's Reply All reaches besides the organisation's sender.

    Bcc addressees are nobody's to reach, and one who was Bcc'd reaches only the sender.
    """
    deliveries = addressed(message)
    if any(d.recipient_id == user.pk and d.field == Delivery.Field.BCC for d in deliveries):
        return []
    # Nor does it reach anyone the message, or one it answers, was recalled for.
    recalled = recalled_above(message)
    people = {d.recipient for d in deliveries if d.field != Delivery.Field.BCC}
    people.add(message.author)
    return sorted((p for p in people if p.pk != user.pk and p.is_recipient and p.pk not in recalled),
                  key=lambda p: p.email)


def delete_for_recipient(delivery: Delivery) -> None:
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk, deleted_at__isnull=True).update(deleted_at=clock.now())
        record(AuditEvent.Action.DELETE, actor=delivery.recipient, obj=delivery.message)


def recall(message: Message, *, recipient_ids: list[int] | None = None, by: User | None = None) -> int:
    """Recall the message for some addressees (or all): they see only that it was recalled.

    Returns how many deliveries were recalled now (ones recalled before are left as they were).
    """
    deliveries = Delivery.objects.filter(message=message, recalled_at__isnull=True)
    if recipient_ids is not None:
        deliveries = deliveries.filter(recipient_id__in=recipient_ids)
    with transaction.atomic():
        ids = list(deliveries.values_list("pk", flat=True))
        count = Delivery.objects.filter(pk__in=ids).update(recalled_at=clock.now())
        # Notifications not yet sent about it never go.
        Notification.objects.filter(delivery_id__in=ids, status=Notification.Status.PENDING,
                                    kind__in=[Notification.Kind.MESSAGE, Notification.Kind.REMINDER]).update(
            status=Notification.Status.CANCELLED, lease_until=None)
        record(AuditEvent.Action.RECALL, actor=by, org=message.org, obj=message,
               detail=f"for {count} recipient(s)" + (" (one recipient)" if recipient_ids else ""))
    forget_recalls(message)  # who it is recalled for has changed
    return count


def change_expiry(message: Message, days: int | None, by: User | None = None) -> None:
    """Set a sent message's expiry anew: ``days`` from now, 0 for now, None for never.

    Within the organisation's policy, as when it was sent; expiring it now always is.
    """
    if days != 0:
        check_expiry(message.org, days or 0)
    expires_at = None if days is None else clock.now() + timedelta(days=days)
    with transaction.atomic():
        Message.objects.filter(pk=message.pk).update(expires_at=expires_at)
        record(AuditEvent.Action.EXPIRY, actor=by, org=message.org, obj=message,
               detail="never" if days is None else f"in {days} day(s)")
    message.expires_at = expires_at


def correct_address(message: Message, delivery: Delivery, address: str, *, by: User) -> Delivery:
    """The sender gives a corrected address for a recipient whose e-mail bounced: the same
    message goes to it (a new account gets its Password Notification first), and the bounced
    delivery is marked replaced by the new one, all in one transaction.

    Once per bounced delivery: a repeated submit returns the replacement made first.
    """
    with transaction.atomic():
        locked = Delivery.objects.select_for_update().filter(pk=delivery.pk, message=message).first()
        if locked is None:
            raise Refused("Choose a recipient of this message.")
        if locked.replaced_by_id is not None:
            return Delivery.objects.get(pk=locked.replaced_by_id)
        if not Notification.objects.filter(delivery=locked, user_id=locked.recipient_id,
                                           status=Notification.Status.BOUNCED).exists():
            raise Refused("Only an address whose e-mail bounced can be corrected.")
        if locked.recalled_at is not None:
            raise Refused("The message was recalled for this recipient.")
        if message.purged_at is not None or (message.expires_at and message.expires_at <= clock.now()):
            raise Refused("The message has expired, so it cannot be sent again.")
        if Delivery.objects.filter(message=message, recipient__email=address,
                                   recipient__role=User.Role.RECIPIENT).exists():
            raise Refused(f"{address} already receives this message.")
        account, created = _recipient_account(message.org_id, address)
        replacement = Delivery.objects.create(message=message, recipient=account, field=locked.field)
        if created:
            queue_notification(Notification.Kind.PASSWORD, account, delivery=replacement)
        queue_notification(Notification.Kind.MESSAGE, account, delivery=replacement)
        Delivery.objects.filter(pk=locked.pk).update(replaced_at=clock.now(), replaced_by=replacement)
        record(AuditEvent.Action.ADDRESS_CORRECTED, actor=by, obj=message,
               detail=f"delivery {locked.pk} replaced by delivery {replacement.pk}")
        return replacement
