from __future__ import annotations

from django.db import models

from hushpost.lib import clock


class AppendOnly(Exception):
    pass


class AuditEvent(models.Model):
    """One thing that happened: who, when, from where, to what. Never content.

    Append-only and tamper-evident. An event is written with the thing it
    records, in the same transaction, without waiting for anyone; the linker
    (:mod:`hushpost.audit.linker`) then gives it its place in its organisation's
    chain: ``seq``, the previous event's hash and its own ``hash``, which covers
    its fields and that previous hash, so an edit, a deletion or a re-ordering
    breaks every later link (``hushpost audit verify``). Linking is the one
    change an event ever takes, once.
    """

    class Action(models.TextChoices):
        SIGN_IN = "sign_in", "Signed in"
        SIGN_IN_FAILED = "sign_in_failed", "Sign-in failed"
        LOCKOUT = "lockout", "Account locked"
        UNLOCK = "unlock", "Account unlocked"
        SIGN_OUT_EVERYWHERE = "sign_out_everywhere", "Signed out everywhere"
        PASSWORD_CHANGE = "password_change", "Password changed"
        PASSWORD_RESET_REQUEST = "password_reset_request", "Password reset asked for"
        PASSWORD_RESET = "password_reset", "Password reset"
        INVITATION_SENT = "invitation_sent", "Invitation sent"
        INVITATION_ACCEPTED = "invitation_accepted", "Invitation accepted"
        SSO_SIGN_IN = "sso_sign_in", "Signed in with single sign-on"
        SSO_REFUSED = "sso_refused", "Single sign-on refused"
        SSO_ACCOUNT_CREATED = "sso_account_created", "Account created at single sign-on"
        PASSKEY_ADDED = "passkey_added", "Passkey added"
        PASSKEY_REMOVED = "passkey_removed", "Passkey removed"
        SECURITY_PHRASE = "security_phrase", "Security phrase changed"
        SCIM = "scim", "Provisioning (SCIM)"
        SEND = "send", "Message sent"
        NOTIFICATION = "notification", "Notification e-mailed"
        OPEN = "open", "Message opened"
        PRINT = "print", "Message printed"
        DOWNLOAD = "download", "File downloaded"
        REPLY = "reply", "Reply sent"
        DELETE = "delete", "Message deleted"
        RECALL = "recall", "Message recalled"
        EXPIRY = "expiry", "Expiry changed"
        EXPORT = "export", "Conversation exported"
        ADMIN = "admin", "Administration"
        STORAGE_FULL = "storage_full", "Storage full: not saved"
        PURGE = "purge", "Content purged (retention)"
        REMINDER = "reminder", "Reminder queued"
        RESEND = "resend", "Notification sent again"
        BOUNCE = "bounce", "Notification bounced"
        ADDRESS_CORRECTED = "address_corrected", "Address corrected after a bounce"

    # No database constraints: the trail outlives the rows it names, and no
    # deletion elsewhere ever reaches back to change an event.
    org = models.ForeignKey("orgs.Organization", null=True, blank=True, on_delete=models.DO_NOTHING,
                            db_constraint=False, related_name="+")
    at = models.DateTimeField(default=clock.now)
    action = models.CharField(max_length=30, choices=Action.choices)
    actor = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.DO_NOTHING,
                              db_constraint=False, related_name="+")
    # The address typed or the account's address, kept even if the account goes.
    actor_email = models.CharField(max_length=254, blank=True)
    client = models.CharField(max_length=64, blank=True)
    object_type = models.CharField(max_length=20, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    detail = models.CharField(max_length=300, blank=True)
    # Made as the event is written (chain.event_mac): only Hushpost, holding the master
    # key, writes events whose mac holds.
    mac = models.CharField(max_length=64, default="")
    # Set by the linker, once; NULL until then (not "": the hashes are unique, and
    # any number of events may be waiting).
    seq = models.BigIntegerField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    hash = models.CharField(max_length=64, unique=True, null=True, blank=True)  # noqa: DJ001

    class Meta:
        indexes = [
            models.Index(fields=["org", "-at", "-id"], name="audit_org_recent"),
            models.Index(fields=["org", "seq"], name="audit_chain_order"),
            # What the linker looks for on every round: small, since events wait there for a moment.
            models.Index(fields=["org", "id"], condition=models.Q(hash__isnull=True), name="audit_unlinked"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.action} {self.actor_email}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnly("audit events are never changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnly("audit events are never deleted")


class AuditHead(models.Model):
    """The end of each organisation's chain (org 0: events of no organisation).

    The linker locks this row, so events join their chain one batch at a time. The
    ``seal`` (an HMAC under a key derived from the master key) covers the
    count and the last hash: moving the head back over deleted events shows.
    """

    chain = models.BigIntegerField(unique=True)
    last_hash = models.CharField(max_length=64)
    events = models.BigIntegerField(default=0)
    seal = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"audit chain {self.chain}"
