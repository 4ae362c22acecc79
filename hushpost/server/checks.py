"""Hushpost's own system checks (``hushpost check --deploy``)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.module_loading import import_string


@register("security", deploy=True)
def csrf_protection(app_configs, **kwargs):
    """Django's own check looks for its middleware by name; Hushpost's extends it, so ask the classes."""
    if any(issubclass(import_string(path), CsrfViewMiddleware) for path in settings.MIDDLEWARE
           if isinstance(import_string(path), type)):
        return []
    return [Error("No CSRF protection: MIDDLEWARE has no CsrfViewMiddleware (Hushpost's is "
                  "hushpost.lib.csrf.HushpostCsrfMiddleware).", id="hushpost.E001")]
