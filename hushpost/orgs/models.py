from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models

from hushpost.lib import zones

# Names end up in e-mail headers: a line break there is refused, never sent.
no_line_breaks = RegexValidator(r"[\r\n]", inverse_match=True, message="Line breaks are not allowed.")


def default_time_zone() -> str:
    return zones.default()  # HUSHPOST_DEFAULT_TIME_ZONE when the organisation is created


def support_line(email: str, phone: str) -> str:
    """How the portal and the e-mails name an organisation's support contact, in one line of plain text."""
    return ("Support: " + " · ".join(p for p in (email, phone) if p)) if email or phone else ""


class Organization(models.Model):
    """A customer of this deployment: its staff send, its recipients read."""

    name = models.CharField(max_length=200, validators=[no_line_breaks])
    slug = models.SlugField(max_length=60, unique=True)
    # Shown as the display name of every notification the organisation sends.
    sender_name = models.CharField(max_length=200, validators=[no_line_breaks])
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    # Policy, set by the organisation's admins (/app/admin/policy).
    notify_from_email = models.EmailField(
        blank=True, help_text="Address notifications come from; empty uses the deployment's."
    )
    default_read_receipt = models.BooleanField(default=False)
    default_restriction = models.CharField(max_length=20, default="none")
    default_expire_days = models.PositiveSmallIntegerField(default=0)
    allowed_expiry_days = models.CharField(
        max_length=20, default="0,1,7,30", help_text="Expiry choices senders may pick; 0 is never."
    )
    # Empty: the deployment's HUSHPOST_TEMP_PASSWORD_DAYS.
    temp_password_days = models.PositiveSmallIntegerField(null=True, blank=True)
    receipt_includes_subject = models.BooleanField(default=False)
    max_file_mb = models.PositiveIntegerField(default=100, help_text="Largest file senders and recipients may attach.")
    max_message_mb = models.PositiveIntegerField(default=100, help_text="Largest total of files on one message.")
    # Minutes without activity before a session ends; empty uses the deployment's.
    sender_idle_minutes = models.PositiveSmallIntegerField(null=True, blank=True)
    recipient_idle_minutes = models.PositiveSmallIntegerField(null=True, blank=True)
    # Two-factor sign-in required (an authenticator app) for the organisation's senders, recipients.
    require_2fa_senders = models.BooleanField(default=False)
    require_2fa_recipients = models.BooleanField(default=False)
    # The zone its people see times in, pages and e-mails, until their account or browser says otherwise.
    time_zone = models.CharField(max_length=64, default=default_time_zone)
    # Reminders (``messaging/reminders.py``): a recipient who has not opened a message is e-mailed again
    # this many days after it was sent, and as long again after each reminder, at most
    # ``remind_times`` times; empty: never. ``remind_tells_sender``: the sender hears of each one.
    remind_after_days = models.PositiveSmallIntegerField(null=True, blank=True)
    remind_times = models.PositiveSmallIntegerField(default=1)
    remind_tells_sender = models.BooleanField(default=False)

    # SMTP gateway (`hushpost smtpd`, docs/gateway.md), set with `hushpost gateway set`.
    # A mail server may relay the organisation's mail if its address is in one of
    # these networks or it signs in as the gateway user; with neither, nothing is accepted.
    gateway_networks = models.TextField(blank=True, help_text="Client networks (CIDR), comma-separated.")
    # NULL, not "", when unset: the name identifies the organisation, so it is unique.
    gateway_auth_user = models.CharField(max_length=100, null=True, blank=True, unique=True)
    gateway_auth_password = models.CharField(max_length=128, blank=True)  # a password hash (Argon2id)
    gateway_keyword = models.CharField(
        max_length=50, default="[secure]", help_text="Subject keyword (any case) that makes mail secure."
    )
    gateway_route_all = models.BooleanField(
        default=False, help_text="Every message relayed is secure, keyword or not."
    )

    # Branding (/app/admin/branding, hushpost/orgs/branding.py): on the recipient portal and in every
    # e-mail. Kept on this row so a page or an e-mail that has the organisation has its branding too,
    # without another statement; only the logo's bytes live apart (OrgLogo), read when it is fetched.
    brand_accent = models.CharField(max_length=7, blank=True, help_text="#RRGGBB; empty keeps Hushpost's blue.")
    brand_footer = models.TextField(max_length=500, blank=True)
    support_email = models.EmailField(blank=True)
    support_phone = models.CharField(max_length=40, blank=True)
    logo_digest = models.CharField(max_length=64, blank=True)  # SHA-256 of the current OrgLogo's bytes
    logo_width = models.PositiveSmallIntegerField(null=True, blank=True)
    logo_height = models.PositiveSmallIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name

    @property
    def logo_path(self) -> str:
        """The logo's public address, new for each logo (its content hash), so it is cached for good."""
        return f"/brand/{self.slug}/logo/{self.logo_digest}" if self.logo_digest else ""

    @property
    def accent_css_path(self) -> str:
        return f"/brand/accent/{self.brand_accent[1:].lower()}.css" if self.brand_accent else ""

    @property
    def support_line(self) -> str:
        return support_line(self.support_email, self.support_phone)

    @property
    def expiry_choices(self) -> list[int]:
        """Days from now a sender may have a message expire after; 0 is never.

        A policy that names none leaves the one choice there was before any policy: never.
        """
        return sorted({int(d) for d in self.allowed_expiry_days.split(",") if d.strip().isdigit()}) or [0]

    def allows_expiry(self, days: int) -> bool:
        return days in self.expiry_choices


class OrgLogo(models.Model):
    """A logo an organisation uploaded, re-encoded (PNG or JPEG, no metadata): public branding, not secret.

    Replaced logos are kept, so e-mails already sent still show the logo they were sent with."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="logos")
    digest = models.CharField(max_length=64)
    content_type = models.CharField(max_length=20)
    data = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "digest"], name="orglogo_one_per_digest")]

    def __str__(self) -> str:
        return f"{self.org_id}:{self.digest[:12]}"


class Domain(models.Model):
    """A mail domain whose addresses belong to the organisation's staff."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="domains")
    name = models.CharField(max_length=253, unique=True)

    def __str__(self) -> str:
        return self.name


class OrgKey(models.Model):
    """A version of the organisation's key, wrapped by the master key.

    New messages use the highest version; older versions stay to open older
    messages, so a key can be rotated without re-encrypting anything.
    """

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="keys")
    version = models.PositiveIntegerField()
    wrapped_key = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "version"], name="orgkey_unique_version")
        ]

    def __str__(self) -> str:
        return f"{self.org} key v{self.version}"


class DkimKey(models.Model):
    """A DKIM signing key for a domain notifications come from (``crypto/dkim.py``).

    The private key is sealed under the master key; its public half is published in DNS as
    ``<selector>._domainkey.<domain>``. A domain may have several, for rotation: the newest
    active one signs, and an older one stays listed until its DNS record may go.
    """

    domain = models.CharField(max_length=253)
    selector = models.CharField(max_length=63)
    sealed_key = models.BinaryField()  # the RSA private key (PKCS#8 DER), sealed under the master key
    public_key = models.TextField()  # base64 SubjectPublicKeyInfo, the p= of the DNS record
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["domain", "selector"], name="dkimkey_unique_selector")
        ]

    def __str__(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"


class DerivationRoot(models.Model):
    """The deployment's one derivation root, wrapped by the master key (``crypto/derivation.py``).

    The audit trail's keys and provisioning tokens' hashes are derived from it, so a new master key
    wraps it again and changes none of them. One row, id 1.
    """

    wrapped = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return "derivation root"
