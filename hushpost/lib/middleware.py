from __future__ import annotations

from django.utils.cache import add_never_cache_headers


class PrivacyHeadersMiddleware:
    """Pages of a signed-in user never land in a shared or disk cache.

    Static files and the organisations' public branding files (``/brand/``, addressed by content)
    say how long they may be cached themselves."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not (request.path.startswith("/static/") or (request.path.startswith("/brand/") and response.status_code == 200)):
            add_never_cache_headers(response)
            response["Cache-Control"] = "no-store, no-cache, must-revalidate, private, max-age=0"
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        return response
