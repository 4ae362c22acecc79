"""Temporary passwords and the strength rules for chosen ones."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher, BasePasswordHasher, mask_hash
from django.utils.crypto import constant_time_compare
from zxcvbn import zxcvbn

from hushpost.crypto import macs
from hushpost.lib.input import CONTROL

# No 0/o, 1/l/i: a recipient may be reading the e-mail on a phone and typing
# it on a laptop.  31 symbols x 20 = 99 bits.
ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
GROUPS, GROUP_LEN = 4, 5


def temporary_password_for(seed: str, *, secret: str | None = None) -> str:
    """The temporary password of one Password Notification, derived from its key.

    The same notification always carries the same password, so an e-mail the
    relay accepted but the worker could not record before it died, and which
    therefore goes again, holds a password that works as well as the second
    one. The password is stored nowhere: without the deployment's secret key
    the notification's key tells nothing of it. Base 31 from 256 bits: the
    20 symbols are uniform to within 2**-150.
    """
    number = int.from_bytes(macs.temporary_password(seed, secret), "big")
    raw = []
    for _ in range(GROUPS * GROUP_LEN):
        number, index = divmod(number, len(ALPHABET))
        raw.append(ALPHABET[index])
    return "-".join("".join(raw[i : i + GROUP_LEN]) for i in range(0, len(raw), GROUP_LEN))


class TemporaryPasswordHasher(BasePasswordHasher):
    """A keyed SHA-256 for temporary passwords, which have 99 random bits.

    A slow hash protects passwords people choose; against 2**99 guesses a
    keyed fast hash is as strong, and it lets the worker write thousands of
    Password Notifications a second. Checking one still costs as much as an
    Argon2 password, so sign-in time does not tell that an address has a
    temporary password waiting.
    """

    algorithm = "hushpost_temporary"

    def encode(self, password, salt):
        self._check_encode_args(password, salt)
        return f"{self.algorithm}${salt}${macs.temporary_password_hash(password, salt)}"

    def decode(self, encoded):
        algorithm, salt, mac = encoded.split("$", 2)
        assert algorithm == self.algorithm  # noqa: S101 - Django's hashers check this the same way
        return {"algorithm": algorithm, "hash": mac, "salt": salt}

    def verify(self, password, encoded):
        decoded = self.decode(encoded)
        ok = any(
            constant_time_compare(macs.temporary_password_hash(password, decoded["salt"], secret), decoded["hash"])
            for secret in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
        )
        Argon2PasswordHasher().encode(password, Argon2PasswordHasher().salt())  # the time an Argon2 check takes
        return ok

    def safe_summary(self, encoded):
        decoded = self.decode(encoded)
        return {"algorithm": decoded["algorithm"], "salt": mask_hash(decoded["salt"], show=2),
                "hash": mask_hash(decoded["hash"])}

    def harden_runtime(self, password, encoded):
        pass


def hash_temporary(password: str) -> str:
    return TemporaryPasswordHasher().encode(password, TemporaryPasswordHasher().salt())


def canonical_temporary(value: str) -> str:
    """What a recipient typed, forgiving case, spaces and missing hyphens."""
    raw = "".join(c for c in value.lower() if c.isalnum())
    return "-".join(raw[i : i + GROUP_LEN] for i in range(0, len(raw), GROUP_LEN))


def password_problems(password: str, *, email: str, name: str = "") -> list[str]:
    problems = []
    if len(password) < settings.MIN_PASSWORD_LENGTH:
        problems.append(f"Use at least {settings.MIN_PASSWORD_LENGTH} characters.")
    if len(password) > 256:
        problems.append("Use at most 256 characters.")
    if CONTROL.search(password):
        problems.append("Use letters, digits, spaces and symbols only: a control character (such as NUL) "
                        "cannot be typed at sign-in.")
    if problems:
        return problems
    result = zxcvbn(password[:100], user_inputs=[email, email.split("@")[0], name, "hushpost"])
    if result["score"] < 3:
        hint = result["feedback"].get("warning") or "It would be easy to guess."
        problems.append(f"Choose a stronger password. {hint}".strip())
    return problems
