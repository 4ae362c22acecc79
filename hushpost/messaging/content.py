"""Encrypting and decrypting a message's subject and body.

The only module that touches message plaintext at rest.  Associated data binds
each ciphertext to its organisation, message and field.
"""

from __future__ import annotations

from dataclasses import dataclass

from hushpost.lib import crypto
from hushpost.messaging.models import Message
from hushpost.orgs import keys


@dataclass(frozen=True)
class Content:
    subject: str
    body_html: str


def seal_content(message: Message, subject: str, body_html: str) -> None:
    """Fill ``message``'s key and ciphertext fields (``uid`` and ``org`` must be set)."""
    version, org_key = keys.current_key(message.org)
    fresh_key = crypto.new_key()
    org_id, uid = message.org_id, message.uid
    message.key_version = version
    message.wrapped_key = crypto.seal(org_key, fresh_key, crypto.data_key_aad(org_id, uid))
    message.subject_ct = crypto.seal(
        fresh_key, subject.encode(), crypto.field_aad(org_id, uid, "subject")
    )
    message.body_ct = crypto.seal(
        fresh_key, body_html.encode(), crypto.field_aad(org_id, uid, "body")
    )


def data_key(message: Message) -> bytes:
    """The message's data key (it also seals its files' keys)."""
    org_key = keys.key_version(message.org_id, message.key_version)
    return crypto.open_sealed(
        org_key, bytes(message.wrapped_key), crypto.data_key_aad(message.org_id, message.uid)
    )


def open_subject(message: Message) -> str:
    key = data_key(message)
    aad = crypto.field_aad(message.org_id, message.uid, "subject")
    return crypto.open_sealed(key, bytes(message.subject_ct), aad).decode()


def open_content(message: Message) -> Content:
    key = data_key(message)
    org_id, uid = message.org_id, message.uid
    subject = crypto.open_sealed(key, bytes(message.subject_ct), crypto.field_aad(org_id, uid, "subject"))
    body = crypto.open_sealed(key, bytes(message.body_ct), crypto.field_aad(org_id, uid, "body"))
    return Content(subject=subject.decode(), body_html=body.decode())
