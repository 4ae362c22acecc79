"""An organisation's single sign-on: its identity provider, and the rules for its senders."""

from __future__ import annotations

from django.db import models


class SingleSignOn(models.Model):
    """How an organisation's senders sign in through its own identity provider.

    Either protocol may be filled in; ``protocol`` says which one sign-in uses
    (empty: single sign-on is off and senders use passwords).
    """

    class Protocol(models.TextChoices):
        OFF = "", "Off"
        OIDC = "oidc", "OpenID Connect"
        SAML = "saml", "SAML 2.0"

    org = models.OneToOneField("orgs.Organization", on_delete=models.CASCADE, related_name="sso")
    protocol = models.CharField(max_length=4, choices=Protocol.choices, default="", blank=True)

    # OpenID Connect: the issuer (or its discovery document's URL) and the client registered there.
    oidc_issuer = models.URLField(max_length=500, blank=True)
    oidc_client_id = models.CharField(max_length=255, blank=True)
    # Sealed under the master key (hushpost.sso.secrets); never shown again once saved.
    oidc_client_secret_sealed = models.BinaryField(null=True, blank=True)

    # SAML 2.0: the identity provider's metadata, from its URL or pasted in.
    saml_metadata_url = models.URLField(max_length=500, blank=True)
    saml_metadata_xml = models.TextField(blank=True)

    # Policy
    required = models.BooleanField(
        default=False, help_text="Senders sign in only through the identity provider; passwords are refused.")
    create_accounts = models.BooleanField(
        default=False, help_text="Create a sender account at first sign-in for addresses in the organisation's domains.")
    group_claim = models.CharField(
        max_length=200, default="groups", blank=True,
        help_text="The claim (OpenID Connect) or attribute (SAML) that lists the person's groups.")
    admin_group = models.CharField(
        max_length=200, blank=True,
        help_text="Members of this group are the organisation's admins; empty leaves admin roles to this page.")

    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"single sign-on of {self.org}"

    @property
    def is_on(self) -> bool:
        return bool(self.protocol)


class SeenAssertion(models.Model):
    """An assertion or token already used, kept until it would have expired anyway: one use each.

    ``key`` is a keyed hash of the issuer and the assertion's ID (or the token's nonce), so the
    table holds nothing an identity provider issued.
    """

    key = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"assertion used, kept until {self.expires_at:%Y-%m-%d %H:%M}"
