"""Uploads that never finished leave nothing behind, nor do those of a form that could not be read.

Django stops parsing a multipart body on a broken connection or a malformed
part without telling the upload handler; this ends any file still open once
the response is ready, so the store discards it at once.  Files stored before
the part that broke the form are not on the form Django hands the view (it
drops them all): nobody can attach them, so they go too.
"""

from __future__ import annotations

from hushpost.attachments.cleanup import discard_draft


class AbortUnfinishedUploads:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            return self.get_response(request)
        finally:
            for receiver in getattr(request, "open_uploads", ()):
                receiver.abort()
            _discard_unread(request)


def _discard_unread(request) -> None:
    stored = getattr(request, "stored_uploads", ())
    if not stored:  # then the body was never parsed here, and request.FILES must not parse it now
        return
    kept = {f.attachment.uid for f in request.FILES.getlist("files") if hasattr(f, "attachment")}
    for attachment in stored:
        if attachment.uid not in kept:
            discard_draft(attachment.owner, attachment.uid)
