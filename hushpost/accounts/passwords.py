"""Temporary passwords and the strength rules for chosen ones."""

from __future__ import annotations

import secrets

from django.conf import settings
from zxcvbn import zxcvbn

from hushpost.lib.input import CONTROL

# No 0/o, 1/l/i: a recipient may be reading the e-mail on a phone and typing
# it on a laptop.  31 symbols x 20 = 99 bits.
ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
GROUPS, GROUP_LEN = 4, 5


def generate_temporary_password() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(GROUPS * GROUP_LEN))
    return "-".join(raw[i : i + GROUP_LEN] for i in range(0, len(raw), GROUP_LEN))


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
