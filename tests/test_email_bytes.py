"""What the relay sends is, byte for byte, the e-mail Django would have written.

The worker writes each e-mail's bytes itself (``Notice.as_bytes``) rather than through
Django's ``message()`` and the standard library's generator; recipients must not see the
difference, whatever the organisation's name, the address, or the text holds.
"""

from __future__ import annotations

import email.generator
import re
import secrets
from email.utils import formataddr, make_msgid

import pytest
from django.core.mail.message import sanitize_address
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from hushpost.notifications.emails import Notice, build_email
from hushpost.notifications.models import Notification
from tests.helpers import send

TEXT = "Hello,\n\nNorthwind Health sent you a secure message.\n\nRead it:\nhttps://example.test/r/x\n"
HTML = "<!doctype html>\n<p>Hello,</p>\n<p>Northwind Health sent you a secure message.</p>\n"


@pytest.fixture
def same_boundary(monkeypatch):
    """Both writers draw their multipart boundary from a random number: the same one here."""
    monkeypatch.setattr(email.generator.random, "randrange", lambda n: 8618851221685968022)
    monkeypatch.setattr(secrets, "randbelow", lambda n: 8618851221685968022)


def notice(sender_name="Northwind Health", sender="no-reply@northwind.example", to="bob@client.example",
           text=TEXT, html=HTML, subject="Secure Messaging Notification", **headers) -> Notice:
    mail = Notice(subject=subject, body=text, from_email=formataddr((sender_name, sender)), to=[to],
                  headers={"Message-ID": make_msgid(domain="northwind.example"), "Auto-Submitted": "auto-generated",
                           "X-Auto-Response-Suppress": "All", **headers})
    mail.attach_alternative(html, "text/html")
    return mail


def assert_written_as_django_would(mail: Notice, *, by_django: bool = False) -> None:
    """``by_django``: a shape the worker leaves to Django to write (else it must not)."""
    djangos = mail.message().as_bytes(linesep="\r\n")
    if not by_django:
        mail.message = None  # as_bytes must write it all itself
    ours = mail.as_bytes()
    date = re.compile(rb"^Date: .*\r\n", re.M)  # each writer reads the clock: only the second may differ
    assert len(date.findall(ours)) == 1
    assert date.sub(b"", ours) == date.sub(b"", djangos)
    envelope_from, [envelope_to] = mail.envelope()
    assert envelope_from == sanitize_address(mail.from_email, "utf-8")
    assert envelope_to == sanitize_address(mail.to[0], "utf-8")


@pytest.mark.parametrize("case", [
    {},
    {"sender_name": "Ærø Health Clinic"},  # encoded words
    {"sender_name": "Dr. O'Brien, \"Family\" Practice"},  # quoted
    {"sender_name": "The Northwind Community Health and Wellbeing Partnership of the Western Isles"},  # folded
    {"to": "bob@bücher.example"},  # an internationalised domain
    {"to": "zoë@client.example"},  # a non-ASCII local part
    {"to": "bob.o-neil+results@mail.client.example"},
    {"text": "Plain ASCII only.\n", "html": "<p>Plain ASCII only.</p>"},  # 7bit parts, no final newline
    {"text": "Lines\r\nending\rthree\nways\n"},
    {"subject": "Secure Messaging Notification – Ærø"},
    {"Message-ID": "<" + "x" * 90 + "@northwind.example>"},  # a header too long for one line
])
def test_the_relay_sends_what_django_would_have_written(same_boundary, case):
    assert_written_as_django_would(notice(**case))


def test_a_line_too_long_for_smtp_is_left_to_django_to_encode(same_boundary):
    mail = notice(html="<p>" + "ü" * 1200 + "</p>\n")
    assert_written_as_django_would(mail, by_django=True)
    assert b"Content-Transfer-Encoding: quoted-printable" in mail.as_bytes()


def test_each_kind_of_notification_is_written_as_django_would(same_boundary, sender_client, org):
    org.name = org.sender_name = "Ærø Health Clinic"
    org.save()
    assert send(sender_client, to="bob@client.example", subject="Scan results").status_code == 302
    for notification in Notification.objects.select_related("org", "user", "delivery__message__author"):
        assert_written_as_django_would(build_email(notification))


# Organisation names, addresses, subjects and texts as people type them: any printable
# text, accents and other scripts included, short or long (every line within SMTP's limit,
# so the worker writes each one itself).
_names = st.text(st.characters(categories=("L", "N", "P", "Zs", "S")), min_size=1, max_size=90).filter(str.strip)
_local = st.from_regex(r"[a-z0-9][a-z0-9.+_-]{0,30}[a-z0-9]", fullmatch=True).filter(lambda s: ".." not in s)
_domain = st.from_regex(r"[a-zà-ÿ0-9]{1,20}(\.[a-z]{2,10}){1,2}", fullmatch=True)
_text = st.text(st.characters(categories=("L", "N", "P", "Zs", "S"), include_characters="\n"), min_size=1,
                max_size=200)


@given(sender_name=_names, local=_local, domain=_domain, subject=_names, text=_text, html=_text)
@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_name_address_and_text_is_written_as_django_would(same_boundary, sender_name, local, domain, subject,
                                                                text, html):
    assert_written_as_django_would(
        notice(sender_name=sender_name, to=f"{local}@{domain}", subject=subject, text=text, html=html))
