"""Files: receive (encrypting as the bytes arrive), attach to a message, open for download.

A file goes through three states.  ``Receiver`` streams an upload into the
store as ciphertext and records a *draft* owned by its uploader.  ``attach``
moves drafts onto a message in the message's own transaction, re-sealing each
file's key under the message's data key.  ``open_file`` streams a file of a
message that the caller already loaded through the message access gate.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from hushpost.accounts.models import User
from hushpost.attachments.models import Attachment
from hushpost.attachments.names import name_problem, safe_content_type, safe_filename
from hushpost.attachments.store import get_store
from hushpost.attachments.tasks import purge_drafts
from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.crypto import envelope, keys, streams
from hushpost.crypto.envelope import FileSecret
from hushpost.crypto.labels import file_aad
from hushpost.lib import clock
from hushpost.lib.refusals import Refused
from hushpost.messaging.content import data_key
from hushpost.messaging.models import Delivery, Message, Restriction
from hushpost.messaging.sql import attachments_of

log = logging.getLogger(__name__)
MB = 1024 * 1024
MAX_FILES = 50


class FileRefused(Refused):
    """An upload or attachment is refused; the text says why, for the user.

    Its own kind: an upload answers with its HTTP status, and the gateway bounces
    a message for its files with a reply of their own (552)."""

    def __init__(self, text: str, status: int = 400):
        super().__init__(text)
        self.status = status  # for an HTTP answer: 413 when a size limit refused it


@dataclass(frozen=True)
class FileInfo:
    uid: str
    name: str
    content_type: str
    size: int


def _unseal(attachment: Attachment, message: Message | None = None) -> FileSecret:
    """The file's keyset, name and type: under the organisation key while a draft, else its message's data key."""
    sealed = bytes(attachment.sealed)
    if attachment.message_id is None:
        org_key = keys.key_version(attachment.org_id, attachment.draft_key_version)
        return envelope.open_draft_file(org_key, attachment.org_id, attachment.uid, sealed)
    message = message or attachment.message
    return envelope.open_message_file(data_key(message), attachment.org_id, message.uid, attachment.uid, sealed)


def file_limit(owner: User) -> int:
    return owner.org.max_file_mb * MB


class Receiver:
    """One upload, streamed: ``write`` each chunk as it arrives, then ``finish``.

    Memory holds about a segment (an S3 part, with S3), nothing is ever in plaintext on disk.
    Over the size limit, or on any failure, ``abort`` leaves no trace.
    """

    def __init__(self, owner: User, name: str, content_type: str = ""):
        if not owner.is_authenticated or owner.org_id is None:
            raise FileRefused("Sign in to attach files.")
        if problem := name_problem(name):
            raise FileRefused(problem)
        self.owner = owner
        self.name = safe_filename(name)
        self.content_type = safe_content_type(content_type)
        self.limit = file_limit(owner)
        self.size = 0
        self.uid = Attachment._meta.get_field("uid").default()
        self.store_key = secrets.token_hex(32)
        self.file_key = streams.new_file_key()
        _check_quota(owner)
        self._writer = get_store().writer(self.store_key)
        try:
            self._context = streams.encrypting(self.file_key, self._writer, file_aad(owner.org_id, self.uid))
            self._stream = self._context.__enter__()
        except BaseException:
            self._writer_abort()
            raise
        self.done = False

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            self.abort()
            raise FileRefused(
                f"{self.name} is larger than {self.limit // MB} MB, the largest file your organisation allows.",
                status=413)
        try:
            self._stream.write(chunk)
        except Exception as exc:
            self._raise_store_error(exc)

    def finish(self) -> Attachment:
        self._writer.complete = True  # the store keeps the file only from here on
        context, self._context = self._context, None
        try:
            context.__exit__(None, None, None)  # writes the last segment, commits the store
        except Exception as exc:
            self._writer_abort()
            self._raise_store_error(exc)
        version, org_key = keys.current_key(self.owner.org)
        attachment = Attachment(
            uid=self.uid, org_id=self.owner.org_id, owner=self.owner, draft_key_version=version,
            sealed=envelope.seal_draft_file(org_key, self.owner.org_id, self.uid,
                                            FileSecret(self.file_key, self.name, self.content_type)),
            size=self.size, store_key=self.store_key,
        )
        try:
            with transaction.atomic():
                attachment.save()
                _queue_purge()
        except Exception:
            get_store().delete(self.store_key)
            raise
        self.done = True
        return attachment

    def _raise_store_error(self, exc: Exception) -> NoReturn:
        """Tink passes a store's failure on as text only; the store's own error (a full
        disk, say) is the one that says what happened."""
        stored = getattr(self._writer, "error", None)
        if stored is not None and stored is not exc:
            raise stored from exc
        raise exc

    def abort(self) -> None:
        if self.done:
            return
        self.done = True
        self._writer_abort()

    def _writer_abort(self) -> None:
        self._writer.complete = False
        self._writer.failed = True
        context = getattr(self, "_context", None)
        if context is not None:
            self._context = None
            try:  # end Tink's stream now; the writer, marked failed, then discards everything
                context.__exit__(None, None, None)
            except Exception:  # noqa: S110 - the writer refuses to commit: that is the point
                pass
        try:
            self._writer.abort()
        except Exception:  # noqa: S110 - an aborted write leaves nothing; there is nothing more to undo
            pass
        try:
            get_store().delete(self.store_key)
        except Exception:
            log.warning("could not remove an aborted upload's blob", exc_info=True)


def _queue_purge() -> None:
    """Once the draft is old enough to go, a task looks for drafts nobody sent."""
    delay = timedelta(hours=settings.UPLOAD_DRAFT_HOURS, minutes=1)
    purge_drafts.using(run_after=timezone.now() + delay).enqueue()


def _check_quota(owner: User) -> None:
    """Unsent files are bounded per person: at most two messages' worth at a time.

    Recipients may upload only while they have a message they can still answer.
    """
    if owner.is_recipient and not _can_reply_to_something(owner):
        raise FileRefused("You can attach files only to a reply, and none of your messages can be answered.")
    held = Attachment.objects.filter(owner=owner, message__isnull=True).aggregate(
        count=models.Count("pk"), total=models.Sum("size"))
    if held["count"] >= 2 * MAX_FILES or (held["total"] or 0) >= 2 * owner.org.max_message_mb * MB:
        raise FileRefused("You have too many files waiting to be sent. Send or remove some first.")


def _can_reply_to_something(user: User) -> bool:
    return (Delivery.objects.filter(recipient=user, deleted_at__isnull=True)
            .exclude(message__restriction=Restriction.NO_PRINT_NO_REPLY)
            .filter(models.Q(message__expires_at__isnull=True) | models.Q(message__expires_at__gt=clock.now()))
            .exists())


def receive(owner: User, name: str, content_type: str, chunks: Iterable[bytes],
            expected_size: int | None = None) -> Attachment:
    """Stream ``chunks`` into a new draft file of ``owner``; a short stream is refused."""
    receiver = Receiver(owner, name, content_type)
    try:
        for chunk in chunks:
            receiver.write(chunk)
        if expected_size is not None and receiver.size != expected_size:
            raise FileRefused("The upload was cut short. Try again.")
        return receiver.finish()
    except BaseException:
        receiver.abort()
        raise


def drafts(owner: User, uids: Iterable[str]) -> list[Attachment]:
    """The owner's own unsent files named by ``uids``; anything else is refused."""
    wanted = list(dict.fromkeys(u for u in uids if u))
    if len(wanted) > MAX_FILES:
        raise FileRefused(f"A message can carry at most {MAX_FILES} files.")
    found = {a.uid: a for a in Attachment.objects.filter(owner=owner, message__isnull=True, uid__in=wanted)}
    if len(found) != len(wanted):
        raise FileRefused("An attached file is no longer available; attach it again.")
    return [found[u] for u in wanted]


def check_total(owner: User, files: list[Attachment]) -> None:
    limit = owner.org.max_message_mb * MB
    if sum(a.size for a in files) > limit:
        raise FileRefused(f"The attached files come to more than {limit // MB} MB, "
                          "the most your organisation allows on one message.")


def attach(message: Message, files: list[Attachment]) -> None:
    """Move drafts onto ``message`` (inside its transaction), sealing their keys under its data key."""
    if not files:
        return
    key = data_key(message)
    for position, attachment in enumerate(files):
        attachment.sealed = envelope.seal_message_file(key, message.org_id, message.uid, attachment.uid,
                                                       _unseal(attachment))
        attachment.message = message
        attachment.draft_key_version = None
        attachment.position = position
        updated = Attachment.objects.filter(pk=attachment.pk, message__isnull=True).update(
            message=message, sealed=attachment.sealed, draft_key_version=None, position=position)
        if updated != 1:  # attached elsewhere a moment ago (a second tab)
            raise FileRefused("An attached file is no longer available; attach it again.")


def describe(attachment: Attachment, message: Message | None = None) -> FileInfo:
    return _info(attachment, _unseal(attachment, message))


def _info(attachment: Attachment, secret: FileSecret) -> FileInfo:
    return FileInfo(uid=attachment.uid, name=secret.name, content_type=secret.content_type, size=attachment.size)


def files_of(message: Message) -> list[FileInfo]:
    """A message's files, in the order they were attached (names decrypted); none once the
    retention policy destroyed the message's content, files included."""
    if message.purged_at is not None:
        return []
    return [describe(a, message) for a in attachments_of(message)]


def open_file(message: Message, uid: str, *, by: User) -> tuple[FileInfo, Iterator[bytes]] | None:
    """A file of ``message`` (already checked by the access gate), as decrypted
    chunks; each download by ``by`` is recorded in the audit trail."""
    attachment = message.attachments.filter(uid=uid).first()
    if attachment is None or message.purged_at is not None:
        return None
    record(AuditEvent.Action.DOWNLOAD, actor=by, obj=message, detail=f"file {uid}")
    secret = _unseal(attachment, message)
    source = get_store().reader(attachment.store_key)
    return _info(attachment, secret), streams.decrypted_chunks(secret.keyset, source,
                                                               file_aad(attachment.org_id, attachment.uid))


def files_to_export(message: Message) -> list[tuple[FileInfo, Iterator[bytes]]]:
    """Every file of ``message`` (already checked by the access gate), each decrypted only
    as its chunks are read. For an export of a whole conversation, which its caller records
    in the audit trail once, rather than as a download of each file. None once the retention
    policy destroyed the message's content."""
    if message.purged_at is not None:
        return []
    exported = []
    for attachment in message.attachments.order_by("position", "pk"):
        secret = _unseal(attachment, message)
        exported.append((_info(attachment, secret), _decrypted(attachment, secret)))
    return exported


def _decrypted(attachment: Attachment, secret: FileSecret) -> Iterator[bytes]:
    # A generator: the store is opened once the first chunk is asked for.
    source = get_store().reader(attachment.store_key)
    yield from streams.decrypted_chunks(secret.keyset, source, file_aad(attachment.org_id, attachment.uid))


def draft_infos(owner: User, uids: Iterable[str]) -> list[FileInfo]:
    """The owner's drafts among ``uids`` (unknown ones skipped), to show again on a form."""
    uids = list(uids)
    if not uids:  # a form shown the first time: nothing to look for, nor a query to build
        return []
    found = Attachment.objects.filter(owner=owner, message__isnull=True, uid__in=uids[:MAX_FILES])
    return [describe(a) for a in found.order_by("created_at")]
