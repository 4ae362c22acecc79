"""The one file the admin area takes: a CSV list of senders, read into memory (it is small).

It comes before the attachments' encrypting handler (settings.FILE_UPLOAD_HANDLERS)
and takes only the import form's first ``senders_csv`` part, from a signed-in
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

FIELD = "senders_csv"
FORM = "orgadmin:sender-import"


class SenderListUploadHandler(FileUploadHandler):
    # Chunks as large as the encrypting handler's: Django reads with the smallest of them.
    chunk_size = 256 * 1024

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.taken = False

    def new_file(self, field_name, file_name, content_type, content_length, charset=None,
                 content_type_extra=None):
        super().new_file(field_name, file_name, content_type, content_length, charset, content_type_extra)
        self.buffer = None
        user = getattr(self.request, "user", None)
        if (field_name != FIELD or getattr(self, "taken", False) or user is None or not user.is_authenticated
                or not user.is_sender or not user.is_org_admin):
            return  # not ours: the next handler decides
        try:
            if resolve(self.request.path_info).view_name != FORM:
                return
        except Resolver404:
            return
        self.buffer = bytearray()
        self.taken = True  # one list per request
        raise StopFutureHandlers

    def receive_data_chunk(self, raw_data, start):
        if self.buffer is None:
            return raw_data
        if len(self.buffer) <= MAX_BYTES:
            self.buffer += raw_data[: MAX_BYTES + 1 - len(self.buffer)]  # one byte over says "too large"
        return None

    def file_complete(self, file_size):
        if self.buffer is None:
            return None
        data = bytes(self.buffer)
        self.buffer = None
        return InMemoryUploadedFile(io.BytesIO(data), self.field_name, self.file_name, self.content_type,
                                    len(data), self.charset, self.content_type_extra)
