"""The HTTP side of files, shared by the sender and recipient portals.

Each portal's own view loads the message through its access gate first, then
calls one of these; nothing here decides who may see what.
"""

from __future__ import annotations

import logging
from urllib.parse import quote, unquote

from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.template.defaultfilters import filesizeformat

from hushpost.attachments import actions, cleanup
from hushpost.attachments.names import name_problem
from hushpost.attachments.uploads import upload_errors
from hushpost.lib.diskfull import storage_full

log = logging.getLogger(__name__)

READ_BYTES = 256 * 1024


def upload(request):
    """``POST`` the raw file as the body (``X-File-Name``: its URL-encoded name).

    The CSRF token travels in a header, so it is checked before a byte of the
    body is read; an over-limit ``Content-Length`` is refused unread.
    """
    user = request.user
    name = unquote(request.headers.get("X-File-Name", ""))
    if problem := name_problem(name):  # before anything else is said about the file, or read
        return JsonResponse({"error": problem}, status=400)
    try:
        length = int(request.headers["Content-Length"])
    except (KeyError, ValueError):
        return JsonResponse({"error": "Send the file with its length (Content-Length)."}, status=411)
    limit = actions.file_limit(user)
    if length > limit:
        return JsonResponse({"error": f"{name or 'This file'} is larger than {limit // actions.MB} MB, "
                                      "the largest file your organisation allows."}, status=413)
    chunks = _body(request)
    try:
        attachment = actions.receive(user, name, request.content_type, chunks, expected_size=length)
    except actions.FileRefused as exc:
        return JsonResponse({"error": str(exc)}, status=exc.status)
    except Exception as exc:  # the store refused or is down: nothing was kept
        if storage_full(exc):
            raise  # not a moment's trouble: answered as such by hushpost.server.errors
        log.warning("an upload could not be stored", exc_info=True)
        return JsonResponse({"error": "The file could not be stored just now. Try again in a moment."},
                            status=503)
    info = actions.describe(attachment)
    return JsonResponse({"uid": info.uid, "name": info.name, "size": info.size,
                         "size_label": filesizeformat(info.size)}, status=201)


def _body(request):
    while True:
        try:
            chunk = request.read(READ_BYTES)
        except Exception:  # the client went away: what arrived is short, and refused as such
            return
        if not chunk:
            return
        yield chunk


def form_files(request) -> tuple[list[str], list[str]]:
    """The drafts a Compose or Reply form carries: uploaded by script (``attachment``
    fields) or with the form itself (``files``); and any upload refused on the way."""
    uids = request.POST.getlist("attachment")[: actions.MAX_FILES + 1]
    uids += [f.attachment.uid for f in request.FILES.getlist("files") if hasattr(f, "attachment")]
    return list(dict.fromkeys(uids)), upload_errors(request)


def form_context(user, uids: list[str]) -> dict:
    """What the attachments part of a form shows: the drafts so far and the limits."""
    org = user.org
    return {"drafts": actions.draft_infos(user, uids), "max_file_mb": org.max_file_mb,
            "max_message_mb": org.max_message_mb}


def discard(request, uid: str):
    found = cleanup.discard_draft(request.user, uid)
    return JsonResponse({"discarded": found}, status=200 if found else 404)


def download(request, message, uid: str):
    """A file of a message the caller's gate has already let them see; always a download, always audited."""
    opened = actions.open_file(message, uid, by=request.user)
    if opened is None:
        raise Http404
    info, chunks = opened
    response = StreamingHttpResponse(chunks, content_type="application/octet-stream")
    response["Content-Length"] = str(info.size)
    response["Content-Disposition"] = disposition(info.name)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def disposition(name: str) -> str:
    """RFC 6266: an ASCII fallback (no quotes, backslashes or percent signs, which
    some browsers decode) and the exact name in ``filename*``."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\%' else "_" for c in name)
    if fallback == name:
        return f'attachment; filename="{name}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
