"""The SCIM 2.0 endpoints (RFC 7644) under /scim/v2/: each request carries an organisation's token.

Views only read HTTP and answer in SCIM's JSON; what a request changes is done
by :mod:`hushpost.scim.actions`, in one transaction (a refused request changes
nothing). There is no session and no cookie: a browser cannot send the token,
so there is nothing for CSRF to borrow.
"""

from __future__ import annotations

import json
from functools import wraps

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from hushpost.lib.client import client_address
from hushpost.lib.input import checks_input
from hushpost.scim import actions, changes, filters, resources, tokens
from hushpost.scim.errors import ScimError, invalid_value, not_found

CONTENT_TYPE = "application/scim+json"
READABLE = {CONTENT_TYPE, "application/json", ""}
DEFAULT_COUNT = 100


def answer(data: dict, status: int = 200, **headers) -> JsonResponse:
    response = JsonResponse(data, status=status, content_type=CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _refusal(error: ScimError) -> JsonResponse:
    headers = {}
    if error.status == 401:
        headers["WWW_Authenticate"] = 'Bearer realm="scim"'
    if error.retry_after:
        headers["Retry_After"] = str(error.retry_after)
    return answer(error.body(), error.status, **headers)


def _token(request):
    scheme, _, raw = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise ScimError(401, "A provisioning token is required: Authorization: Bearer <token>.")
    attempt = tokens.authenticate(raw.strip(), client_address(request))
    if attempt.passed:
        return attempt.value
    if not attempt.checked:
        raise ScimError(429, str(attempt.refusal), retry_after=attempt.refusal.retry_after)
    raise ScimError(401, "This provisioning token is not valid: it was revoked, or never existed.")


def _body(request):
    if request.content_type not in READABLE:
        raise ScimError(415, f"Send {CONTENT_TYPE} (or application/json).", "invalidSyntax")
    try:
        return json.loads(request.body or b"null")
    except ValueError:
        raise ScimError(400, "The request body is not valid JSON.", "invalidSyntax") from None


def scim(*methods: str):
    """A SCIM endpoint: the token checked first, then the method, then the view; refusals in SCIM's form."""

    def decorate(view):
        @csrf_exempt
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            try:
                token = _token(request)
                if request.method not in methods:
                    raise ScimError(405, f"{request.method} is not supported here.")
                return view(request, token, *args, **kwargs)
            except ScimError as error:
                return _refusal(error)

        return wrapper

    return decorate


def _index(request, name: str, default: int) -> int:
    value = request.GET.get(name, "")
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise invalid_value(f"{name} must be a whole number.") from None


# Each answers a NUL in SCIM's words: filters.parse and _index refuse it, the others are not read.
@checks_input("filter", "startIndex", "count", "attributes", "excludedAttributes")
@scim("GET", "POST")
def users(request, token):
    if request.method == "POST":
        sender = actions.provision(token, changes.from_resource(_body(request)), client_address(request))
        resource = resources.user(sender, actions.identity_of(sender))
        return answer(resource, 201, Location=resource["meta"]["location"])
    found = actions.visible_senders(token.org)
    if request.GET.get("filter"):
        found = actions.find(token, filters.parse(request.GET["filter"]))
    start = max(1, _index(request, "startIndex", 1))
    count = min(max(0, _index(request, "count", DEFAULT_COUNT)), resources.MAX_RESULTS)
    page = list(found[start - 1:start - 1 + count]) if count else []
    return answer(resources.list_response([resources.user(s, actions.identity_of(s)) for s in page],
                                          found.count(), start))


@scim("GET", "PUT", "PATCH", "DELETE")
def user(request, token, user_id):
    sender = actions.access_sender(token, user_id)
    client = client_address(request)
    if request.method == "DELETE":
        actions.deprovision(token, sender, client)
        return HttpResponse(status=204)
    if request.method == "PUT":
        sender = actions.update(token, sender, changes.from_resource(_body(request)), client)
    elif request.method == "PATCH":
        sender = actions.update(token, sender, changes.from_patch(_body(request)), client)
    return answer(resources.user(sender, actions.identity_of(sender)))


@scim("GET")
def service_provider_config(request, token):
    return answer(resources.service_provider_config())


@scim("GET")
def resource_types(request, token, name=None):
    found = resources.resource_types()
    if name is None:
        return answer(resources.list_response(found, len(found), 1))
    if name != "User":
        raise not_found()
    return answer(found[0])


@scim("GET")
def schemas(request, token, urn=None):
    schema = resources.user_schema()
    if urn is None:
        return answer(resources.list_response([schema], 1, 1))
    if urn != schema["id"]:
        raise not_found()
    return answer(schema)
