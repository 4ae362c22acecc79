"""Provisioning tokens, and what an identity provider keeps about the senders it provisions."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ScimToken(models.Model):
    """A bearer token an organisation's identity provider provisions its senders with.

    The token itself is shown once, when it is made; the database keeps a keyed
    hash of it (:func:`hushpost.crypto.macs.scim_token`), which is what a request's
    token is looked up by, and its first characters, which say which one it is.
    """

    org = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="scim_tokens")
    name = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=16)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # Updated at most once a minute: a busy provisioning run writes no row per request.
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def label(self) -> str:
        """Who acted, as the audit trail names a provisioning request."""
        return f"SCIM token {self.name} ({self.prefix}…)"


class ScimIdentity(models.Model):
    """What the identity provider says about a sender beyond their address and name.

    ``deleted_at``: the identity provider deleted the sender. The account stays,
    disabled, with the messages it sent; provisioning no longer sees it, until
    the identity provider creates the same address again.

    ``disabled_at``: when provisioning last disabled the sender (or deleted them).
    Provisioning enables only a sender it disabled itself, and only if no admin
    changed the account since (:func:`hushpost.scim.actions.may_enable`).
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="scim")
    external_id = models.CharField(max_length=255, blank=True)
    given_name = models.CharField(max_length=100, blank=True)
    family_name = models.CharField(max_length=100, blank=True)
    display_name = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"provisioned identity of {self.user_id}"

    def full_name(self) -> str:
        """The sender's name as Hushpost shows it: the display name, else given and family names."""
        return self.display_name or " ".join(n for n in (self.given_name, self.family_name) if n)
