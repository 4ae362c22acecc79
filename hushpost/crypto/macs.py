"""Keyed hashes, each under a key that is not in the database.

* The audit trail's links, head seals and checkpoints: keys derived from the derivation root
  (:func:`.derivation.derived_key`), over the fields as compact JSON.
* Sessions' stored keys and auth hashes, temporary passwords and their stored hashes: Django's
  ``salted_hmac`` (HMAC-SHA256) under the secret key (``secret`` names a fallback key when one is
  checked), salted with a label from :mod:`.labels`.
* The tag of an e-mail's link and the reference codes of messages and notifications: HMAC-SHA256
  under keys derived from the derivation root.
* Provisioning (SCIM) tokens: HMAC-SHA256 under a key derived from the derivation root, the
  database's only trace of a token (looked up by that hash).
* Recovery codes: under the account's own authenticator secret (older codes: the secret key).
* Regions' questions and answers: HMAC-SHA256 under the key the regions share.
* A notification's bounce tag (its key and a keyed hash of it, in the envelope sender): ``salted_hmac``
  under the secret key, 80 bits, so a delivery report counts only for an e-mail its sender received.
* A resend request's fingerprint of a password hash: ``salted_hmac`` with Django's default
  SHA-1, inside a token that is itself signed and lives 15 minutes.

A keyed hash is compared in constant time (:func:`matches`, or Django's ``constant_time_compare``),
never with ``==``.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.utils.crypto import salted_hmac

from hushpost.crypto import labels
from hushpost.crypto.derivation import derived_key


def matches(computed: str, given: str) -> bool:
    """In constant time, so a forger learns nothing from how long a refusal takes.
    Compared as UTF-8 bytes: a forged value with a non-ASCII character is simply wrong."""
    if not isinstance(computed, str) or not isinstance(given, str):
        return False
    return hmac.compare_digest(computed.encode("utf-8", "surrogatepass"), given.encode("utf-8", "surrogatepass"))


def audit(label: bytes, fields: list) -> str:
    data = json.dumps(fields, separators=(",", ":")).encode()
    return hmac.new(derived_key(label), data, hashlib.sha256).hexdigest()


def scim_token(token: str) -> str:
    """A provisioning token as stored and looked up: its HMAC, never the token."""
    data = token.encode("utf-8", "surrogatepass")
    return hmac.new(derived_key(labels.SCIM_TOKEN), data, hashlib.sha256).hexdigest()


def notification_link(key: bytes) -> bytes:
    """The tag an e-mail's link carries beside its notification's key: only this deployment makes it."""
    return hmac.new(derived_key(labels.NOTIFICATION_LINK), key, hashlib.sha256).digest()


def hide_notification_key(key: bytes) -> bytes:
    """A notification's 16-byte key as its link and bounce address show it: one AES block under a
    derived key, a keyed permutation (not a hash: :func:`reveal_notification_key` turns it back).
    Nothing outside then holds the key the temporary password is derived from."""
    encryptor = Cipher(algorithms.AES(derived_key(labels.NOTIFICATION_NAME)), modes.ECB()).encryptor()  # noqa: S305 - one block
    return encryptor.update(key) + encryptor.finalize()


def reveal_notification_key(hidden: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(derived_key(labels.NOTIFICATION_NAME)), modes.ECB()).decryptor()  # noqa: S305 - one block
    return decryptor.update(hidden) + decryptor.finalize()


def reference_code(subject: str) -> bytes:
    """The bits a reference code is spelled from: the same for the same message or notification."""
    return hmac.new(derived_key(labels.REFERENCE_CODE), subject.encode(), hashlib.sha256).digest()


def _keyed(label: str, value: str, secret: str | bytes | None) -> hmac.HMAC:
    return salted_hmac(label, value, secret=secret, algorithm="sha256")


def stored_session_key(session_key: str, secret: str | None = None) -> str:
    """What the database holds for a session: 160 bits, the width of Django's column."""
    return _keyed(labels.SESSION_STORE, session_key, secret).hexdigest()[:40]


def session_auth(password_hash: str, sessions_ended: str, secret: str | None = None) -> str:
    """Changes with the account's password and with each "sign out everywhere"."""
    return _keyed(labels.SESSION_AUTH, f"{password_hash}:{sessions_ended}", secret).hexdigest()


def temporary_password(seed: str, secret: str | None = None) -> bytes:
    """256 bits from which a Password Notification's temporary password is spelled."""
    return _keyed(labels.TEMPORARY_PASSWORD, seed, secret).digest()


def temporary_password_hash(password: str, salt: str, secret: str | None = None) -> str:
    return _keyed(labels.temporary_hash_label(salt), password, secret).hexdigest()


def recovery_code(user_id: int, code: str, key: str | bytes) -> str:
    return _keyed(labels.RECOVERY_CODE, f"{user_id}:{code}", key).hexdigest()


def region_signature(key: bytes, body: bytes) -> str:
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def password_fingerprint(password_hash: str) -> str:
    """Changes when the account's password does: a token carrying it dies with the password."""
    return salted_hmac(labels.RESEND_TEMPORARY, password_hash).hexdigest()


def sso_assertion(issuer: str, assertion_id: str, secret: str | None = None) -> str:
    """An identity provider's assertion (or token nonce) as remembered for replay: a keyed hash."""
    return _keyed(labels.SSO_ASSERTION, f"{issuer}\n{assertion_id}", secret).hexdigest()


def bounce_tag(notification_key: bytes, secret: str | None = None) -> bytes:
    """80 bits proving a bounce address was written by Hushpost for this notification: enough
    that guessing one (each guess an SMTP transaction) never succeeds, short enough for a local part."""
    return _keyed(labels.BOUNCE_TAG, notification_key.hex(), secret).digest()[:10]
