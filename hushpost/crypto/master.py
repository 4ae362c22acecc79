"""The master key (``HUSHPOST_MASTER_KEY``) and the earlier ones still accepted while it takes over.

The master key is never in the database. It wraps, with :func:`seal`:

* each organisation key (:mod:`.keys`, associated data ``labels.org_key_aad``);
* each account's authenticator secret, and one being set up in the session
  (``labels.totp_secret_aad``, ``labels.totp_setup_aad``);
* each organisation's OpenID Connect client secret (``labels.sso_client_secret_aad``);
* the derivation root (:mod:`.derivation`), from which the audit trail's and provisioning
  tokens' keys are derived, so that rotating the master key changes none of them.

A wrapped value starts with :data:`MARKED` and the 8-byte id of the key that wrapped it, so it is
opened with that key, and ``hushpost keys status`` counts what an earlier key still wraps. A
value wrapped before ids were written is a plain :mod:`.aead` blob; it is tried under each
configured key, the current one first. ``HUSHPOST_MASTER_KEY_PREVIOUS`` lists the earlier keys
(``hushpost keys rotate-master`` re-wraps everything under the current one).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings

from hushpost.crypto import aead, labels
from hushpost.crypto.aead import KEY_BYTES, DecryptionError

# A wrapped value that names its master key: MARKED || key id || aead blob.
MARKED = b"\x02"
KEY_ID_BYTES = 8


class UnknownMasterKey(DecryptionError):
    """A value wrapped under a master key that is neither ``HUSHPOST_MASTER_KEY`` nor a previous one."""


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


def key_id(key: bytes) -> bytes:
    """Names a master key in what it wraps, and tells nothing about it."""
    return hmac.new(key, labels.MASTER_KEY_ID, hashlib.sha256).digest()[:KEY_ID_BYTES]


@dataclass(frozen=True)
class Keyring:
    """The current master key, which wraps everything from now on, and the previous ones."""

    current: bytes
    previous: tuple[bytes, ...]

    @property
    def keys(self) -> tuple[bytes, ...]:
        return (self.current, *self.previous)

    def by_id(self, kid: bytes) -> bytes | None:
        return next((key for key in self.keys if hmac.compare_digest(key_id(key), kid)), None)


def keyring() -> Keyring:
    return _keyring(settings.MASTER_KEY, tuple(settings.MASTER_KEY_PREVIOUS))


@lru_cache(maxsize=4)
def _keyring(current: str, previous: tuple[str, ...]) -> Keyring:
    # Cached by the settings' values, so changed settings read afresh.
    key = master_key_from_setting(current)
    return Keyring(key, tuple(dict.fromkeys(p for p in map(master_key_from_setting, previous) if p != key)))


def seal(plaintext: bytes, aad: bytes) -> bytes:
    """Wrapped under the current master key, named by its id."""
    key = keyring().current
    return MARKED + key_id(key) + aead.seal(key, plaintext, aad)


def open_sealed(blob: bytes, aad: bytes, ring: Keyring | None = None) -> bytes:
    return _open(ring or keyring(), bytes(blob), aad)[1]


def wrapped_under(blob: bytes, aad: bytes, ring: Keyring | None = None) -> bytes | None:
    """The configured key that wrapped ``blob``, None if none of them opens it."""
    try:
        return _open(ring or keyring(), bytes(blob), aad)[0]
    except DecryptionError:
        return None


def is_current(blob: bytes) -> bool:
    """Whether ``blob`` names the current key (a rewrap would change nothing)."""
    blob = bytes(blob)
    return blob[:1] == MARKED and hmac.compare_digest(blob[1:1 + KEY_ID_BYTES], key_id(keyring().current))


def _open(ring: Keyring, blob: bytes, aad: bytes) -> tuple[bytes, bytes]:
    if blob[:1] == MARKED:
        kid, body = blob[1:1 + KEY_ID_BYTES], blob[1 + KEY_ID_BYTES:]
        key = ring.by_id(kid)
        if key is None:
            raise UnknownMasterKey(
                f"wrapped under master key {kid.hex()}, which is neither HUSHPOST_MASTER_KEY nor in "
                f"HUSHPOST_MASTER_KEY_PREVIOUS")
        return key, aead.open_sealed(key, body, aad)
    # Wrapped before values named their key: by one of the configured keys, most likely the current.
    for key in ring.keys:
        try:
            return key, aead.open_sealed(key, blob, aad)
        except DecryptionError:
            continue
    raise UnknownMasterKey("no configured master key (HUSHPOST_MASTER_KEY, HUSHPOST_MASTER_KEY_PREVIOUS) opens it")
