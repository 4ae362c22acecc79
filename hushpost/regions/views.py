from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import HttpResponse, HttpResponseForbidden
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from hushpost.accounts import throttle
from hushpost.lib.client import client_address
from hushpost.lib.input import InputError, checks_input, line, usable
from hushpost.orgs.models import Domain
from hushpost.regions.discovery import SIGNATURE, answer_to, verify
from hushpost.regions.portals import answer_for_region, request_portal_list


def _signed_response(question: dict, **fields) -> HttpResponse:
    body, signature = answer_to(question, **fields)
    response = HttpResponse(body, content_type="application/json")
    response[SIGNATURE] = signature
    return response


@csrf_exempt  # a signed server-to-server call, not a browser form
@require_POST
def domain_lookup(request):
    """Does this deployment host the mail domain another region asks about?"""
    question = verify(request.body, request.headers.get(SIGNATURE, ""), purpose="domain")
    if question is None or not isinstance(question.get("domain"), str):
        return HttpResponseForbidden("unsigned or stale")
    domain = question["domain"]
    hosted = usable(domain) and Domain.objects.filter(name=domain.strip().lower(), org__is_active=True).exists()
    return _signed_response(question, domain=domain, hosted=hosted)


@csrf_exempt  # a signed server-to-server call, not a browser form
@require_POST
def portals_lookup(request):
    """Which of this deployment's organisations have a recipient account for the address?"""
    question = verify(request.body, request.headers.get(SIGNATURE, ""), purpose="portals")
    if question is None or not isinstance(question.get("email"), str):
        return HttpResponseForbidden("unsigned or stale")
    return _signed_response(question, **answer_for_region(question["email"]))


@checks_input("email")
def find_portal(request):
    """A recipient who is lost: we e-mail the address the portals it has accounts with."""
    sent = False
    error = ""
    email = ""
    if request.method == "POST":
        email = request.POST.get("email", "")
        try:
            email = line(email, label="The e-mail address").lower()
            validate_email(email)
        except InputError as problem:
            error = str(problem)
        except ValidationError:
            error = "Enter the e-mail address your secure messages were sent to."
        else:
            if not throttle.lookup_allowed(client_address(request)):
                return render(request, "regions/find_portal.html",
                              {"sent": False, "error": TOO_MANY_LOOKUPS, "email": email}, status=429)
            request_portal_list(email)  # at most one e-mail per address per window
            sent = True
    return render(request, "regions/find_portal.html",
                  {"sent": sent, "error": error, "email": email, "minutes": settings.PORTAL_LIST_MINUTES},
                  status=400 if error else 200)


TOO_MANY_LOOKUPS = "Too many look-ups from your network just now. Try again in a few minutes."
