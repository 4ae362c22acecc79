"""Validation of what senders and recipients type, with errors a person can act on."""

from __future__ import annotations

import re
from email.utils import parseaddr

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from hushpost.lib.input import plain_text
from hushpost.lib.refusals import Refused
from hushpost.lib.sanitize import html_to_text, sanitize_html, text_to_html
from hushpost.messaging.actions import (
    EXPIRY_CHOICES,
    Addressees,
    SendOptions,
    check_expiry,
    expiry_choices_text,
)
from hushpost.messaging.models import Restriction

TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def parse_addresses(value: str, *, label: str) -> list[str]:
    """Addresses separated by commas, semicolons or spaces; ``Name <addr>`` as
    pasted from a mail client keeps just the address."""
    value = value.replace("\r", " ").replace("\n", " ")
    found: list[str] = []
    bad: list[str] = []
    for chunk in re.split(r"[,;]", value):
        chunk = chunk.strip()
        if not chunk:
            continue
        if "<" in chunk or ">" in chunk:
            candidates = [parseaddr(chunk)[1] or chunk]
        else:
            candidates = chunk.split()
        for candidate in candidates:
            address = candidate.strip().lower()
            try:
                validate_email(address)
            except ValidationError:
                bad.append(candidate)
                continue
            if address not in found:
                found.append(address)
    if bad:
        raise ValidationError(
            f"{label}: not a valid e-mail address: {', '.join(bad[:5])}", code="invalid"
        )
    return found


class BodyField(forms.CharField):
    """A formatted body: HTML from the editor, or plain text without script."""

    def __init__(self, **kwargs):
        super().__init__(strip=False, **kwargs)
        plain_text(self)

    def clean_body(self, value: str, fmt: str) -> str:
        if len(value.encode()) > settings.MAX_BODY_BYTES:
            limit = settings.MAX_BODY_BYTES
            size = f"{limit // 1_000_000} MB" if limit >= 1_000_000 else f"{limit // 1000} KB"
            raise ValidationError(f"The message is too long: the limit is {size}.")
        body = sanitize_html(value) if fmt == "html" else text_to_html(value)
        if not html_to_text(body).strip():
            raise ValidationError("Write a message before sending.")
        return body


def _clean_token(value: str) -> str:
    if not TOKEN.match(value or ""):
        raise ValidationError("This form has expired. Reload the page and try again.")
    return value


class _FormattedBody:
    """The body is cleaned with the form: how to read it depends on body_format."""

    def clean(self):
        data = super().clean()
        if "body" in data:
            try:
                data["body"] = self.fields["body"].clean_body(
                    data["body"], data.get("body_format") or "text"
                )
            except ValidationError as e:
                self.add_error("body", e)
        return data


def preselected(org) -> tuple[bool, str, int]:
    """The options Compose preselects for ``org``'s senders: read receipt, restriction, expiry."""
    allowed = org.expiry_choices
    expire_days = org.default_expire_days if org.default_expire_days in allowed else allowed[0]
    restriction = org.default_restriction if org.default_restriction in Restriction.values else Restriction.NONE
    return bool(org.default_read_receipt), restriction, int(expire_days)


class ComposeForm(_FormattedBody, forms.Form):
    # Line breaks in the address fields are separators; the subject refuses them itself, saying so.
    to = plain_text(forms.CharField(label="To", max_length=10_000))
    cc = plain_text(forms.CharField(label="Cc", max_length=10_000, required=False))
    subject = plain_text(forms.CharField(label="Subject", max_length=200))
    body = BodyField(label="Message", required=False)
    body_format = forms.ChoiceField(choices=[("text", "text"), ("html", "html")], required=False)
    read_receipt = forms.BooleanField(label="Request Read Receipt", required=False)
    restriction = forms.ChoiceField(
        label="Restriction", choices=Restriction.choices, initial=Restriction.NONE, required=False
    )
    expire_days = forms.TypedChoiceField(
        label="Expire Message in",
        choices=[(str(d), "Never" if d == 0 else f"{d} Day" + ("s" if d > 1 else "")) for d in EXPIRY_CHOICES],
        coerce=int,
        initial="0",
        required=False,
        empty_value=0,
        error_messages={"invalid_choice": "Your organisation does not allow that expiry."},
    )
    send_token = forms.CharField(widget=forms.HiddenInput)
    in_reply_to = forms.CharField(widget=forms.HiddenInput, required=False, max_length=32)

    def __init__(self, *args, org=None, **kwargs):
        """``org``'s policy decides the expiry choices and the options preselected."""
        super().__init__(*args, **kwargs)
        self.org = org
        if org is None:
            return
        allowed = org.expiry_choices
        self.fields["expire_days"].choices = [
            (str(d), label) for d, label in ((int(v), lab) for v, lab in self.fields["expire_days"].choices)
            if d in allowed
        ]
        self.fields["expire_days"].error_messages["invalid_choice"] = (
            f"Your organisation does not allow that expiry: choose {expiry_choices_text(org)}.")
        read_receipt, restriction, expire_days = preselected(org)
        self.fields["expire_days"].initial = str(expire_days)
        self.fields["read_receipt"].initial = read_receipt
        self.fields["restriction"].initial = restriction

    def clean_to(self):
        addresses = parse_addresses(self.cleaned_data["to"], label="To")
        if not addresses:
            raise ValidationError("Add at least one recipient.")
        return addresses

    def clean_cc(self):
        return parse_addresses(self.cleaned_data.get("cc", ""), label="Cc")

    def clean_subject(self):
        subject = self.cleaned_data["subject"]
        if "\r" in subject or "\n" in subject:
            raise ValidationError("The subject cannot contain line breaks.")
        subject = " ".join(subject.split())
        if not subject:
            raise ValidationError("Add a subject.")
        return subject

    def clean_send_token(self):
        return _clean_token(self.cleaned_data["send_token"])

    def clean_expire_days(self):
        # An empty or missing value is "never", which the policy may not allow either.
        days = self.cleaned_data.get("expire_days") or 0
        if self.org is not None:
            try:
                check_expiry(self.org, days)  # the action checks again: the rule lives there
            except Refused as e:
                raise ValidationError(str(e)) from None
        return days

    def clean(self):
        data = super().clean()
        to, cc = data.get("to") or [], data.get("cc") or []
        if len(set(to) | set(cc)) > settings.MAX_RECIPIENTS:
            self.add_error("to", f"Send to at most {settings.MAX_RECIPIENTS} recipients at once.")
        data["restriction"] = data.get("restriction") or Restriction.NONE
        return data

    def addressees(self) -> Addressees:
        to = self.cleaned_data["to"]
        return Addressees(to=to, cc=[a for a in self.cleaned_data["cc"] if a not in to])

    def options(self) -> SendOptions:
        return SendOptions(
            read_receipt=self.cleaned_data["read_receipt"],
            restriction=self.cleaned_data["restriction"],
            expire_days=self.cleaned_data["expire_days"] or 0,
        )


class ReplyForm(_FormattedBody, forms.Form):
    body = BodyField(label="Your reply", required=False)
    body_format = forms.ChoiceField(choices=[("text", "text"), ("html", "html")], required=False)
    send_token = forms.CharField(widget=forms.HiddenInput)
    reply_all = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def clean_send_token(self):
        return _clean_token(self.cleaned_data["send_token"])
