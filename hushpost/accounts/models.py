from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models

from hushpost.crypto import macs
from hushpost.orgs.models import no_line_breaks


class UserManager(BaseUserManager):
    def create_superuser(self, username, password=None, **extra):
        # Platform operators: Django admin only, no organisation, no portal.
        email = self.normalize_email(username).lower()
        user = self.model(
            email=email, role=User.Role.OPERATOR, is_staff=True, is_superuser=True, **extra
        )
        user.set_password(password)
        user.save()
        return user


class User(AbstractBaseUser, PermissionsMixin):
    """Anyone who signs in: an organisation's sender, or an external recipient.

    A recipient account belongs to one organisation and one address; the same
    person receiving from two organisations has two accounts and two passwords.
    """

    class Role(models.TextChoices):
        SENDER = "sender", "Sender"
        RECIPIENT = "recipient", "Recipient"
        OPERATOR = "operator", "Platform operator"

    # Unique sign-in key derived from role, organisation and address.
    username = models.CharField(max_length=320, unique=True, editable=False)
    org = models.ForeignKey(
        "orgs.Organization", null=True, blank=True, on_delete=models.CASCADE, related_name="users"
    )
    email = models.EmailField(max_length=254)
    name = models.CharField(max_length=200, blank=True, validators=[no_line_breaks])
    role = models.CharField(max_length=10, choices=Role.choices)
    is_org_admin = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    # Recipients start with a temporary password that only the worker ever
    # sees in plaintext (it is generated as the e-mail is written).
    must_change_password = models.BooleanField(default=False)
    temp_password_expires_at = models.DateTimeField(null=True, blank=True)
    # Set at the first sign-in with the temporary password: it opens one session only.
    temp_password_used_at = models.DateTimeField(null=True, blank=True)
    password_changed_at = models.DateTimeField(null=True, blank=True)
    # "Sign out everywhere": every session made before this moment ends.
    sessions_ended_at = models.DateTimeField(null=True, blank=True)
    # Two-factor sign-in: the TOTP secret, sealed under the master key; the last
    # time step used (a code works once).
    totp_secret_sealed = models.BinaryField(null=True, blank=True)
    # A phrase the recipient chose, shown in every e-mail to them so a look-alike shows itself:
    # sealed under the master key (labels.security_phrase_aad), never on a page before sign-in.
    security_phrase_sealed = models.BinaryField(null=True, blank=True)
    totp_enabled_at = models.DateTimeField(null=True, blank=True)
    totp_last_step = models.BigIntegerField(default=0)
    # The zone this person sees times in, pages and e-mails (hushpost/lib/zones.py);
    # empty: their browser's zone, else the organisation's.
    time_zone = models.CharField(max_length=64, blank=True, default="")

    objects = UserManager()

    USERNAME_FIELD = "username"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "role", "email"], name="user_unique_per_org_role")
        ]

    def save(self, *args, **kwargs):
        self.email = self.email.strip().lower()
        self.username = f"{self.role}:{self.org_id or 0}:{self.email}"
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return f"{self.display_name} <{self.email}>"

    def get_session_auth_hash(self):
        """Sessions carry this; it changes with the password and with "sign out everywhere"."""

        return self._session_hash()

    def get_session_auth_fallback_hash(self):
        """The same, under each of ``SECRET_KEY_FALLBACKS``: rotating the key signs nobody out."""
        from django.conf import settings

        for secret in settings.SECRET_KEY_FALLBACKS:
            yield self._session_hash(secret)

    def _session_hash(self, secret=None):
        ended = self.sessions_ended_at.isoformat() if self.sessions_ended_at else ""
        return macs.session_auth(self.password, ended, secret)

    def get_short_name(self) -> str:
        # What Django's admin greets an operator with, rather than the internal sign-in key.
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.name or self.email

    @property
    def is_sender(self) -> bool:
        return self.role == self.Role.SENDER

    @property
    def is_recipient(self) -> bool:
        return self.role == self.Role.RECIPIENT


class Session(AbstractBaseSession):
    """A signed-in browser: Django's session row, keyed by a keyed hash of its cookie
    (:mod:`hushpost.accounts.sessions`), with the account it belongs to beside it.

    ``user`` is copied from the session's data each time the row is written, so that
    every request reads its session, its account and the account's organisation in one
    statement; whether the account may still use the session (active, organisation
    active, password and "sign out everywhere" unchanged) is still decided from the
    account's row as it stands, on every request. NULL for a session nobody signed in
    with (and, until they are next written, for rows kept from before the column).
    """

    user = models.ForeignKey(User, null=True, blank=True, on_delete=models.CASCADE, related_name="+")


class Throttle(models.Model):
    """Failed attempts against one account name or from one client address.

    Keyed by a hash of what was typed, whether or not an account exists, so a
    lockout looks the same for an address nobody has.
    """

    class Scope(models.TextChoices):
        ACCOUNT = "account", "Account"
        CLIENT = "client", "Client address"
        LOOKUP = "lookup", "Portal look-ups from a client address"
        PORTAL_LIST = "portallist", "Portal lists e-mailed to an address"

    scope = models.CharField(max_length=10, choices=Scope.choices)
    key = models.CharField(max_length=64)
    failures = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField()
    next_allowed_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="throttle_unique_key")]

    def __str__(self) -> str:
        return f"{self.scope} throttle ({self.failures} failures)"


class RecoveryCode(models.Model):
    """A one-time code for signing in without the authenticator app (kept as an HMAC only)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="recovery_codes")
    digest = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"recovery code of {self.user_id}"


class Passkey(models.Model):
    """A passkey (WebAuthn credential) that signs its owner in, or serves as their second step.

    Only public parts are kept: the credential's id and public key, the
    authenticator's signature counter (a count that goes backwards means a cloned
    key, and is refused) and the random handle the authenticator returns to name
    the account, so a passkey of one account never opens another.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="passkeys")
    credential_id = models.CharField(max_length=1400, unique=True)  # base64url, as browsers send it
    public_key = models.BinaryField()
    sign_count = models.PositiveBigIntegerField(default=0)
    user_handle = models.CharField(max_length=100)  # base64url of the account's random WebAuthn user id
    transports = models.CharField(max_length=100, blank=True)  # comma-separated hints: internal, usb, hybrid…
    name = models.CharField(max_length=100)
    aaguid = models.CharField(max_length=36, blank=True)
    created_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"passkey of {self.user_id}"
