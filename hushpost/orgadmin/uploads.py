"""The one file the admin area takes: a CSV list of senders, read into memory (it is small).

It comes before the attachments' encrypting handler (settings.FILE_UPLOAD_HANDLERS)
and takes only the import form's ``senders_csv`` field, from a signed-in sender
(the view itself then requires an organisation admin); every other file part
passes on to the next handler. A file over the limit is cut off, and the view
says it is too large.
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
    def new_file(self, field_name, file_name, content_type, content_length, charset=None,
                 content_type_extra=None):
        super().new_file(field_name, file_name, content_type, content_length, charset, content_type_extra)
        self.buffer = None
        user = getattr(self.request, "user", None)
        if field_name != FIELD or user is None or not user.is_authenticated or not user.is_sender:
            return  # not ours: the next handler decides
        try:
            if resolve(self.request.path_info).view_name != FORM:
                return
        except Resolver404:
            return
        self.buffer = bytearray()
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
