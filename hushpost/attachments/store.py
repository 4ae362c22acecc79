"""Where encrypted files live: the local data directory, or S3-compatible storage.

Both stores hold only ciphertext, under random keys that name nothing.  A
store writes through a stream (``writer``), which either commits as a whole or
leaves nothing behind, and reads through a stream (``reader``): neither ever
holds a whole file in memory.

``HUSHPOST_STORAGE=local`` (default) keeps files under ``HUSHPOST_DATA_DIR/files``;
``HUSHPOST_STORAGE=s3`` uses boto3 against ``HUSHPOST_S3_BUCKET`` (and
``HUSHPOST_S3_ENDPOINT_URL`` for an S3-compatible server).
"""

from __future__ import annotations

import io
import os
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

PART_BYTES = 8 * 1024 * 1024  # S3 multipart part size: about twice this is held per upload


class LocalStore:
    def __init__(self, root: Path):
        self.root = root

    def _path(self, key: str) -> Path:
        if not key or "/" in key or key.startswith("."):
            raise ValueError("not a store key")
        return self.root / key[:2] / key

    def writer(self, key: str) -> BinaryIO:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return _LocalWriter(path)

    def reader(self, key: str) -> BinaryIO:
        return open(self._path(key), "rb")  # noqa: SIM115 - closed by the caller

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def ready(self) -> bool:
        """The directory is there, or can be made as the first file would make it, and is writable
        (``/readyz``)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError:
            return False
        return os.access(self.root, os.W_OK | os.X_OK)

    def sweep_partial(self, older_than_seconds: float) -> int:
        """Remove ``.part`` files a killed process left behind."""
        import time

        cutoff, removed = time.time() - older_than_seconds, 0
        for part in self.root.glob("*/*.part"):
            try:
                if part.stat().st_mtime < cutoff:
                    part.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed


class _LocalWriter(io.RawIOBase):
    """Writes to ``<path>.part``; ``close`` renames it into place only once the
    writer was marked ``complete`` (any other close, even by the garbage
    collector after an interrupted upload, removes it)."""

    def __init__(self, path: Path):
        self.path, self.part = path, path.with_suffix(".part")
        self._file = open(self.part, "wb")  # noqa: SIM115
        self.failed = False
        self.complete = False
        self.error: OSError | None = None  # what the disk said, for callers that only see Tink's text

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        try:
            return self._file.write(data)
        except OSError as exc:
            self.failed, self.error = True, exc
            raise

    def abort(self) -> None:
        self.failed = True
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            if self.failed or not self.complete:
                raise OSError("write aborted")
            os.replace(self.part, self.path)
        except OSError as exc:
            self.part.unlink(missing_ok=True)
            self.failed = True
            self.error = self.error or exc
            raise
        finally:
            super().close()


class S3Store:
    def __init__(self, bucket: str, **client_args):
        import boto3

        self.bucket = bucket
        self.client = boto3.client("s3", **client_args)

    def writer(self, key: str) -> BinaryIO:
        return _S3Writer(self.client, self.bucket, key)

    def reader(self, key: str) -> BinaryIO:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"]

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def sweep_partial(self, older_than_seconds: float) -> int:
        return 0  # abandoned multipart uploads: the bucket's AbortIncompleteMultipartUpload rule

    def ready(self) -> bool:
        """The bucket answers (``/readyz``)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception:  # noqa: BLE001 - any failure means not ready; the caller logs it
            return False
        return True


class _S3Writer(io.RawIOBase):
    """A multipart upload fed by ``write``; completed by ``close``, aborted on failure."""

    def __init__(self, client, bucket: str, key: str):
        self.client, self.bucket, self.key = client, bucket, key
        self.upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        self.parts: list[dict] = []
        self.buffer = bytearray()
        self.failed = False
        self.complete = False

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.buffer += data
        if len(self.buffer) >= PART_BYTES:
            self._flush_part()
        return len(data)

    def _flush_part(self) -> None:
        number = len(self.parts) + 1
        try:
            reply = self.client.upload_part(Bucket=self.bucket, Key=self.key, PartNumber=number,
                                            UploadId=self.upload_id, Body=bytes(self.buffer))
        except Exception:
            self.failed = True
            raise
        self.parts.append({"ETag": reply["ETag"], "PartNumber": number})
        self.buffer = bytearray()

    def abort(self) -> None:
        self.failed = True
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self.failed or not self.complete:
                raise OSError("write aborted")
            if self.buffer or not self.parts:
                self._flush_part()
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                MultipartUpload={"Parts": self.parts})
        except Exception:
            self.failed = True
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
            raise
        finally:
            super().close()


@lru_cache(maxsize=4)
def _store(kind: str, root: str, bucket: str, endpoint: str, region: str, key_id: str, secret: str):
    if kind == "s3":
        args = {"endpoint_url": endpoint or None, "region_name": region or None}
        if key_id:
            args |= {"aws_access_key_id": key_id, "aws_secret_access_key": secret}
        return S3Store(bucket, **args)
    return LocalStore(Path(root))


def get_store() -> LocalStore | S3Store:
    s = settings.FILE_STORAGE
    return _store(s["kind"], s["root"], s["bucket"], s["endpoint_url"], s["region"],
                  s["access_key_id"], s["secret_access_key"])
