"""Envelope encryption for message content.

Three layers, all AES-256-GCM from ``cryptography``:

* the **master key** (``HUSHPOST_MASTER_KEY``) wraps each organisation key;
* a versioned **organisation key** wraps each message's data key;
* a random per-message **data key** encrypts the message's fields.

Every ciphertext carries associated data naming what it belongs to
(organisation, message, field), so a ciphertext copied into another row,
another field or another organisation fails to decrypt instead of showing the
wrong content.  Stored blobs are ``version byte || 96-bit nonce || ciphertext``.
"""

from __future__ import annotations

import base64
import hashlib
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT_V1 = b"\x01"
NONCE_BYTES = 12
KEY_BYTES = 32


class DecryptionError(Exception):
    """Ciphertext was tampered with, moved, or wrapped under another key."""


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return FORMAT_V1 + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, blob: bytes, aad: bytes) -> bytes:
    blob = bytes(blob)
    if len(blob) < 1 + NONCE_BYTES + 16 or blob[:1] != FORMAT_V1:
        raise DecryptionError("not a Hushpost v1 ciphertext")
    nonce, body = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
    try:
        return AESGCM(key).decrypt(nonce, body, aad)
    except InvalidTag:
        raise DecryptionError("authentication failed") from None


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


def org_key_aad(org_id: int, version: int) -> bytes:
    return f"hushpost:orgkey:{org_id}:{version}".encode()


def data_key_aad(org_id: int, message_uid: str) -> bytes:
    return f"hushpost:datakey:{org_id}:{message_uid}".encode()


def field_aad(org_id: int, message_uid: str, field: str) -> bytes:
    return f"hushpost:field:{org_id}:{message_uid}:{field}".encode()


@lru_cache(maxsize=1024)
def unwrap_org_key(master: bytes, org_id: int, version: int, wrapped: bytes) -> bytes:
    # Cached: an organisation key is unwrapped once per process, not per message.
    return open_sealed(master, wrapped, org_key_aad(org_id, version))
