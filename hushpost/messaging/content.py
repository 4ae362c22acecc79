"""Encrypting and decrypting a message's subject and body.

The only module that touches message plaintext at rest.  Associated data binds
each ciphertext to its organisation, message and field (``hushpost.crypto.envelope``).
A message whose content the retention policy destroyed (``purged_at``) has no key
left to open: every page shows what happened to it instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.html import format_html
from django.utils.timezone import localtime

from hushpost.crypto import envelope, keys
from hushpost.crypto.labels import BODY, SUBJECT
from hushpost.messaging.models import Message


@dataclass(frozen=True)
class Content:
    subject: str
    body_html: str


def seal_content(message: Message, subject: str, body_html: str) -> None:
    """Fill ``message``'s key and ciphertext fields (``uid`` and ``org`` must be set)."""
    version, org_key = keys.current_key(message.org)
    fresh_key = envelope.new_data_key()
    org_id, uid = message.org_id, message.uid
    message.key_version = version
    message.wrapped_key = envelope.wrap_data_key(org_key, fresh_key, org_id, uid)
    message.subject_ct = envelope.seal_field(fresh_key, org_id, uid, SUBJECT, subject)
    message.body_ct = envelope.seal_field(fresh_key, org_id, uid, BODY, body_html)


# What a list shows as the subject of a message whose content was destroyed.
REMOVED_SUBJECT = "Content removed under the retention policy"


def removed_notice(message: Message) -> str:
    """Why a purged message shows no content, in one sentence."""
    return (f"Content removed under {message.org.name}'s retention policy "
            f"on {localtime(message.purged_at):%-d %b %Y}.")


def data_key(message: Message) -> bytes:
    """The message's data key (it also seals its files' keys)."""
    org_key = keys.key_version(message.org_id, message.key_version)
    return envelope.unwrap_data_key(org_key, bytes(message.wrapped_key), message.org_id, message.uid)


def open_subject(message: Message) -> str:
    if message.purged_at is not None:
        return REMOVED_SUBJECT
    return envelope.open_field(data_key(message), message.org_id, message.uid, SUBJECT, bytes(message.subject_ct))


def open_content(message: Message) -> Content:
    if message.purged_at is not None:
        return Content(subject=REMOVED_SUBJECT,
                       body_html=format_html('<p class="removed">{}</p>', removed_notice(message)))
    key = data_key(message)
    org_id, uid = message.org_id, message.uid
    return Content(subject=envelope.open_field(key, org_id, uid, SUBJECT, bytes(message.subject_ct)),
                   body_html=envelope.open_field(key, org_id, uid, BODY, bytes(message.body_ct)))
