from __future__ import annotations

from django import template
from django.utils.safestring import mark_safe

from hushpost.lib.sanitize import sanitize_html

register = template.Library()


@register.filter
def join_addresses(value) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(value)
    return value or ""


@register.filter
def safe_body(value: str) -> str:
    """A stored body: sanitised when sent, sanitised again here in case the
    allow-list has since been tightened."""
    return mark_safe(sanitize_html(value or ""))  # noqa: S308 - output of the allow-list sanitiser


@register.filter
def editable_body(value: str, fmt: str) -> str:
    """What goes back into the editor after a validation error."""
    if fmt == "html":
        return sanitize_html(value or "")
    return value or ""
