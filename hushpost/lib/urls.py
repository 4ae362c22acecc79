"""Checking user-supplied ``next`` targets: same site, expected prefix, nothing else."""

from __future__ import annotations

from django.utils.http import url_has_allowed_host_and_scheme

from hushpost.lib.input import CONTROL


def safe_next(request, value: str | None, *, prefix: str, default: str) -> str:
    if not value:
        return default
    if not url_has_allowed_host_and_scheme(value, allowed_hosts=set(), require_https=False):
        return default
    if not value.startswith(prefix) or "\\" in value or value.startswith("//") or CONTROL.search(value):
        return default
    return value
