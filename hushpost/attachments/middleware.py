"""Uploads that never finished leave nothing behind.

Django stops parsing a multipart body on a broken connection or a malformed
part without telling the upload handler; this ends any file still open once
the response is ready, so the store discards it at once.
"""

from __future__ import annotations


class AbortUnfinishedUploads:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            return self.get_response(request)
        finally:
            for receiver in getattr(request, "open_uploads", ()):
                receiver.abort()
