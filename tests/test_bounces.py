"""Bounces: an e-mail the relay accepted and the recipient's mail server then returned.

Each notification goes out with an envelope sender of its own, the bounce address tagged with the
notification's key and a keyed hash of it. The recipient's mail server sends its delivery report
there, through the real gateway over SMTP, and the sender sees "Bounced" with the reason, gets a
Delivery Failure e-mail, and can send the message to a corrected address.
"""

from __future__ import annotations

import logging
import re

import pytest

from hushpost.audit.models import AuditEvent
from hushpost.messaging.models import Delivery, Message
from hushpost.notifications import bounces
from hushpost.notifications.models import Notification
from tests.gateway_mail import delivery_report, headers_of, mail, send_report, submit
from tests.helpers import MESSAGE_SUBJECT, PASSWORD_SUBJECT, run_cli, send
from tests.personas import ALICE, BOB, CAROL

pytestmark = pytest.mark.django_db(transaction=True)

BOUNCES = "bounces@bounce.northwind.example"
FAILURE_SUBJECT = "Secure Messaging Delivery Failure"
TAGGED = re.compile(r"bounces\+[a-z2-7]{42}@bounce\.northwind\.example")
ROW = r'<tr data-recipient="{}">(.*?)</tr>'
STATE = re.compile(r'<td class="notified">\s*<span class="state \w+">([^<]+)</span>')
LIST_STATE = re.compile(r'<span class="visually-hidden">Delivery: </span>([^<]+)</span>')


@pytest.fixture
def bounce_address(settings):
    settings.BOUNCE_ADDRESS = BOUNCES
    return BOUNCES


def sent_to(smtp, deliver, sender_client, to=BOB, subject="Lab results"):
    """Alice sends; the worker delivers; the Secure Messaging Notification as the relay got it."""
    send(sender_client, to=to, subject=subject)
    deliver()
    return smtp.wait_for(to, MESSAGE_SUBJECT)[-1]


def report_for(received, **options) -> bytes:
    return delivery_report(received.mail_from, received.to, headers_of(received.message, received.mail_from),
                           **options)


def row(client, address: str) -> tuple[str, str]:
    """The message page's state for one recipient, and that row's whole text."""
    page = client.get(f"/app/m/{Message.objects.get().uid}").content.decode()
    found = re.search(ROW.format(re.escape(address)), page, re.S).group(1)
    return STATE.search(found).group(1), re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found))


def listed(client) -> str:
    return LIST_STATE.search(client.get("/app/sent").content.decode()).group(1)


# The envelope sender ---------------------------------------------------------------------

def test_each_e_mail_goes_out_from_a_bounce_address_of_its_own(bounce_address, smtp, deliver, sender_client):
    send(sender_client, to=f"{BOB}, {CAROL}", subject="Lab results")
    deliver()
    to_bob = smtp.wait_for(BOB, MESSAGE_SUBJECT)[0]
    to_carol = smtp.wait_for(CAROL, MESSAGE_SUBJECT)[0]
    [password] = smtp.wait_for(BOB, PASSWORD_SUBJECT)
    assert TAGGED.fullmatch(to_bob.mail_from) and TAGGED.fullmatch(to_carol.mail_from)
    assert len({to_bob.mail_from, to_carol.mail_from, password.mail_from}) == 3
    # What the recipient reads still comes from the organisation.
    assert str(to_bob.message["From"]) == "Northwind Health <no-reply@hushpost.localhost>"


def test_without_a_bounce_address_the_envelope_sender_is_the_from_address(smtp, deliver, sender_client):
    received = sent_to(smtp, deliver, sender_client)
    assert not TAGGED.fullmatch(received.mail_from)
    assert received.mail_from == "no-reply@hushpost.localhost"


# A delivery report -----------------------------------------------------------------------

def test_a_permanent_failure_shows_as_bounced_with_the_reason_and_tells_the_sender(
        bounce_address, make_gateway, smtp, deliver, sender_client, caplog):
    gateway = make_gateway()
    received = sent_to(smtp, deliver, sender_client)
    caplog.set_level(logging.INFO, logger="hushpost")

    replies = send_report(gateway.port, report_for(received), received.mail_from)
    assert replies == [(250, "2.1.0 sender OK"), (250, "2.1.5 recipient OK"), (250, "2.0.0 delivery report received")]

    state, text = row(sender_client, BOB)
    assert state == "Bounced"
    assert "5.1.1" in text and "User unknown in virtual mailbox table" in text
    assert listed(sender_client) == "Bounced"
    # No address or content of the report in the log.
    assert "client.example" not in caplog.text and "Recipient address rejected" not in caplog.text

    deliver()
    [failure] = smtp.wait_for(ALICE, FAILURE_SUBJECT)
    assert BOB in failure.text and "5.1.1: the address does not exist" in failure.text
    # The report's own words are whatever its sender wrote: the signed-in page shows them, the
    # e-mail, signed for the organisation's domain, does not.
    assert "User unknown" not in failure.text + failure.html
    assert failure.link().endswith(f"/app/m/{Message.objects.get().uid}")
    assert "Lab results" not in failure.text + failure.html + failure.subject
    [event] = AuditEvent.objects.filter(action=AuditEvent.Action.BOUNCE)
    assert event.detail == "message e-mail bounced: 5.1.1"

    # The same report again (a mail server's retry): still one e-mail to the sender.
    assert send_report(gateway.port, report_for(received), received.mail_from)[-1][0] == 250
    deliver()
    assert len(smtp.to(ALICE, FAILURE_SUBJECT)) == 1


def test_a_delay_is_a_note_and_not_a_bounce(bounce_address, make_gateway, smtp, deliver, sender_client):
    gateway = make_gateway()
    received = sent_to(smtp, deliver, sender_client)
    report = report_for(received, action="delayed", status="4.4.1",
                        diagnostic="smtp; 451 4.4.1 connection timed out")
    assert send_report(gateway.port, report, received.mail_from)[-1] == (250, "2.0.0 delivery report received")
    state, text = row(sender_client, BOB)
    assert state == "Notified"
    assert "delivery delayed: 451 4.4.1 connection timed out" in text
    assert listed(sender_client) == "Notified"
    deliver()
    assert smtp.to(ALICE, FAILURE_SUBJECT) == []
    # More delays change nothing: the first is the note, and the audit trail has it once, however
    # many reports whoever holds the tag sends.
    later = report_for(received, action="delayed", status="4.4.1", diagnostic="smtp; 451 4.4.1 call me at evil")
    for _ in range(3):
        assert send_report(gateway.port, later, received.mail_from)[-1][0] == 250
    assert "delivery delayed: 451 4.4.1 connection timed out" in row(sender_client, BOB)[1]
    assert AuditEvent.objects.filter(action=AuditEvent.Action.BOUNCE).count() == 1


def test_a_report_with_a_forged_tag_is_accepted_and_ignored(bounce_address, make_gateway, smtp, deliver,
                                                              sender_client):
    gateway = make_gateway()
    received = sent_to(smtp, deliver, sender_client)
    local, domain = received.mail_from.split("@")
    # The notification's key with another keyed hash: what a forger who guessed the key would send.
    forged = f"{local[:-16]}{'a' * 16}@{domain}"
    wrong_secret = f"{local[:-1]}{'b' if local[-1] != 'b' else 'c'}@{domain}"
    for address in (forged, wrong_secret, f"bounces+{'a' * 42}@bounce.northwind.example"):
        replies = send_report(gateway.port, report_for(received).replace(received.mail_from.encode(), b"x"),
                              address)
        # Exactly the replies a genuine report gets: no oracle for which tags are real.
        assert replies[-1] == (250, "2.0.0 delivery report received"), address
    assert row(sender_client, BOB)[0] == "Notified"
    assert Notification.objects.filter(status=Notification.Status.BOUNCED).count() == 0
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.BOUNCE).exists()
    deliver()
    assert smtp.to(ALICE, FAILURE_SUBJECT) == []


def test_a_mail_servers_own_kind_of_report_counts_when_it_names_the_e_mail(bounce_address, make_gateway, smtp,
                                                                          deliver, sender_client):
    gateway = make_gateway()
    received = sent_to(smtp, deliver, sender_client)
    # qmail's report, sent to the tagged address: no delivery-status part, the status in its text.
    qmail = (f"From: MAILER-DAEMON@mx1.client.example\r\nTo: {received.mail_from}\r\n"
             "Subject: failure notice\r\n\r\nHi. This is the qmail-send program at mx1.client.example.\r\n"
             "I'm afraid I wasn't able to deliver your message to the following addresses.\r\n\r\n"
             f"<{BOB}>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n"
             "Remote host said: 550 5.1.1 mailbox unavailable\r\n").encode()
    assert send_report(gateway.port, qmail, received.mail_from)[-1][0] == 250
    state, text = row(sender_client, BOB)
    assert state == "Bounced" and "no mailbox here by that name. (#5.1.1)" in text


def test_a_report_to_the_bare_bounce_address_counts_by_the_message_id_it_quotes(bounce_address, make_gateway,
                                                                              smtp, deliver, sender_client):
    gateway = make_gateway()
    received = sent_to(smtp, deliver, sender_client)
    message_id = str(received.message["Message-ID"])
    text = (f"From: postmaster@client.example\r\nTo: {BOUNCES}\r\nSubject: Returned mail\r\n\r\n"
            f"The original message was rejected: 550 5.2.1 mailbox disabled\r\n\r\n"
            f"--- original headers ---\r\nMessage-ID: {message_id}\r\nTo: {BOB}\r\n").encode()
    assert send_report(gateway.port, text, BOUNCES)[-1][0] == 250
    assert row(sender_client, BOB)[0] == "Bounced"


def test_a_report_to_the_bare_bounce_address_quoting_no_message_of_ours_is_ignored(
        bounce_address, make_gateway, smtp, deliver, sender_client):
    gateway = make_gateway()
    sent_to(smtp, deliver, sender_client)
    text = (f"From: postmaster@client.example\r\nTo: {BOUNCES}\r\nSubject: Returned mail\r\n\r\n"
            "550 5.2.1 mailbox disabled\r\n\r\nMessage-ID: <1.2.3@hushpost.localhost>\r\n").encode()
    assert send_report(gateway.port, text, BOUNCES)[-1] == (250, "2.0.0 delivery report received")
    assert row(sender_client, BOB)[0] == "Notified"


def test_an_out_of_office_answer_is_not_a_bounce(bounce_address, make_gateway, smtp, deliver, sender_client):
    gateway = make_gateway()
    received = sent_to(smtp, deliver, sender_client)
    auto = (f"From: {BOB}\r\nTo: {received.mail_from}\r\nAuto-Submitted: auto-replied\r\n"
            "Subject: Out of office\r\n\r\nI am away until 5 December (reply 550 times if urgent).\r\n").encode()
    assert send_report(gateway.port, auto, received.mail_from)[-1][0] == 250
    assert row(sender_client, BOB)[0] == "Notified"


# What the gateway takes from the null sender -----------------------------------------------

def test_the_null_sender_may_write_to_the_bounce_address_only(bounce_address, gateway, smtp, deliver,
                                                            sender_client):
    assert send_report(gateway.port, b"Subject: x\r\n\r\nx\r\n", BOB)[-1] == (
        550, "5.7.1 mail from the null sender is taken for the bounce address only")
    # A staff sender cannot send a secure message to the bounce address either.
    code, reply = submit(gateway.port, mail(to=(BOUNCES,)))
    assert (code, reply) == (550, "5.7.1 this address takes delivery reports only, from the null sender")


def test_a_report_too_big_to_read_is_refused(bounce_address, make_gateway, smtp, deliver, sender_client, settings):
    settings.BOUNCE_MAX_BYTES = 10_000
    gateway = make_gateway()
    received = sent_to(smtp, deliver, sender_client)
    big = report_for(received).replace(b"This is the mail system", (b"x" * 70 + b"\r\n") * 300)
    # Refused while it is read (aiosmtpd's own 552, its lines dropped as they come), not once it is
    # all held in memory: any host may send a report, so the staff message size must not apply.
    assert send_report(gateway.port, big, received.mail_from)[-1] == (552, "Error: Too much mail data")
    assert row(sender_client, BOB)[0] == "Notified"


def test_without_a_bounce_address_the_null_sender_is_refused_as_before(gateway):
    replies = send_report(gateway.port, b"Subject: x\r\n\r\nx\r\n", BOUNCES)
    assert replies[0][0] == 550


# Correcting the address --------------------------------------------------------------------

def test_the_sender_corrects_a_bounced_address_and_the_message_goes_there_once(
        bounce_address, make_gateway, smtp, deliver, sender_client):
    gateway = make_gateway()
    received = sent_to(smtp, deliver, sender_client)
    send_report(gateway.port, report_for(received), received.mail_from)
    message = Message.objects.get()
    bounced = Delivery.objects.get(recipient__email=BOB)

    form = {"delivery": str(bounced.pk), "address": "Bob <bob.smith@client.example>"}
    first = sender_client.post(f"/app/m/{message.uid}/correct", form)
    again = sender_client.post(f"/app/m/{message.uid}/correct", form)  # a double click
    assert first.status_code == again.status_code == 302
    assert Delivery.objects.filter(message=message).count() == 2

    deliver()
    assert len(smtp.wait_for("bob.smith@client.example", MESSAGE_SUBJECT)) == 1
    assert len(smtp.to("bob.smith@client.example", PASSWORD_SUBJECT)) == 1
    state, text = row(sender_client, BOB)
    assert state == "Bounced" and "Sent instead to bob.smith@client.example" in text
    assert row(sender_client, "bob.smith@client.example")[0] == "Notified"
    assert listed(sender_client) == "Notified"  # the replaced address no longer counts
    assert AuditEvent.objects.filter(action=AuditEvent.Action.ADDRESS_CORRECTED).count() == 1


def test_only_a_bounced_address_of_ones_own_message_can_be_corrected(bounce_address, smtp, deliver,
                                                                    sender_client, make_sender, org, client_factory):
    received = sent_to(smtp, deliver, sender_client)
    assert received
    message = Message.objects.get()
    delivery = Delivery.objects.get()
    form = {"delivery": str(delivery.pk), "address": "other@client.example"}
    # Not bounced: refused, nothing sent.
    page = sender_client.post(f"/app/m/{message.uid}/correct", form, follow=True).content.decode()
    assert "Only an address whose e-mail bounced can be corrected." in page
    # Another sender of the same organisation: 404, as for a message that does not exist.
    other = client_factory()
    other.force_login(make_sender(org, "zoe", "Zoe"))
    assert other.post(f"/app/m/{message.uid}/correct", form).status_code == 404
    assert Delivery.objects.count() == 1


def test_a_tag_made_under_another_secret_key_is_ignored_and_a_retired_key_still_counts(
        bounce_address, make_gateway, smtp, deliver, sender_client, settings):
    gateway = make_gateway()
    received = sent_to(smtp, deliver, sender_client)
    key = Notification.objects.get(kind=Notification.Kind.MESSAGE).key
    original = settings.SECRET_KEY
    # Another deployment (or a forger) with its own secret key writes a tag for this very e-mail.
    settings.SECRET_KEY = "another deployment's secret key, 50 characters long!!"
    foreign = bounces.return_path(key)
    settings.SECRET_KEY = original
    report = report_for(received).replace(received.mail_from.encode(), foreign.encode())
    assert send_report(gateway.port, report, foreign)[-1] == (250, "2.0.0 delivery report received")
    assert row(sender_client, BOB)[0] == "Notified"
    # This deployment's own key, rotated since the e-mail went: the report still counts.
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "the new secret key of this deployment, 50 chars long", [original]
    assert send_report(gateway.port, report_for(received), received.mail_from)[-1][0] == 250
    assert row(sender_client, BOB)[0] == "Bounced"


def test_the_reason_is_shown_as_plain_text_on_one_short_line(bounce_address, make_gateway, smtp, deliver,
                                                            sender_client):
    gateway = make_gateway()
    received = sent_to(smtp, deliver, sender_client)
    hostile = "smtp; 550 5.7.1 <script>alert(1)</script> \x1b[31mrejected\x07 " + "padding " * 60
    assert send_report(gateway.port, report_for(received, status="5.7.1", diagnostic=hostile),
                       received.mail_from)[-1][0] == 250
    page = sender_client.get(f"/app/m/{Message.objects.get().uid}").content.decode()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    reason = Notification.objects.get(status=Notification.Status.BOUNCED).bounce_reason
    assert reason.startswith("550 5.7.1 <script>") and len(reason) == 200
    assert reason.isprintable()


@pytest.mark.parametrize("value", ["bounces", "bounces+x@bounce.example", "a-very-long-local-part-x@bounce.example",
                                   "bounces@localhost"])
def test_a_bounce_address_without_room_for_a_tag_is_refused_at_start(cli_env, value):
    r = run_cli(cli_env | {"HUSHPOST_BOUNCE_ADDRESS": value}, "check")
    assert r.returncode != 0
    assert "HUSHPOST_BOUNCE_ADDRESS must be an address such as bounces@bounce.example" in r.stderr + r.stdout
