"""Each request's client address, for the audit events recorded while it is served."""

from __future__ import annotations

from hushpost.audit.actions import current_client
from hushpost.lib.client import client_address


class AuditClientMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = current_client.set(client_address(request))
        try:
            return self.get_response(request)
        finally:
            current_client.reset(token)
