"""The admin area's export of a conversation for e-discovery (:mod:`.ediscovery`)."""

from __future__ import annotations

from django.contrib import messages as flash
from django.http import StreamingHttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from hushpost.lib.refusals import Refused
from hushpost.orgadmin import ediscovery
from hushpost.orgadmin.access import access_message_for_admin
from hushpost.orgadmin.views import confirmed, org_admin_required


@require_POST
@org_admin_required
@confirmed
def message_export(request, uid):
    """A ZIP of the conversation, its audit events and a manifest: a download, never a page,
    and, like every page of a signed-in person, never cached (``lib/middleware.py``)."""
    message = access_message_for_admin(request.user, uid)
    try:
        export = ediscovery.export_conversation(message, by=request.user, request=request)
    except Refused as exc:
        flash.error(request, str(exc))
        return redirect("orgadmin:messages")
    response = StreamingHttpResponse(export.chunks, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
