"""The files the admin area takes, read into memory (they are small): a CSV list of senders, a logo.

It comes before the attachments' encrypting handler (settings.FILE_UPLOAD_HANDLERS)
and takes only its form's first file part (``TAKES``), from a signed-in
organisation admin (the view checks again, and asks them to confirm it is them);
every other file part passes on to the next handler, which refuses what it does
not expect. A file over the limit is cut off, and the view says it is too large.
"""

from __future__ import annotations

import io

from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopFutureHandlers
from django.urls import Resolver404, resolve

from hushpost.orgadmin.importing import MAX_BYTES
from hushpost.orgs.branding import MAX_LOGO_BYTES

# The form (its view's name) -> its file field and the most bytes it keeps.
TAKES = {"orgadmin:sender-import": ("senders_csv", MAX_BYTES), "orgadmin:branding": ("logo", MAX_LOGO_BYTES)}


class AdminUploadHandler(FileUploadHandler):
    # Chunks as large as the encrypting handler's: Django reads with the smallest of them.
    chunk_size = 256 * 1024

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.taken = False

    def new_file(self, field_name, file_name, content_type, content_length, charset=None,
                 content_type_extra=None):
        super().new_file(field_name, file_name, content_type, content_length, charset, content_type_extra)
        self.buffer = None
        user = getattr(self.request, "user", None)
        if (getattr(self, "taken", False) or user is None or not user.is_authenticated
                or not user.is_sender or not user.is_org_admin):
            return  # not ours: the next handler decides
        try:
            field, self.limit = TAKES[resolve(self.request.path_info).view_name]
        except (Resolver404, KeyError):
            return
        if field_name != field:
            return
        self.buffer = bytearray()
        self.taken = True  # one list per request
        raise StopFutureHandlers

    def receive_data_chunk(self, raw_data, start):
        if self.buffer is None:
            return raw_data
        if len(self.buffer) <= self.limit:
            self.buffer += raw_data[: self.limit + 1 - len(self.buffer)]  # one byte over says "too large"
        return None

    def file_complete(self, file_size):
        if self.buffer is None:
            return None
        data = bytes(self.buffer)
        self.buffer = None
        return InMemoryUploadedFile(io.BytesIO(data), self.field_name, self.file_name, self.content_type,
                                    len(data), self.charset, self.content_type_extra)
