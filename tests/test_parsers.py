"""Property-based tests for the parsers Hushpost owns: filenames, and the gateway's options."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from hushpost.attachments.names import MAX_LENGTH, RESERVED, safe_content_type, safe_filename
from hushpost.attachments.views import disposition
from hushpost.gateway.options import clean_subject, read_options
from hushpost.gateway.replies import SmtpRefused
from hushpost.messaging.models import Restriction
from hushpost.orgs.models import Organization

PROPERTY = hsettings(database=None, deadline=None, max_examples=300,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
NAMES = st.text(st.characters(codec="utf-8"), max_size=400) | st.sampled_from(
    ["../../etc/passwd", "C:\\x\\CON.txt", "a\u202egpj.exe", " . ", "COM1", "lpt9.tar.gz", "%2e%2e%2f"])


@PROPERTY
@given(NAMES)
def test_a_safe_filename_is_always_harmless(raw):
    name = safe_filename(raw)
    assert name and len(name) <= MAX_LENGTH
    assert "/" not in name and "\\" not in name
    assert not any(unicodedata.category(c) in {"Cc", "Cf", "Cs", "Co", "Cn"} for c in name)
    assert not name.startswith((".", " ")) and not name.endswith((".", " "))
    assert name.split(".")[0].strip().upper() not in RESERVED
    assert safe_filename(name) == name  # cleaning twice changes nothing


@PROPERTY
@given(NAMES)
def test_the_download_header_is_one_clean_line(raw):
    header = disposition(safe_filename(raw))
    assert header.startswith('attachment; filename="')
    assert header.isascii() and "\r" not in header and "\n" not in header
    fallback = header.split('filename="', 1)[1].split('"', 1)[0]
    assert "%" not in fallback and "\\" not in fallback


@PROPERTY
@given(st.text(max_size=200))
def test_a_content_type_is_a_token_or_octet_stream(raw):
    value = safe_content_type(raw)
    assert value == "application/octet-stream" or (value.count("/") == 1 and value.isascii()
                                                   and not any(c in value for c in " ;\r\n\"'<>"))


HEADER_ITEMS = st.sampled_from(["read-receipt", "no-read-receipt", "restrict=no-print", "restrict=none",
                                "restrict=no-print,no-reply", "expire=7d", "expire=never", "expire=30",
                                "receipt=no", "bogus", "restrict=loud", "expire=soon", ""])


@pytest.fixture
def org(db):
    return Organization.objects.create(name="Parsers", slug="parsers", sender_name="Parsers")


@PROPERTY
@given(subject=st.text(max_size=300), items=st.lists(HEADER_ITEMS, max_size=5))
def test_options_are_read_or_refused_never_half_applied(org, subject, items):
    header = "; ".join(items)
    try:
        cleaned, options = read_options(subject, header, org)
    except SmtpRefused as refusal:
        assert 500 <= refusal.reply.code < 600 and refusal.reply.text  # a reason a person can read
        return
    assert cleaned == clean_subject(cleaned) and 0 < len(cleaned) <= 200
    assert options.restriction in Restriction.values
    assert options.expire_days in org.expiry_choices
