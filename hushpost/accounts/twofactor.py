"""Two-factor sign-in: TOTP authenticator apps (RFC 6238, through pyotp) and recovery codes.

The secret is sealed under the master key (associated data names the account; a previous
master key still opens it until ``hushpost keys rotate-master`` re-wraps it),
so a copy of the database holds no usable secret.  A code works once: the
time step of the last accepted code is stored, and only later steps pass.
Ten recovery codes are shown once at enrolment and kept only as HMACs.
Every attempt goes through the same throttle as passwords.
"""

from __future__ import annotations

import base64
import io
import secrets

import pyotp
import qrcode
import qrcode.image.svg
from django.conf import settings
from django.db import transaction
from django.utils.crypto import constant_time_compare

from hushpost.accounts.models import RecoveryCode, User
from hushpost.crypto import aead, macs, master
from hushpost.crypto.labels import totp_secret_aad, totp_setup_aad
from hushpost.lib import clock

ISSUER = "Hushpost Secure Messaging"
RECOVERY_CODES = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def new_secret() -> str:
    return pyotp.random_base32()


def seal_secret(user: User, secret: str) -> bytes:
    return master.seal(secret.encode(), totp_secret_aad(user.pk))


def secret_for_session(user: User, secret: str) -> str:
    """A secret being set up waits in the session sealed, so a copy of the session table holds none."""
    return base64.b64encode(master.seal(secret.encode(), totp_setup_aad(user.pk))).decode()


def secret_from_session(user: User, sealed) -> str | None:
    if not isinstance(sealed, str):
        return None
    try:
        return master.open_sealed(base64.b64decode(sealed), totp_setup_aad(user.pk)).decode()
    except (ValueError, aead.DecryptionError):
        return None


def _secret(user: User) -> str | None:
    if not user.totp_secret_sealed:
        return None
    return master.open_sealed(bytes(user.totp_secret_sealed), totp_secret_aad(user.pk)).decode()


def provisioning(user: User, secret: str) -> dict:
    """What an enrolment page shows: the otpauth:// URI, its QR code as inline SVG markup,
    and the key in groups of four for typing."""
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    out = io.BytesIO()
    qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8).save(out)
    svg = out.getvalue().decode()
    return {"uri": uri, "qr": svg[svg.index("<svg"):],
            "secret": " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))}


def required(user: User) -> bool:
    org = user.org
    if org is None:
        return False
    return org.require_2fa_senders if user.is_sender else org.require_2fa_recipients


def enabled(user: User) -> bool:
    return user.totp_enabled_at is not None


def _accept_code(user: User, secret: str, code: str) -> bool:
    """A current code, not used before (±1 step for clock drift)."""
    code = "".join(ch for ch in code if ch.isdigit())
    if len(code) != 6:
        return False
    totp = pyotp.TOTP(secret)
    now = clock.now()
    for drift in (-1, 0, 1):
        step = totp.timecode(now) + drift
        if constant_time_compare(totp.generate_otp(step), code):
            # Conditional update: two requests with one code, one wins.
            return bool(User.objects.filter(pk=user.pk, totp_last_step__lt=step).update(totp_last_step=step))
    return False


def enable(user: User, secret: str, code: str, *, only_if_off: bool = False) -> list[str] | None:
    """Turn on two-factor sign-in if ``code`` proves the app holds ``secret``; the recovery codes.

    ``only_if_off``: for an enrolment made before the account is signed in (operators),
    where a second enrolment racing the first must not replace its secret.
    """
    user.totp_secret_sealed = seal_secret(user, secret)
    if not _accept_code(user, secret, code):
        return None
    with transaction.atomic():
        rows = User.objects.filter(pk=user.pk)
        if only_if_off:
            rows = rows.filter(totp_enabled_at__isnull=True)
        if not rows.update(totp_secret_sealed=user.totp_secret_sealed, totp_enabled_at=clock.now()):
            return None
        codes = _new_recovery_codes(user)
    user.totp_enabled_at = clock.now()
    return codes


def disable(user: User) -> None:
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(totp_secret_sealed=None, totp_enabled_at=None, totp_last_step=0)
        RecoveryCode.objects.filter(user=user).delete()
    user.totp_secret_sealed, user.totp_enabled_at = None, None


def _digest(user: User, code: str, key: str | bytes) -> str:
    normal = "".join(ch for ch in code.lower() if ch.isalnum())
    return macs.recovery_code(user.pk, normal, key)


def _digests(user: User, code: str) -> list[str]:
    """Recovery codes are HMACs under the account's own authenticator secret, which is sealed under
    the master key: not in the database in usable form, and untouched by a secret-key rotation.
    Codes made before that are checked under the secret key and each of its fallbacks."""
    secret = _secret(user)
    own = [_digest(user, code, secret)] if secret else []
    return own + [_digest(user, code, key) for key in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]]


def _new_recovery_codes(user: User) -> list[str]:
    RecoveryCode.objects.filter(user=user).delete()
    codes = ["".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(10)) for _ in range(RECOVERY_CODES)]
    secret = _secret(user)
    RecoveryCode.objects.bulk_create(RecoveryCode(user=user, digest=_digest(user, c, secret)) for c in codes)
    return [f"{c[:5]}-{c[5:]}" for c in codes]


def verify(user: User, code: str) -> str | None:
    """'app' or 'recovery' when ``code`` passes (a recovery code is used up), else None."""
    secret = _secret(user)
    if secret is not None and _accept_code(user, secret, code):
        return "app"
    digests = _digests(user, code)
    for candidate in RecoveryCode.objects.filter(user=user, used_at__isnull=True):
        if any(constant_time_compare(candidate.digest, digest) for digest in digests):
            used = RecoveryCode.objects.filter(pk=candidate.pk, used_at__isnull=True).update(used_at=clock.now())
            return "recovery" if used else None
    return None


def recovery_codes_left(user: User) -> int:
    return RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()


def enable_new_codes(user: User) -> list[str]:
    """Replace the recovery codes (the old ones stop working)."""
    with transaction.atomic():
        return _new_recovery_codes(user)
