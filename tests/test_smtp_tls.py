"""Notifications through an SMTP relay that demands STARTTLS and a login, as real relays do."""

from __future__ import annotations

import email
import email.policy
import ssl

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from hushpost.lib.email_url import parse_email_url
from hushpost.notifications.models import Notification
from hushpost.notifications.relay import relay as connection
from tests.helpers import MESSAGE_SUBJECT, self_signed, send
from tests.settings import _free_port


class Relay:
    def __init__(self):
        self.received = []

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.received.append((msg, session.ssl is not None, session.authenticated))
        return "250 OK"


@pytest.fixture
def relay(tmp_path, monkeypatch):
    cert_file, key_file = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    handler = Relay()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"hushpost" and auth_data.password == b"relay-secret"
        return AuthResult(success=ok, handled=False)

    port = _free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, server_hostname="localhost",
        tls_context=context, require_starttls=True, authenticator=authenticator,
        auth_required=True, auth_require_tls=True, auth_exclude_mechanism=["LOGIN"],
    )
    controller.start()
    # Hushpost trusts the relay's certificate the way an operator would: through the system store.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    connection.close()
    yield handler, port
    connection.close()
    controller.stop()


def _use(settings, url):
    config = parse_email_url(url)
    settings.EMAIL_HOST, settings.EMAIL_PORT = config.host, config.port
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = config.username, config.password
    settings.EMAIL_USE_TLS, settings.EMAIL_USE_SSL = config.use_tls, config.use_ssl


def test_starttls_and_login(sender_client, deliver, settings, relay):
    handler, port = relay
    _use(settings, f"smtp://hushpost:relay-secret@localhost:{port}?starttls=1")
    send(sender_client, to="bob@client.example")
    deliver()
    subjects = sorted(str(m["Subject"]) for m, _, _ in handler.received)
    assert MESSAGE_SUBJECT in subjects and len(subjects) == 2
    assert all(tls and authenticated for _, tls, authenticated in handler.received)
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}


def test_wrong_relay_password_is_shown_to_the_sender(sender_client, deliver, settings, relay):
    handler, port = relay
    _use(settings, f"smtp://hushpost:wrong@localhost:{port}?starttls=1")
    settings.NOTIFY_RETRY_SCHEDULE = []
    send(sender_client, to="bob@client.example")
    deliver()
    assert handler.received == []
    failed = Notification.objects.filter(status="failed")
    assert failed.count() == 2
    assert all(n.last_error.startswith("535") for n in failed)
    page = sender_client.get(f"/app/m/{failed.first().delivery.message.uid}").content.decode()
    assert "Failed" in page and "535" in page
