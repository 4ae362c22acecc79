from __future__ import annotations

import uuid

from django.db import models
from django.db.models.functions import Now

from hushpost.lib import clock


class Notification(models.Model):
    """An e-mail Hushpost owes someone. Never holds message content.

    Created in the same transaction as the event that causes it and delivered
    by the background worker, retried until the SMTP server accepts it.
    """

    class Kind(models.TextChoices):
        PASSWORD = "password", "Secure Messaging Password Notification"
        MESSAGE = "message", "Secure Messaging Notification"
        READ_RECEIPT = "read_receipt", "Read receipt"
        REPLY = "reply", "Reply notification"
        LOCKOUT = "lockout", "Account locked"
        RESET = "reset", "Password reset"
        PORTALS = "portals", "Your Secure Messaging portals"
        INVITATION = "invitation", "Invitation to the portal"
        # An addressee who has not opened a message is reminded of it; its sender may hear of it.
        REMINDER = "reminder", "Reminder: Secure Messaging Notification"
        REMINDER_SENT = "reminder_sent", "Reminder sent"
        BOUNCE = "bounce", "Secure Messaging Delivery Failure"
        # An e-mail relayed to the gateway's spool that could not be stored: its sender is told.
        NOT_SENT = "not_sent", "Secure Messaging Not Sent"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        # A password e-mail no longer needed: the recipient chose a password,
        # or a newer temporary password is on its way.
        CANCELLED = "cancelled", "Not needed"
        # Accepted by the relay, then reported undeliverable by the recipient's mail server
        # (a delivery report to the bounce address; ``bounce_reason`` says why).
        BOUNCED = "bounced", "Bounced"

    # The task queue knows a notification by this key; task_id is its latest task.
    key = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    task_id = models.CharField(max_length=64, blank=True, editable=False)
    # Empty only for an e-mail to an address that may have no account here
    # (a recipient's list of portals): ``address`` says where it goes.
    org = models.ForeignKey(
        "orgs.Organization", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    user = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    address = models.EmailField(max_length=254, blank=True)
    delivery = models.ForeignKey(
        "messaging.Delivery", null=True, blank=True, on_delete=models.CASCADE,
        related_name="notifications",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    # Times that decide who sends what, and when, come from the database's
    # clock: the web servers and workers that write them may disagree.
    next_attempt_at = models.DateTimeField(db_default=Now())
    # Set while a worker is sending, so two workers never send the same e-mail:
    # the worker named in lease_owner holds it until lease_until.
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True, editable=False)
    # The last attempt failed because the mail relay itself was unreachable,
    # not because of this address: it goes as soon as the relay is back.
    waiting_for_relay = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=clock.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    smtp_message_id = models.CharField(max_length=255, blank=True)
    # What a delivery report said (its Status and Diagnostic-Code, cleaned): why it bounced, or, with
    # no ``bounced_at``, that delivery was delayed (a note; it may still arrive).
    bounce_reason = models.CharField(max_length=300, blank=True)
    bounced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="notification_due"),
            # A recipient's e-mails go in the order they were queued.
            models.Index(fields=["user", "status"], name="notification_user_pending"),
        ]
        constraints = [
            # Every e-mail goes somewhere: to an account, or to an address.
            models.CheckConstraint(
                condition=models.Q(user__isnull=False) | ~models.Q(address=""), name="notification_has_recipient"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def to_address(self) -> str:
        """Where the e-mail goes: its account's address, or ``address`` for someone with none here."""
        return self.user.email if self.user_id is not None else self.address


class DevMail(models.Model):
    """An e-mail kept by the development mailbox instead of being sent."""

    created_at = models.DateTimeField(auto_now_add=True)
    to = models.TextField()
    from_email = models.CharField(max_length=320)
    subject = models.CharField(max_length=998)
    text = models.TextField()
    html = models.TextField(blank=True)
    raw = models.TextField()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.subject
