"""Envelope encryption: a fresh data key for each message, wrapped by its organisation key.

Three layers, all AES-256-GCM (:mod:`.aead`):

* the master key wraps each organisation key (:mod:`.keys`);
* a versioned organisation key wraps each message's data key;
* the message's random data key seals its fields (subject, body) and its files' keysets.

A file not yet on a message (a draft) has its keyset sealed under the organisation key, and
is sealed again under the data key of the message it is attached to. Associated data names
organisation, message, field or file (:mod:`.labels`).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from hushpost.crypto import aead, labels


def new_data_key() -> bytes:
    return aead.new_key()


def wrap_data_key(org_key: bytes, data_key: bytes, org_id: int, message_uid: str) -> bytes:
    return aead.seal(org_key, data_key, labels.data_key_aad(org_id, message_uid))


def unwrap_data_key(org_key: bytes, wrapped: bytes, org_id: int, message_uid: str) -> bytes:
    return aead.open_sealed(org_key, wrapped, labels.data_key_aad(org_id, message_uid))


def seal_field(data_key: bytes, org_id: int, message_uid: str, field: str, text: str) -> bytes:
    return aead.seal(data_key, text.encode(), labels.field_aad(org_id, message_uid, field))


def open_field(data_key: bytes, org_id: int, message_uid: str, field: str, blob: bytes) -> str:
    return aead.open_sealed(data_key, blob, labels.field_aad(org_id, message_uid, field)).decode()


@dataclass(frozen=True)
class FileSecret:
    """What a file's ``sealed`` column holds: its Tink keyset (:mod:`.streams`), name and type."""

    keyset: bytes
    name: str
    content_type: str

    def packed(self) -> bytes:
        return json.dumps({"k": base64.b64encode(self.keyset).decode(), "n": self.name,
                           "t": self.content_type}).encode()

    @classmethod
    def unpacked(cls, data: bytes) -> FileSecret:
        fields = json.loads(data)
        return cls(keyset=base64.b64decode(fields["k"]), name=fields["n"], content_type=fields["t"])


def seal_draft_file(org_key: bytes, org_id: int, file_uid: str, secret: FileSecret) -> bytes:
    return aead.seal(org_key, secret.packed(), labels.draft_file_aad(org_id, file_uid))


def open_draft_file(org_key: bytes, org_id: int, file_uid: str, blob: bytes) -> FileSecret:
    return FileSecret.unpacked(aead.open_sealed(org_key, blob, labels.draft_file_aad(org_id, file_uid)))


def seal_message_file(data_key: bytes, org_id: int, message_uid: str, file_uid: str,
                      secret: FileSecret) -> bytes:
    return aead.seal(data_key, secret.packed(), labels.file_key_aad(org_id, message_uid, file_uid))


def open_message_file(data_key: bytes, org_id: int, message_uid: str, file_uid: str,
                      blob: bytes) -> FileSecret:
    aad = labels.file_key_aad(org_id, message_uid, file_uid)
    return FileSecret.unpacked(aead.open_sealed(data_key, blob, aad))
