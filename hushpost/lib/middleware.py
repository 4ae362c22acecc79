from __future__ import annotations

import functools

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
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


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, its header built once per process for the responses that
    use the settings' policy as it is (every page but the few that change it with
    ``@csp_update``/``@csp_replace`` or ask for a nonce): django-csp builds the string
    again for each response, about as much CPU as a page's session look-up's Python side.

    A response that changes the policy, or a request that took a nonce, goes through
    django-csp's own code; changing the settings (tests do) starts the cache again."""

    _TWEAKS = ("_csp_config", "_csp_update", "_csp_replace",
               "_csp_config_ro", "_csp_update_ro", "_csp_replace_ro")

    def process_response(self, request, response):
        if (getattr(request, "_csp_nonce", None) is not None
                or any(getattr(response, name, None) is not None for name in self._TWEAKS)
                or (settings.DEBUG and response.status_code in (500, 404))):
            return super().process_response(request, response)
        policy, report_only, excluded = _policies()
        if (policy and HEADER not in response and not getattr(response, "_csp_exempt", False)
                and not request.path_info.startswith(excluded[0])):
            response[HEADER] = policy
        if (report_only and HEADER_REPORT_ONLY not in response
                and not getattr(response, "_csp_exempt_ro", False)
                and not request.path_info.startswith(excluded[1])):
            response[HEADER_REPORT_ONLY] = report_only
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response


@functools.cache
def _policies() -> tuple[str, str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """The settings' policy and report-only policy as headers, and the paths each skips."""
    excluded = tuple(
        tuple((getattr(settings, name, None) or {}).get("EXCLUDE_URL_PREFIXES") or ())
        for name in ("CONTENT_SECURITY_POLICY", "CONTENT_SECURITY_POLICY_REPORT_ONLY"))
    return build_policy(), build_policy(report_only=True), excluded


@receiver(setting_changed)
def _settings_changed(*, setting, **kwargs):
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _policies.cache_clear()
