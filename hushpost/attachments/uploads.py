"""Django's upload handler for Hushpost: files are encrypted as they arrive.

It replaces Django's memory and temporary-file handlers, so an upload is never
held in memory whole nor written anywhere in plaintext.  Only the Compose and
Reply forms' ``files`` field is taken, and only from a signed-in sender or
recipient; any other file part is skipped unread (the admin area's list of
senders is taken before it, by ``orgadmin/uploads.py``).
"""

from __future__ import annotations

import io
import logging

from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile, StopFutureHandlers
from django.urls import Resolver404, resolve

from hushpost.attachments.actions import Receiver
from hushpost.lib.diskfull import storage_full
from hushpost.lib.refusals import Refused

log = logging.getLogger(__name__)
FIELD = "files"
STORE_FAILED = "A file could not be stored just now. Try again in a moment."
FORMS = {"senders:compose", "recipients:reply"}


def _form_of(request) -> str | None:
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return None
    return match.view_name if match.view_name in FORMS else None


def _same_origin(request) -> bool:
    """What the browser says about where the form came from, when it says anything."""
    site = request.META.get("HTTP_SEC_FETCH_SITE")
    if site is not None and site != "same-origin":
        return False
    origin = request.META.get("HTTP_ORIGIN")
    if origin not in (None, "null") and origin != f"{request.scheme}://{request.get_host()}":
        return False
    return True


class DraftFile(UploadedFile):
    """What lands in ``request.FILES``: the draft that now holds the file."""

    def __init__(self, attachment):
        super().__init__(io.BytesIO(), name=attachment.uid, size=attachment.size)
        self.attachment = attachment


def upload_errors(request) -> list[str]:
    return getattr(request, "upload_errors", [])


class EncryptingUploadHandler(FileUploadHandler):
    chunk_size = 256 * 1024

    def new_file(self, field_name, file_name, content_type, content_length, charset=None,
                 content_type_extra=None):
        super().new_file(field_name, file_name, content_type, content_length, charset, content_type_extra)
        self.receiver = None
        user = getattr(self.request, "user", None)
        if field_name != FIELD:
            raise SkipFile
        form = _form_of(self.request)
        if form is None or user is None or not user.is_authenticated or not user.is_active \
                or user.is_sender != (form == "senders:compose"):
            self._refuse("Files can be attached only to your own messages and replies.")
        if not _same_origin(self.request):
            # Stored only for the site's own pages: not even a draft before the CSRF check.
            self._refuse("The page that sent this file is not this site's.")
        try:
            self.receiver = Receiver(user, file_name, content_type)
            if not hasattr(self.request, "open_uploads"):
                self.request.open_uploads = []
            self.request.open_uploads.append(self.receiver)  # aborted if never finished
        except Refused as exc:
            self._refuse(str(exc))
        except Exception as exc:
            self._store_failed(exc)
        raise StopFutureHandlers

    def receive_data_chunk(self, raw_data, start):
        if self.receiver is None:
            raise SkipFile
        try:
            self.receiver.write(raw_data)
        except Refused as exc:
            self._refuse(str(exc))
        except Exception as exc:  # the store failed (disk full, S3 down): nothing is kept
            self._store_failed(exc)
        return None

    def file_complete(self, file_size):
        if self.receiver is None:
            return None
        try:
            attachment = self.receiver.finish()
        except Exception as exc:
            self.receiver.abort()
            self.receiver = None
            if storage_full(exc):
                raise
            log.warning("an upload could not be stored", exc_info=True)
            self._note(STORE_FAILED)
            return None
        self.receiver = None
        self.request.stored_uploads = [*getattr(self.request, "stored_uploads", []), attachment]
        return DraftFile(attachment)

    def upload_interrupted(self):
        if getattr(self, "receiver", None) is not None:
            self.receiver.abort()

    def _store_failed(self, exc: Exception):
        """A full disk ends the whole request (``hushpost.server.errors`` says so); any other
        failure refuses this file and lets the form say why."""
        if storage_full(exc):
            if self.receiver is not None:
                self.receiver.abort()
                self.receiver = None
            raise exc
        log.warning("an upload could not be stored", exc_info=True)
        self._refuse(STORE_FAILED)

    def _refuse(self, reason: str):
        if self.receiver is not None:
            self.receiver.abort()
            self.receiver = None
        self._note(reason)
        raise SkipFile

    def _note(self, reason: str) -> None:
        if not hasattr(self.request, "upload_errors"):
            self.request.upload_errors = []
        self.request.upload_errors.append(reason)
