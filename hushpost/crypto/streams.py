"""Streaming encryption for files: Tink's streaming AEAD, nothing home-made.

Each file gets its own Tink keyset (AES256_GCM_HKDF_1MB: AES-256-GCM in 1 MiB
segments, each segment authenticated and bound to its position, the stream
bound to associated data naming the file, ``labels.file_aad``).  The serialized
keyset is then sealed under the message's data key (:mod:`.envelope`), so a file
is opened only through its message's key hierarchy.  Memory stays at about one
segment, whatever the file size.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import tink
from tink import secret_key_access, streaming_aead

streaming_aead.register()
_TEMPLATE = streaming_aead.streaming_aead_key_templates.AES256_GCM_HKDF_1MB
CHUNK = 256 * 1024


class StreamError(Exception):
    """A file's ciphertext is damaged, truncated, or was moved to another file."""


def new_file_key() -> bytes:
    """A fresh keyset for one file, serialized (secret: seal it before storing)."""
    handle = tink.new_keyset_handle(_TEMPLATE)
    return tink.proto_keyset_format.serialize(handle, secret_key_access.TOKEN)


def _primitive(file_key: bytes) -> streaming_aead.StreamingAead:
    handle = tink.proto_keyset_format.parse(file_key, secret_key_access.TOKEN)
    return handle.primitive(streaming_aead.StreamingAead)


@contextmanager
def encrypting(file_key: bytes, destination: BinaryIO, aad: bytes) -> Iterator[BinaryIO]:
    """Write plaintext to the yielded stream; ciphertext goes to ``destination``.

    The destination is closed when the stream is (Tink writes the last segment then).
    """
    with _primitive(file_key).new_encrypting_stream(destination, aad) as stream:
        yield stream


def decrypted_chunks(file_key: bytes, source: BinaryIO, aad: bytes) -> Iterator[bytes]:
    """The plaintext of ``source``, chunk by chunk, each chunk authenticated first."""
    try:
        with _primitive(file_key).new_decrypting_stream(_Readable(source), aad) as stream:
            while chunk := stream.read(CHUNK):
                yield chunk
    except tink.TinkError as exc:
        raise StreamError("file ciphertext failed authentication") from exc
    finally:
        source.close()


class _Readable(io.RawIOBase):
    """Any object with ``read(n)`` (a file, an S3 response body) as a raw stream."""

    def __init__(self, source):
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._source.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
