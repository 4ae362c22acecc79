"""The development mailbox keeps what would have been sent and shows it."""

from __future__ import annotations

from tests.helpers import PASSWORD_SUBJECT, send


def test_mailbox_lists_notifications_when_configured(sender_client, deliver, settings):
    settings.EMAIL_BACKEND = "hushpost.notifications.mailbox.MailboxBackend"
    settings.DEV_MAILBOX_ENABLED = True
    send(sender_client, to="bob@client.example", subject="Private subject")
    deliver()
    page = sender_client.get("/dev/mailbox").content.decode()
    assert PASSWORD_SUBJECT in page and "bob@client.example" in page
    from hushpost.notifications.models import DevMail

    mail = DevMail.objects.filter(subject=PASSWORD_SUBJECT).get()
    detail = sender_client.get(f"/dev/mailbox/{mail.pk}").content.decode()
    assert "temporary password" in detail and "Private subject" not in detail
    html = sender_client.get(f"/dev/mailbox/{mail.pk}/html")
    assert "sandbox" in html["Content-Security-Policy"]


def test_mailbox_is_absent_when_not_configured(client, settings):
    settings.DEV_MAILBOX_ENABLED = False
    assert client.get("/dev/mailbox").status_code == 404
