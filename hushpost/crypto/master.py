"""The master key (``HUSHPOST_MASTER_KEY``), and the keys derived from it for each purpose.

The master key is never in the database. It does three things:

* wraps each organisation key (:mod:`.keys`, associated data ``labels.org_key_aad``);
* seals each account's authenticator secret, and one being set up in the session
  (``labels.totp_secret_aad``, ``labels.totp_setup_aad``);
* keys the audit trail and provisioning tokens' stored hashes: HMAC-SHA256 of a label under the master key gives one key per
  purpose, the labels in ``labels.MASTER_DERIVED`` and nowhere else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache

from django.conf import settings

from hushpost.crypto import labels
from hushpost.crypto.aead import KEY_BYTES


def _decode_key(value: str) -> bytes | None:
    for decode in (base64.urlsafe_b64decode, base64.b64decode):
        try:
            raw = decode(value + "=" * (-len(value) % 4))
        except ValueError:
            continue
        if len(raw) == KEY_BYTES:
            return raw
    return None


def is_raw_key(value: str) -> bool:
    """Whether ``value`` is 32 bytes of base64, as production requires."""
    return _decode_key(value) is not None


def master_key_from_setting(value: str) -> bytes:
    """The configured master key as 32 bytes.

    A value that decodes as 32 bytes of base64 (standard or URL-safe) is used as
    is.  Any other string, such as the development key file, is hashed with
    SHA-256, which is sound for high-entropy input only; production mode
    refuses such keys (``openssl rand -base64 32`` makes a good one).
    """
    raw = _decode_key(value)
    if raw is not None:
        return raw
    # Development only: production refuses a master key that is not raw.
    return hashlib.sha256(value.encode()).digest()


@lru_cache(maxsize=1)
def master_key() -> bytes:
    return master_key_from_setting(settings.MASTER_KEY)


def derived_key(label: bytes) -> bytes:
    """The key for one purpose, derived from the configured master key."""
    if label not in labels.MASTER_DERIVED:
        raise ValueError(f"{label!r} is not a purpose the master key derives a key for")
    return _derive(settings.MASTER_KEY, label)


@lru_cache(maxsize=8)
def _derive(master_setting: str, label: bytes) -> bytes:
    # Cached by the setting's value, so a changed setting derives afresh.
    return hmac.new(master_key_from_setting(master_setting), label, hashlib.sha256).digest()
