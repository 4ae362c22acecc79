"""Configuration: the e-mail URL and its TLS options, and the deployment checks."""

from __future__ import annotations

import pytest

from hushpost.lib.email_url import MAILBOX_BACKEND, SMTP_BACKEND, parse_email_url
from hushpost.lib.env import ConfigError
from hushpost.server.checks import csrf_protection


def test_mailbox():
    assert parse_email_url("mailbox:").backend == MAILBOX_BACKEND


def test_plain_smtp_with_credentials():
    c = parse_email_url("smtp://relay%40corp:p%40ss@mail.example:2525")
    assert (c.backend, c.host, c.port, c.username, c.password) == (
        SMTP_BACKEND, "mail.example", 2525, "relay@corp", "p@ss")
    assert not c.use_tls and not c.use_ssl


def test_submission_port_uses_starttls_by_default():
    assert parse_email_url("smtp://mail.example:587").use_tls
    assert not parse_email_url("smtp://mail.example:587?starttls=0").use_tls
    assert parse_email_url("smtp://mail.example:25?starttls=1").use_tls


def test_implicit_tls():
    c = parse_email_url("smtps://mail.example")
    assert c.use_ssl and c.port == 465 and not c.use_tls


@pytest.mark.parametrize("url", ["http://x", "smtp://", "smtps://h?starttls=1", "smtp://h?timeout=x"])
def test_bad_urls_say_what_is_wrong(url):
    with pytest.raises(ConfigError, match="HUSHPOST_EMAIL_URL"):
        parse_email_url(url)


def test_the_deploy_check_notices_csrf_protection_gone(settings):
    assert csrf_protection(None) == []
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.endswith("CsrfMiddleware")]
    assert [e.id for e in csrf_protection(None)] == ["hushpost.E001"]
