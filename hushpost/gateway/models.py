"""The gateway's spool: relayed e-mail committed before its 250, stored as a message after.

With ``HUSHPOST_SMTPD_SPOOL`` on, the gateway answers DATA as a mail server does: once the
e-mail is durably queued. One INSERT commits it, sealed under a fresh data key wrapped by the
organisation's key (never in the clear, not even for the seconds it waits), and names the
send token that makes a relayed retry the same e-mail: a second copy of one already spooled
inserts nothing and is answered 250 as before. A worker then parses it and stores it through
the same code as a synchronous DATA (``gateway/spool.py``); what only parsing can find is
answered by a "not sent" e-mail to the sender, as a mail server's bounce would.
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now


class SpooledMail(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Waiting to be stored"
        STORED = "stored", "Stored as a secure message"
        REFUSED = "refused", "Refused; its sender was told"

    class Reason(models.TextChoices):
        """Why a spooled e-mail was refused, as its sender is told (``gateway/emails.py``)."""

        SENDER = "sender", "not from an address Secure Messaging takes this e-mail from"
        POLICY = "policy", "not allowed by the organisation's settings"
        SIZE = "size", "too large"
        FORM = "form", "not readable as a secure message"
        DAMAGED = "damaged", "damaged while it waited"
        GAVE_UP = "gave_up", "could not be stored in time"
        OTHER = "other", "refused"

    # Random, and in the associated data of what is sealed: a ciphertext copied to another row fails.
    uid = models.CharField(max_length=32, unique=True)
    org = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="+")
    # The envelope sender as MAIL FROM found it: the account the e-mail is stored as, or refused to.
    sender = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+")
    # gateway.actions.send_token: the same e-mail to the same recipients, however often relayed.
    token = models.CharField(max_length=64)
    key_version = models.PositiveIntegerField()
    wrapped_key = models.BinaryField()
    # The envelope (MAIL FROM, RCPT TO, the relaying client) and the e-mail's bytes; emptied
    # once the e-mail is stored or refused.
    sealed = models.BinaryField()
    size = models.PositiveIntegerField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # Times judged by the database's clock, as the notifications' leases are.
    received_at = models.DateTimeField(db_default=Now())
    next_attempt_at = models.DateTimeField(db_default=Now())
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    message = models.ForeignKey("messaging.Message", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
    # Why it was refused (a Reason): never the reply's own text, which quotes the e-mail.
    outcome = models.CharField(max_length=10, choices=Reason.choices, blank=True)
    # For a refused one, the addresses the sender wrote to, which the e-mail telling them names.
    recipients = models.TextField(blank=True)
    # The "not sent" e-mail to the sender, for a refused one.
    notification = models.ForeignKey("notifications.Notification", null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")

    class Meta:
        db_table = "gateway_spooled_mail"
        constraints = [models.UniqueConstraint(fields=["sender", "token"], name="gateway_spool_once")]
        indexes = [
            # The workers' claim (the oldest pending first) and the gateway's count of what an
            # organisation has waiting read only pending rows.
            models.Index(fields=["id"], condition=models.Q(state="pending"), name="gateway_spool_due"),
            models.Index(fields=["org"], condition=models.Q(state="pending"), name="gateway_spool_waiting"),
        ]

    def __str__(self) -> str:
        return f"spooled e-mail {self.pk} ({self.state})"
