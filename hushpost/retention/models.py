"""An organisation's retention policy and its legal holds.

The policy says when a message's content is destroyed (``purge.py``); a hold
says what must be kept whatever the policy says. Nothing here holds content:
a hold names an account or a conversation's first message, and why.
"""

from __future__ import annotations

from django.db import models

from hushpost.lib import clock


class RetentionPolicy(models.Model):
    """When message content is destroyed, counted in days from three moments; empty is never.

    An organisation without a row, or with all three empty, keeps everything: a
    purge destroys evidence, so it happens only once an admin has chosen it.
    """

    org = models.OneToOneField("orgs.Organization", on_delete=models.CASCADE, primary_key=True,
                               related_name="+")
    after_expiry_days = models.PositiveIntegerField(null=True, blank=True)
    after_deletion_days = models.PositiveIntegerField(null=True, blank=True)
    after_activity_days = models.PositiveIntegerField(null=True, blank=True)
    changed_at = models.DateTimeField(default=clock.now)
    changed_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    def __str__(self) -> str:
        return f"Retention policy of {self.org_id}"

    @property
    def is_on(self) -> bool:
        return any(d is not None for d in (self.after_expiry_days, self.after_deletion_days,
                                           self.after_activity_days))


class LegalHold(models.Model):
    """Content that must not be purged: everything a sender or a recipient took part in, or one conversation.

    Released rather than deleted, so the list shows what was held, by whom and until when.
    """

    class Kind(models.TextChoices):
        SENDER = "sender", "Sender"
        RECIPIENT = "recipient", "Recipient"
        CONVERSATION = "conversation", "Conversation"

    org = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # A sender or recipient hold names the account; a conversation hold its first message.
    account = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="+")
    conversation = models.ForeignKey("messaging.Message", null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+")
    reason = models.CharField(max_length=500)
    created_at = models.DateTimeField(default=clock.now)
    created_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")

    class Meta:
        indexes = [models.Index(fields=["org", "released_at"], name="hold_org_active")]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(kind="conversation", conversation__isnull=False, account__isnull=True)
                           | models.Q(kind__in=["sender", "recipient"], account__isnull=False,
                                      conversation__isnull=True)),
                name="hold_names_one_thing",
            )
        ]

    def __str__(self) -> str:
        return f"Legal hold {self.pk} ({self.kind})"

    @property
    def is_active(self) -> bool:
        return self.released_at is None
