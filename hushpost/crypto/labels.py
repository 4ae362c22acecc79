"""Every label Hushpost's cryptography binds into what it stores, each written here once.

Associated data names what a ciphertext belongs to, so a ciphertext copied into another row,
field, file or organisation fails to open instead of showing the wrong content. A derivation
label names what a key or keyed hash is for, so a value made for one purpose proves nothing
for another. Changing any string here makes every value stored under it unreadable or
unverifiable (``tests/test_stored_values.py`` holds values a deployment has written).
"""

from __future__ import annotations

# --- Associated data: what each ciphertext belongs to -------------------------------------


def org_key_aad(org_id: int, version: int) -> bytes:
    """An organisation key version, wrapped under the master key."""
    return f"hushpost:orgkey:{org_id}:{version}".encode()


def data_key_aad(org_id: int, message_uid: str) -> bytes:
    """A message's data key, wrapped under its organisation key."""
    return f"hushpost:datakey:{org_id}:{message_uid}".encode()


# A message's fields, each sealed under its data key.
SUBJECT, BODY = "subject", "body"


def field_aad(org_id: int, message_uid: str, field: str) -> bytes:
    return f"hushpost:field:{org_id}:{message_uid}:{field}".encode()


def spool_key_aad(org_id: int, spool_uid: str) -> bytes:
    """A spooled e-mail's data key, wrapped under its organisation key."""
    return f"hushpost:spool-key:{org_id}:{spool_uid}".encode()


def spool_aad(org_id: int, spool_uid: str, sender_id: int, token: str) -> bytes:
    """A spooled e-mail (its envelope and bytes), sealed under its data key: the row, the
    sender it is stored as and its send token, none of which can be changed under it."""
    return f"hushpost:spool:{org_id}:{spool_uid}:{sender_id}:{token}".encode()


def draft_file_aad(org_id: int, file_uid: str) -> bytes:
    """A draft file's keyset, name and type, sealed under the organisation key."""
    return f"hushpost:draft-file:{org_id}:{file_uid}".encode()


def file_key_aad(org_id: int, message_uid: str, file_uid: str) -> bytes:
    """A sent file's keyset, name and type, sealed under its message's data key."""
    return f"hushpost:file-key:{org_id}:{message_uid}:{file_uid}".encode()


def file_aad(org_id: int, file_uid: str) -> bytes:
    """A file's content, streamed under its own keyset."""
    return f"hushpost:file:{org_id}:{file_uid}".encode()


def totp_secret_aad(user_id: int) -> bytes:
    """An account's authenticator secret, sealed under the master key."""
    return f"hushpost:totp:{user_id}".encode()


def sso_client_secret_aad(org_id: int) -> bytes:
    """An organisation's OpenID Connect client secret, sealed under the master key."""
    return f"hushpost:sso-client-secret:{org_id}".encode()


def dkim_key_aad(domain: str, selector: str) -> bytes:
    """A domain's DKIM private key, sealed under the master key."""
    return f"hushpost:dkim-key:{domain}:{selector}".encode()


def derivation_root_aad() -> bytes:
    """The deployment's derivation root (:mod:`.derivation`), wrapped under the master key."""
    return b"hushpost:derivation-root"


def security_phrase_aad(user_id: int) -> bytes:
    """A recipient's security phrase (shown in their e-mails), sealed under the master key."""
    return f"hushpost:security-phrase:{user_id}".encode()


def totp_setup_aad(user_id: int) -> bytes:
    """An authenticator secret being set up, sealed under the master key into the session."""
    return f"hushpost:totp-setup:{user_id}".encode()


# A master key's id, written before each value it wraps: HMAC-SHA256 of this label, first 8 bytes.
MASTER_KEY_ID = b"hushpost:master-key-id"

# --- Keys derived from the derivation root (HMAC-SHA256 of the label) -----------------------
# The root is the master key's raw bytes as a deployment first had them, kept wrapped under the
# current master key (:mod:`.derivation`), so rotating the master key changes none of these.

AUDIT_LINK = b"hushpost:audit-chain"
AUDIT_HEAD = b"hushpost:audit-head"
AUDIT_CHECKPOINT = b"hushpost:audit-checkpoint"
AUDIT_EVENT = b"hushpost:audit-event"
# A provisioning (SCIM) token, kept only as this keyed hash: rotating the secret key keeps it working.
SCIM_TOKEN = b"hushpost:scim-token"
# The code in an e-mail's link (/r/<org>/n/<code>): proves the code was made here for that notification.
NOTIFICATION_LINK = b"hushpost:notification-link"
# A message's or a notification's reference code, shown in its e-mails and on the portal's pages.
REFERENCE_CODE = b"hushpost:reference-code"
# How a notification's key appears outside (in its link and its bounce address): under a keyed
# permutation, so neither shows the key the Password Notification's temporary password comes from.
NOTIFICATION_NAME = b"hushpost:notification-name"
MASTER_DERIVED = (AUDIT_LINK, AUDIT_HEAD, AUDIT_CHECKPOINT, AUDIT_EVENT, SCIM_TOKEN, NOTIFICATION_LINK,
                  REFERENCE_CODE, NOTIFICATION_NAME)

# --- Keyed hashes under the secret key (Django's salted_hmac: the label is the salt) --------

# A session's row, never its cookie's value.
SESSION_STORE = "hushpost.accounts.sessions"
# A session's tie to the account's password and its last "sign out everywhere".
SESSION_AUTH = "hushpost.accounts.session"
# A Password Notification's temporary password, derived from the notification's key.
TEMPORARY_PASSWORD = "hushpost.temporary-password"  # noqa: S105 - a label, not a password
# A recovery code, under the account's authenticator secret (older codes: under the secret key).
RECOVERY_CODE = "hushpost.accounts.recovery"
# An identity provider's assertion ID or token nonce, remembered so it works once.
SSO_ASSERTION = "hushpost.sso.assertion"
# The tag in a notification's envelope sender (bounces+<tag>@...): a delivery report naming it is ours.
BOUNCE_TAG = "hushpost.notifications.bounce-tag"


def temporary_hash_label(salt: str) -> str:
    """A temporary password's stored hash: the salt of each hash is part of its label."""
    return f"hushpost.temporary-hash.{salt}"


# A recipient's request for a new temporary password: the salt of its signed token (Django's
# signing) and of the fingerprint that binds the token to the password hash it was issued for.
RESEND_TEMPORARY = "hushpost.recipients.resend-temporary"
