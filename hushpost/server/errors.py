"""What a person is told when serving their request failed: only what is true.

Any failure (Django's ``handler500``) gets the 500 page, which cannot know
whether a message was stored before the failure, so it says where to look.
A full disk or database gets its own answer: trying again cannot help, so the
page says storage is full, and the failure is put where people will see it:
one ERROR line an operator can alert on, and an event in the organisation's
audit trail for its administrator. Neither holds content or secrets: the view's
name, what ran out, and who (as every audit event does).
"""

from __future__ import annotations

import logging
import sys

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.lib.diskfull import INSUFFICIENT_STORAGE, storage_full

log = logging.getLogger("hushpost.storage")

FAILED = ("Something went wrong on our side. If you were sending a message, look in Sent before sending it "
          "again: it may have gone. Otherwise, try again in a moment.")
FULL = ("Hushpost has run out of storage space and could not save your last action. If you were sending a "
        "message, look in Sent: if it is not there, it was not sent. Sending again will not work until "
        "space is freed.")
FILE_FULL = ("Hushpost has run out of storage space, so this file was not stored. Attaching it again will not "
             "work until space is freed.")
TOLD = "This has been recorded for your organisation's administrator."
NOT_TOLD = "Please tell your organisation's administrator."


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's ``handler500``, called while the exception is being handled."""
    kind = storage_full(sys.exception())
    if kind:
        told = TOLD if _report(request, kind) else NOT_TOLD
        if _wants_json(request):  # the upload script shows "error" beside the file
            return JsonResponse({"error": f"{FILE_FULL} {told}"}, status=INSUFFICIENT_STORAGE)
        page = render_to_string("storage_full.html", {"reason": FULL, "told": told})
        return HttpResponse(page, status=INSUFFICIENT_STORAGE)
    if _wants_json(request):
        return JsonResponse({"error": FAILED}, status=500)
    return HttpResponse(render_to_string("500.html", {"reason": FAILED}), status=500)


def _report(request: HttpRequest, kind: str) -> bool:
    """Record it for the organisation's administrator and log it, once per request;
    whether the audit event was kept (a full database may refuse it too)."""
    if hasattr(request, "storage_full_recorded"):  # a second failure answering the same request
        return request.storage_full_recorded
    match = getattr(request, "resolver_match", None)
    where = f"{request.method} {match.view_name if match is not None else 'request'}"
    try:
        with transaction.atomic():
            record(AuditEvent.Action.STORAGE_FULL, actor=getattr(request, "user", None), request=request,
                   detail=f"{where} failed: the {kind} is full")
        recorded = True
    except Exception:
        recorded = False
    log.error("storage full: the %s has no space left; %s failed; audit event %s", kind, where,
              "recorded" if recorded else "NOT recorded (the database refused it)")
    request.storage_full_recorded = recorded
    return recorded


def _wants_json(request: HttpRequest) -> bool:
    return request.get_preferred_type(["text/html", "application/json"]) == "application/json"
