"""The public branding files: an organisation's logo and its accent stylesheet.

Both addresses change with their content (the logo's SHA-256, the colour itself), so both are
cached for a year and never go stale. Nothing here is confidential: it is what the organisation
shows on its portal and in its e-mails.
"""

from __future__ import annotations

import re

from django.http import Http404, HttpResponse
from django.views.decorators.http import require_safe

from hushpost.orgs.branding import accent_css, logo_for

DIGEST = re.compile(r"[0-9a-f]{64}")
COLOUR = re.compile(r"[0-9a-f]{6}")
FOR_A_YEAR = "public, max-age=31536000, immutable"


def _cached(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = FOR_A_YEAR
    response["X-Content-Type-Options"] = "nosniff"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"  # mail clients show the logo from anywhere
    return response


@require_safe
def logo(request, org_slug, digest):
    found = logo_for(org_slug, digest) if DIGEST.fullmatch(digest) else None
    if found is None:
        raise Http404
    content_type, data = found
    response = _cached(HttpResponse(data, content_type=content_type))
    response["Content-Disposition"] = "inline"
    return response


@require_safe
def accent(request, colour):
    if not COLOUR.fullmatch(colour):
        raise Http404
    return _cached(HttpResponse(accent_css("#" + colour), content_type="text/css; charset=utf-8"))
