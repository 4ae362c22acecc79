from __future__ import annotations

import json
import time

from django.http import HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from hushpost.orgs.models import Domain
from hushpost.regions.discovery import SIGNATURE, sign, verify


@csrf_exempt  # a signed server-to-server call, not a browser form
@require_POST
def domain_lookup(request):
    """Does this deployment host the mail domain another region asks about?"""
    question = verify(request.body, request.headers.get(SIGNATURE, ""))
    if question is None or not isinstance(question.get("domain"), str):
        return HttpResponseForbidden("unsigned or stale")
    domain = question["domain"].strip().lower()
    hosted = Domain.objects.filter(name=domain, org__is_active=True).exists()
    body = json.dumps({"domain": domain, "hosted": hosted, "ts": time.time()}).encode()
    response = HttpResponse(body, content_type="application/json")
    response[SIGNATURE] = sign(body)
    return response
