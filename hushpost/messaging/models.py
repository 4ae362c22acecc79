from __future__ import annotations

import secrets

from django.db import models

from hushpost.lib import clock
from hushpost.notifications import links


def new_uid() -> str:
    return secrets.token_urlsafe(16)  # 128 bits: the only identifier in URLs


class Restriction(models.TextChoices):
    NONE = "none", "No restriction"
    NO_PRINT_NO_REPLY = "no_print_no_reply", "Restricted - No Print, No Reply"
    NO_PRINT = "no_print", "Restricted - No Print"


class Message(models.Model):
    """A secure message: a sender's message, or a reply to one.

    Subject and body exist only as ciphertext (see :mod:`.content`); the data
    key that opens them is wrapped by the organisation key ``key_version``.
    """

    class Kind(models.TextChoices):
        MESSAGE = "message", "Message"
        REPLY = "reply", "Reply"

    uid = models.CharField(max_length=32, unique=True, default=new_uid, editable=False)
    org = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="+")
    author = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, related_name="authored_messages"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.MESSAGE)
    in_reply_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replies"
    )
    # The Compose page's one-time token: a double-clicked Send stores one message.
    send_token = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=clock.now)

    read_receipt = models.BooleanField(default=False)
    restriction = models.CharField(
        max_length=20, choices=Restriction.choices, default=Restriction.NONE
    )
    expires_at = models.DateTimeField(null=True, blank=True)

    key_version = models.PositiveIntegerField()
    wrapped_key = models.BinaryField()
    subject_ct = models.BinaryField()
    body_ct = models.BinaryField()
    # When the organisation's retention policy destroyed the content (``hushpost.retention.purge``):
    # from then on the wrapped key and both ciphertexts are empty, and the rest stays as it was.
    purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["author", "send_token"], name="message_send_once")
        ]
        indexes = [models.Index(fields=["author", "-created_at"], name="message_author_recent")]

    def __str__(self) -> str:
        return f"Message {self.uid}"

    @property
    def reference(self) -> str:
        """The code its e-mails show, so an e-mail can be matched to a real message (``K7QP-M9XD``)."""
        return links.message_reference(self.uid)

    @property
    def no_print(self) -> bool:
        return self.restriction in (Restriction.NO_PRINT, Restriction.NO_PRINT_NO_REPLY)

    @property
    def no_reply(self) -> bool:
        return self.restriction == Restriction.NO_PRINT_NO_REPLY

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= clock.now()


class Delivery(models.Model):
    """One message for one addressee, with what happened to it since."""

    class Field(models.TextChoices):
        TO = "to", "To"
        CC = "cc", "Cc"
        # Only through the SMTP gateway: an envelope recipient no header names,
        # unseen by every other addressee.
        BCC = "bcc", "Bcc"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="deliveries")
    recipient = models.ForeignKey(
        "accounts.User", on_delete=models.CASCADE, related_name="deliveries"
    )
    field = models.CharField(max_length=3, choices=Field.choices, default=Field.TO)
    created_at = models.DateTimeField(default=clock.now)
    first_opened_at = models.DateTimeField(null=True, blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Recalled by the sender (or an organisation admin): the addressee sees only that.
    recalled_at = models.DateTimeField(null=True, blank=True)
    # Reminders the worker sent the addressee (``messaging/reminders.py``), the last one when, by the
    # database's clock; and notifications the sender had sent again by hand (Resend notification).
    reminders_sent = models.PositiveSmallIntegerField(default=0)
    last_reminded_at = models.DateTimeField(null=True, blank=True)
    resends = models.PositiveSmallIntegerField(default=0)
    last_resent_at = models.DateTimeField(null=True, blank=True)
    # The address bounced and the sender gave a corrected one: this message's delivery to it.
    replaced_at = models.DateTimeField(null=True, blank=True)
    replaced_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "recipient"], name="delivery_once")
        ]
        indexes = [
            # The inbox query, newest first, served straight from the index
            # however many messages a mailbox holds.
            models.Index(
                fields=["recipient", "-created_at", "-id"],
                condition=models.Q(deleted_at__isnull=True),
                name="delivery_inbox_live",
            )
        ]

    def __str__(self) -> str:
        return f"Delivery of {self.message_id} to {self.recipient_id}"
