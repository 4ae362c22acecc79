"""What typed text Hushpost accepts: printable characters, a sensible length, real dates.

PostgreSQL cannot store or even compare a NUL character (it fails the query
instead), and other control characters are never typed on purpose: they hide
things in an address, a name or a search. So there are two guards:

* ``RefuseUnusableInput`` (middleware) refuses, with a page that says why,
  any request whose address holds a control character, or whose query or form
  fields hold a NUL, unless the view declares that field with
  ``@checks_input(...)``;
* a view that declares its typed fields cleans them with :func:`line`, or a
  form whose fields go through :func:`single_line`, :func:`plain_text` or are a
  :class:`DayField`, and shows its own form again with the problem explained.

Passwords and codes are declared too: they never reach the database, and a
wrong one gets the form's usual answer.
"""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator

from hushpost.lib.views import refused

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # tabs and line breaks allowed
NOT_A_DAY = "Enter a real date, as YYYY-MM-DD (for example 2026-03-31)."
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class InputError(ValueError):
    """What is wrong with a value, in words for the person who typed it."""


def line(value: str, *, label: str, max_length: int = 254) -> str:
    """One line of text as typed, without surrounding spaces; InputError if it cannot be used."""
    if CONTROL.search(value):
        raise InputError(f"{label} contains a control character (such as NUL or a line break), which "
                         "cannot be used. Remove it and try again.")
    value = value.strip()
    if len(value) > max_length:
        raise InputError(f"{label} is too long: use at most {max_length} characters.")
    return value


def usable(value: str, max_length: int = 254) -> bool:
    """Whether :func:`line` would take the value (for answers that have no form to show)."""
    return not CONTROL.search(value) and len(value.strip()) <= max_length


def _refuser(pattern: re.Pattern, example: str):
    def validate(value) -> None:
        if isinstance(value, str) and pattern.search(value):
            raise ValidationError(f"Remove the control character ({example}): it cannot be used here.",
                                  code="control")

    return validate


def _instead_of_nul_check(field: forms.Field, validator) -> forms.Field:
    # Django's own NUL check would say less, and say it twice.
    field.validators = [v for v in field.validators if not isinstance(v, ProhibitNullCharactersValidator)]
    field.validators.append(validator)
    return field


def single_line(field: forms.Field) -> forms.Field:
    """The form field refuses control characters, NUL and line breaks included."""
    return _instead_of_nul_check(field, _refuser(CONTROL, "such as NUL or a line break"))


def plain_text(field: forms.Field) -> forms.Field:
    """The form field refuses control characters but keeps tabs and line breaks."""
    return _instead_of_nul_check(field, _refuser(CONTROL_IN_TEXT, "such as NUL"))


class DayField(forms.DateField):
    """A calendar day typed as YYYY-MM-DD: 2026-02-30 and 99999-01-01 are refused, not a crash."""

    def __init__(self, **kwargs):
        super().__init__(input_formats=["%Y-%m-%d"], error_messages={"invalid": NOT_A_DAY}, **kwargs)


def checks_input(*fields: str):
    """Mark a view as cleaning these query or form fields itself, NUL included (see the module's doc)."""

    def mark(view):
        view.checks_input = frozenset(fields)
        return view

    return mark


def _has_nul(data, allowed: frozenset[str]) -> bool:
    for key, values in data.lists():
        if "\x00" in key or (key not in allowed and any("\x00" in v for v in values)):
            return True
    return False


IN_ADDRESS = ("The address of this page contains a control character (such as NUL), so no page of Hushpost "
              "has it. Check the link, or start again from the home page.")
IN_FIELDS = ("Something you sent contains a NUL character, which cannot be used (it often comes from copying "
             "text out of another program). Nothing was saved. Go back, type the text again and retry.")


class RefuseUnusableInput:
    """The backstop: control characters in the address, or a NUL in an undeclared field, get a 400 page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if CONTROL.search(request.path):
            return _refuse(request, IN_ADDRESS, back="/")
        allowed = getattr(view_func, "checks_input", frozenset())
        if _has_nul(request.GET, allowed):
            return _refuse(request, IN_FIELDS, back=request.path)
        if self._is_form(request, view_func) and _has_nul(request.POST, allowed):
            return _refuse(request, IN_FIELDS, back=request.path)
        return None

    @staticmethod
    def _is_form(request, view_func) -> bool:
        # A signed server-to-server call (CSRF-exempt) reads its raw body, which
        # parsing it as a form here would use up; it checks what it reads itself.
        return (request.method == "POST" and request.content_type in FORM_TYPES
                and not getattr(view_func, "csrf_exempt", False))


def _refuse(request, reason: str, *, back: str):
    return refused(request, reason, 400, heading="This cannot be used", back=back)
