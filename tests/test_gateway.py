"""The SMTP gateway: mail relayed by an organisation's server becomes a secure message.

The real gateway (the server `hushpost smtpd` runs) listens on loopback; the
tests relay real MIME messages to it with smtplib, then read them as the
recipients and the sender do, through the portal.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import quopri
import smtplib
import ssl
from datetime import timedelta
from email.utils import make_msgid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client

from hushpost.attachments.actions import files_of
from hushpost.attachments.models import Attachment
from hushpost.gateway import actions, server
from hushpost.gateway.config import configure
from hushpost.gateway.server import tls_context
from hushpost.lib import clock
from hushpost.lib.env import ConfigError
from hushpost.lib.sanitize import sanitize_html
from hushpost.messaging.content import open_content
from hushpost.messaging.models import Delivery, Message, Restriction
from tests.gateway_mail import (
    DAVE,
    TcpProxy,
    as_bytes,
    mail,
    smtpd_env_through,
    start_smtpd,
    stop_smtpd,
    submit,
)
from tests.helpers import MESSAGE_SUBJECT, run_cli, self_signed
from tests.personas import ALICE, BOB, CAROL, first_login
from tests.settings import _free_port

pytestmark = pytest.mark.django_db(transaction=True)

MB = 1024 * 1024
RELAY_PASSWORD = "Harbour-relay-granite-74"
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(20_000)
GIF = b"GIF89a" + os.urandom(5_000)


def sign_in(smtp, deliver, org, email) -> Client:
    """The recipient's own browser, signed in with the e-mailed temporary password."""
    deliver()
    browser = Client()
    first_login(browser, smtp, org, email)
    return browser


def download(client, url) -> bytes:
    response = client.get(url)
    assert response.status_code == 200, url
    return b"".join(response.streaming_content)


# What arrives ----------------------------------------------------------------

def test_a_plain_text_mail_becomes_a_secure_message(gateway, org, alice, smtp, deliver, sender_client):
    code, reply = submit(gateway.port, mail("[secure] Your test results",
                                            "Dear Bob,\n\nYour results are normal.\nCall us.\n"))
    assert (code, reply) == (250, "2.0.0 stored as a secure message")
    message = Message.objects.get(author=alice)
    content = open_content(message)
    assert content.subject == "Your test results"
    assert content.body_html == "<p>Dear Bob,</p><p>Your results are normal.<br>Call us.</p>"
    assert message.send_token.startswith("gw-")
    assert [(d.recipient.email, d.field) for d in message.deliveries.all()] == [(BOB, Delivery.Field.TO)]

    deliver()
    [notification] = smtp.wait_for(BOB, MESSAGE_SUBJECT)
    assert "results" not in notification.text + notification.html
    # The sender sees it in Sent, as if sent from Compose.
    assert "Your test results" in sender_client.get("/app/sent").content.decode()
    page = sender_client.get(f"/app/m/{message.uid}").content.decode()
    assert "Your results are normal." in page and BOB in page
    bob = sign_in(smtp, deliver, org, BOB)
    assert "Your results are normal." in bob.get(f"/r/{org.slug}/m/{message.uid}").content.decode()


def test_html_is_cleaned_as_compose_cleans_it_and_inline_images_become_files(gateway, alice, sender_client):
    html = ('<html><head><style>p{color:red}</style></head><body>'
            '<p onclick="steal()">Scan: <b>clear</b></p><script>alert(1)</script>'
            '<img src="cid:scan1@northwind.example"><img src="cid:logo@northwind.example"></body></html>')
    msg = mail("[secure] Scan results", "Scan: clear (plain version)")
    msg.add_alternative(html, subtype="html")
    html_part = msg.get_payload()[1]
    html_part.add_related(PNG, "image", "png", cid="<scan1@northwind.example>")
    html_part.add_related(GIF, "image", "gif", cid="<logo@northwind.example>", filename="logo.gif")
    assert submit(gateway.port, msg)[0] == 250

    message = Message.objects.get(author=alice)
    body = open_content(message).body_html
    assert body == sanitize_html(html) == "<p>Scan: <b>clear</b></p>"
    files = files_of(message)
    assert [(f.name, f.content_type) for f in files] == [
        ("attachment-1.png", "image/png"),  # Content-IDs are not kept: they can name hosts and files
        ("logo.gif", "image/gif"),
    ]
    assert download(sender_client, f"/app/m/{message.uid}/files/{files[0].uid}") == PNG
    assert download(sender_client, f"/app/m/{message.uid}/files/{files[1].uid}") == GIF


ATTACHMENTS = b"""\
From: Alice Moreno <alice@northwind.example>
To: bob@client.example
Subject: [secure] Your documents
Message-ID: <documents-1@northwind.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain; charset=utf-8

Three documents attached.
--inner
Content-Type: text/html; charset=utf-8

<p>Three <i>documents</i> attached.</p>
--inner--
--outer
Content-Type: application/pdf
Content-Disposition: attachment; filename*=UTF-8''R%C3%A9sum%C3%A9%20%E2%82%AC.pdf
Content-Transfer-Encoding: base64

{pdf}
--outer
Content-Type: application/vnd.ms-excel; name="=?UTF-8?B?RXJnZWJuaXNzZSBNw6RyeiAyMDI2Lnhscw==?="
Content-Disposition: attachment; filename="=?UTF-8?B?RXJnZWJuaXNzZSBNw6RyeiAyMDI2Lnhscw==?="
Content-Transfer-Encoding: base64

{xls}
--outer
Content-Type: text/plain; charset=windows-1252
Content-Disposition: attachment;
 filename*0*=iso-8859-1''Notes%20d%E9taill%E9es;
 filename*1=".txt"
Content-Transfer-Encoding: quoted-printable

{txt}
--outer--
"""


def test_attachments_reach_the_recipient_byte_for_byte(store, gateway, org, alice, smtp, deliver):
    pdf, xls = b"%PDF-1.7\n" + os.urandom(2 * MB), os.urandom(300_000)
    txt = "Café crème – 12 €\r\n".encode("cp1252") * 50
    wrap = lambda data: b"\n".join(base64.encodebytes(data).splitlines())  # noqa: E731
    raw = (ATTACHMENTS.replace(b"{pdf}", wrap(pdf)).replace(b"{xls}", wrap(xls))
           .replace(b"{txt}", quopri.encodestring(txt.replace(b"\r\n", b"\n"))).replace(b"\n", b"\r\n"))
    assert submit(gateway.port, raw)[0] == 250

    message = Message.objects.get(author=alice)
    assert open_content(message).body_html == "<p>Three <i>documents</i> attached.</p>"
    files = files_of(message)
    assert [f.name for f in files] == ["Résumé €.pdf", "Ergebnisse März 2026.xls", "Notes détaillées.txt"]
    assert len(store()) == 3  # ciphertext only
    assert all(b"%PDF" not in blob for blob in store().values())

    bob = sign_in(smtp, deliver, org, BOB)
    for f, data in zip(files, (pdf, xls, txt), strict=True):
        assert download(bob, f"/r/{org.slug}/m/{message.uid}/files/{f.uid}") == data
    # The notifications carry neither the subject nor a file's name.
    for notification in smtp.to(BOB):
        text = notification.text + notification.html
        assert "documents" not in text and "Résumé" not in text and ".pdf" not in text and ".xls" not in text


NESTED = b"""\
From: alice@northwind.example
To: bob@client.example
Subject: [secure] Nested
Message-ID: <nested-1@northwind.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="m"

--m
Content-Type: multipart/alternative; boundary="a"

--a
Content-Type: text/plain; charset=us-ascii

Part one (plain)
--a
Content-Type: multipart/related; boundary="r"

--r
Content-Type: text/html; charset=us-ascii

<p>Part <b>one</b></p><img src="cid:chart@northwind.example">
--r
Content-Type: image/png
Content-ID: <chart@northwind.example>
Content-Transfer-Encoding: base64

{png}
--r--
--a--
--m
Content-Type: image/jpeg
Content-Disposition: inline; filename="photo.jpg"
Content-Transfer-Encoding: base64

{jpg}
--m
Content-Type: text/plain; charset=us-ascii

Part two, after the photo.
--m
Content-Type: message/rfc822

From: carol@client.example
To: alice@northwind.example
Subject: Original question

Is it serious?
--m--
"""


def test_nested_multiparts_keep_every_part(gateway, alice, sender_client):
    jpg = b"\xff\xd8\xff\xe0" + os.urandom(10_000)
    raw = NESTED.replace(b"{png}", base64.encodebytes(PNG).strip()).replace(b"{jpg}", base64.encodebytes(jpg).strip())
    assert submit(gateway.port, raw.replace(b"\n", b"\r\n"))[0] == 250
    message = Message.objects.get(author=alice)
    assert open_content(message).body_html == "<p>Part <b>one</b></p>\n<p>Part two, after the photo.</p>"
    files = files_of(message)
    assert [f.name for f in files] == [
        "attachment-1.png", "photo.jpg", "forwarded-message-3.eml",
    ]
    base = f"/app/m/{message.uid}/files/"
    assert download(sender_client, base + files[0].uid) == PNG
    assert download(sender_client, base + files[1].uid) == jpg
    forwarded = download(sender_client, base + files[2].uid)
    assert b"Subject: Original question" in forwarded and b"Is it serious?" in forwarded


def test_any_common_charset_and_transfer_encoding_is_read(gateway, alice):
    latin = ("[secure] Befund", "text/plain; charset=iso-8859-1", "quoted-printable",
             "Grüße aus München, naïve café".encode("iso-8859-1"))
    japanese = ("=?shift_jis?B?" + base64.b64encode("[secure] 検査結果のお知らせ".encode("shift_jis")).decode()
                + "?=", "text/plain; charset=shift_jis", "base64", "検査結果は正常です。".encode("shift_jis"))
    russian = ("[secure] =?koi8-r?Q?=F0=D2=C9=D7=C5=D4?=", "text/plain; charset=koi8-r", "8bit",
               "Результаты готовы.".encode("koi8-r"))
    windows = ("[secure] Invoice", "text/html; charset=windows-1252", "base64",
               "<p>“Smart quotes” – 100 €</p>".encode("cp1252"))
    unknown = ("[secure] Unknown", "text/plain; charset=x-made-up", "8bit", "Naïve but readable".encode())
    expected = [
        ("Befund", "<p>Grüße aus München, naïve café</p>"),
        ("検査結果のお知らせ", "<p>検査結果は正常です。</p>"),
        ("Привет", "<p>Результаты готовы.</p>"),
        ("Invoice", "<p>“Smart quotes” – 100 €</p>"),
        ("Unknown", "<p>Naïve but readable</p>"),  # an unknown charset is read as UTF-8, not refused
    ]
    for n, (subject, ctype, encoding, body) in enumerate((latin, japanese, russian, windows, unknown)):
        encoded = {"base64": base64.encodebytes, "quoted-printable": quopri.encodestring,
                   "8bit": lambda b: b}[encoding](body)
        raw = (f"From: alice@northwind.example\r\nTo: bob@client.example\r\nSubject: {subject}\r\n"
               f"Message-ID: <charset-{n}@northwind.example>\r\nMIME-Version: 1.0\r\n"
               f"Content-Type: {ctype}\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n").encode() + encoded
        assert submit(gateway.port, raw)[0] == 250, subject
    stored = [open_content(m) for m in Message.objects.filter(author=alice).order_by("id")]
    assert [(c.subject, c.body_html) for c in stored] == expected


def test_to_and_cc_are_recipients_and_envelope_only_addresses_are_bcc(gateway, org, alice, smtp, deliver):
    msg = mail("[secure] Case notes", to=(BOB,), cc=(CAROL,))
    assert submit(gateway.port, msg, rcpts=[BOB, CAROL, DAVE])[0] == 250

    message = Message.objects.get(author=alice)
    fields = {d.recipient.email: d.field for d in message.deliveries.select_related("recipient")}
    assert fields == {BOB: Delivery.Field.TO, CAROL: Delivery.Field.CC, DAVE: Delivery.Field.BCC}
    deliver()
    smtp.wait_for(DAVE, MESSAGE_SUBJECT)  # the Bcc recipient is notified like the others
    bob = sign_in(smtp, deliver, org, BOB)
    reply_all = bob.get(f"/r/{org.slug}/m/{message.uid}/reply?all=1").content.decode()
    assert CAROL in reply_all and DAVE not in reply_all
    dave = sign_in(smtp, deliver, org, DAVE)
    page = dave.get(f"/r/{org.slug}/m/{message.uid}").content.decode()
    assert "Reply All" not in page  # one who was Bcc'd answers the sender only


def test_a_header_address_not_in_the_envelope_receives_nothing(gateway, alice):
    # The envelope decides who receives, as for any e-mail: the relaying server
    # delivered CAROL some other way.
    assert submit(gateway.port, mail(to=(BOB, CAROL)), rcpts=[BOB])[0] == 250
    message = Message.objects.get(author=alice)
    assert [d.recipient.email for d in message.deliveries.select_related("recipient")] == [BOB]


# Options -------------------------------------------------------------------------

def test_the_options_header_sets_the_send_options(gateway, alice):
    msg = mail(headers={"X-Hushpost-Options": "read-receipt; restrict=no-print,no-reply; expire=7d"})
    assert submit(gateway.port, msg)[0] == 250
    message = Message.objects.get(author=alice)
    assert message.read_receipt and message.restriction == Restriction.NO_PRINT_NO_REPLY
    assert message.expires_at - message.created_at == timedelta(days=7)


def test_subject_tags_set_the_options_and_leave_the_subject(gateway, alice):
    subject = "[secure] [noprint] [Receipt] [expire=1d] [EXT] Lab report"
    assert submit(gateway.port, mail(subject))[0] == 250
    message = Message.objects.get(author=alice)
    assert open_content(message).subject == "[EXT] Lab report"
    assert message.read_receipt and message.restriction == Restriction.NO_PRINT
    assert message.expires_at - message.created_at == timedelta(days=1)


def test_without_options_the_organisation_defaults_apply_and_tags_override_them(gateway, org, alice):
    org.default_read_receipt, org.default_restriction, org.default_expire_days = True, "no_print", 30
    org.save()
    assert submit(gateway.port, mail("[secure] Defaults"))[0] == 250
    assert submit(gateway.port, mail("[secure] [no-receipt] [unrestricted] [expire=never] Overridden"))[0] == 250
    defaults, overridden = Message.objects.filter(author=alice).order_by("id")
    assert defaults.read_receipt and defaults.restriction == Restriction.NO_PRINT
    assert defaults.expires_at - defaults.created_at == timedelta(days=30)
    assert not overridden.read_receipt and overridden.restriction == Restriction.NONE
    assert overridden.expires_at is None


def test_an_expiry_the_organisation_does_not_allow_is_refused_with_the_reason(gateway, org, alice):
    org.allowed_expiry_days = "0,7"
    org.save()
    code, reply = submit(gateway.port, mail("[secure] [expire=30d] Report"))
    assert (code, reply) == (550, "5.7.0 Your organisation does not allow an expiry of 30 days: "
                                  "choose never or 7 days.")
    code, reply = submit(gateway.port, mail(headers={"X-Hushpost-Options": "expire=soon"}))
    assert code == 550 and "write the expiry as a number of days" in reply
    code, reply = submit(gateway.port, mail(headers={"X-Hushpost-Options": "shred-after-reading"}))
    assert code == 550 and "unknown option 'shred-after-reading'" in reply
    assert not Message.objects.exists()


# Which mail is secure ----------------------------------------------------------------

def test_mail_without_the_keyword_is_refused_unless_the_organisation_routes_all(gateway, org, alice):
    code, reply = submit(gateway.port, mail("Your test results"))
    assert code == 550 and reply.startswith("5.7.0 the subject has no [secure] keyword")
    assert not Message.objects.exists()
    # Any case; anywhere in the subject.
    assert submit(gateway.port, mail("Results [SECURE]"))[0] == 250
    configure(org, keyword="confidential")
    assert submit(gateway.port, mail("Strictly CONFIDENTIAL: budget"))[0] == 250
    assert submit(gateway.port, mail("Nonconfidential notes"))[0] == 550  # a word, not part of one
    configure(org, route_all=True)
    assert submit(gateway.port, mail("Plain subject"))[0] == 250
    subjects = [open_content(m).subject for m in Message.objects.filter(author=alice).order_by("id")]
    assert subjects == ["Results", "Strictly : budget", "Plain subject"]


# Who may relay ---------------------------------------------------------------------

def test_a_forged_sender_is_refused(gateway, org, make_org, make_sender, alice):
    other = make_org("Other Clinic", "other.example")
    make_sender(other, "mallory", "Mallory")
    configure(other, networks="10.0.0.0/8")
    code, reply = submit(gateway.port, mail(sender="eve@nowhere.example"))
    assert (code, reply) == (550, "5.7.1 eve@nowhere.example is not a Hushpost sender of an "
                                  "organisation this server relays for (client 127.0.0.1)")
    assert submit(gateway.port, mail(sender="mallory@other.example"))[0] == 550
    # A good envelope does not carry a forged From header.
    code, reply = submit(gateway.port, mail(sender="mallory@other.example"), mail_from=ALICE)
    assert code == 550 and "mallory@other.example is not a Hushpost sender" in reply
    code, reply = submit(gateway.port, mail(sender="nobody@northwind.example"), mail_from=ALICE)
    assert (code, reply) == (550, "5.7.1 nobody@northwind.example is not an active Hushpost sender "
                                  f"of {org.slug}")
    bert = make_sender(org, "bert", "Bert Disabled")
    bert.is_active = False
    bert.save()
    assert submit(gateway.port, mail(sender=bert.email))[0] == 550
    assert not Message.objects.exists()


def test_a_client_outside_the_organisations_networks_is_refused(gateway, org, alice):
    configure(org, networks="10.0.0.0/8, 192.0.2.7")
    code, reply = submit(gateway.port, mail())
    assert code == 550 and "(client 127.0.0.1)" in reply
    configure(org, networks="")  # neither networks nor a gateway user: nothing is accepted
    assert submit(gateway.port, mail())[0] == 550
    assert not Message.objects.exists()


@pytest.fixture
def tls_gateway(make_gateway, org, alice, tmp_path):
    cert, key = self_signed(tmp_path)
    configure(org, networks="", auth_user="northwind-relay", password=RELAY_PASSWORD)
    gateway = make_gateway(tls_context=tls_context(str(cert), str(key)))
    client_context = ssl.create_default_context(cafile=str(cert))
    return gateway, client_context


def test_a_signed_in_client_relays_for_its_organisation_over_tls_only(tls_gateway, org, alice, make_org,
                                                                        make_sender):
    gateway, trust = tls_gateway
    with smtplib.SMTP("localhost", gateway.port, timeout=30) as client:
        client.ehlo()
        assert client.has_extn("starttls") and not client.has_extn("auth")  # no password in clear
        assert client.mail(ALICE)[0] == 530  # TLS first
    code, reply = submit(gateway.port, mail(), host="localhost", starttls=trust,
                         login=("northwind-relay", "Wrong-password-123456"))
    assert code == 535
    clock.travel(timedelta(seconds=61))  # smtplib tries PLAIN, then LOGIN: two failures, then a wait
    code, reply = submit(gateway.port, mail(), host="localhost", starttls=trust,
                         login=("northwind-relay", RELAY_PASSWORD))
    assert code == 250, reply
    # AUTH LOGIN works too.
    with smtplib.SMTP("localhost", gateway.port, timeout=30) as client:
        client.starttls(context=trust)
        client.ehlo()
        client.user, client.password = "northwind-relay", RELAY_PASSWORD
        assert client.auth("LOGIN", client.auth_login, initial_response_ok=False)[0] == 235
    assert Message.objects.filter(author=alice).count() == 1
    # Another organisation's gateway user does not relay Northwind's mail.
    other = make_org("Other Clinic", "other.example")
    make_sender(other, "mallory", "Mallory")
    configure(other, auth_user="other-relay", password=RELAY_PASSWORD + "-x")
    code, reply = submit(gateway.port, mail(), host="localhost", starttls=trust,
                         login=("other-relay", RELAY_PASSWORD + "-x"))
    assert code == 550 and "is not a Hushpost sender of an organisation this server relays for" in reply
    assert Message.objects.filter(author=alice).count() == 1
    # A relay guessing passwords is locked out like anyone signing in.
    for n in range(5):
        code, _ = submit(gateway.port, mail(), host="localhost", starttls=trust,
                         login=("northwind-relay", f"Guess-{n}-wrong-password"))
        assert code == 535
        clock.travel(timedelta(seconds=61))
    code, _ = submit(gateway.port, mail(), host="localhost", starttls=trust, login=("northwind-relay", RELAY_PASSWORD))
    assert code == 535
    clock.travel(timedelta(minutes=16))
    code, reply = submit(gateway.port, mail(subject="After the lockout [secure]"), host="localhost", starttls=trust,
                         login=("northwind-relay", RELAY_PASSWORD))
    assert code == 250, reply


def test_a_nul_in_a_sender_or_a_user_name_is_refused_for_good_not_retried(tls_gateway, org, alice):
    """PostgreSQL cannot even look a NUL up: without a check the relay heard 4xx and kept retrying."""
    gateway, trust = tls_gateway
    with smtplib.SMTP("localhost", gateway.port, timeout=30) as client:
        client.starttls(context=trust)
        client.ehlo()
        code, reply = client.docmd("MAIL", "FROM:<alice@north\x00wind.example>")
        assert code == 553, reply
        login = base64.b64encode(b"northwind\x00relay").decode()
        assert client.docmd("AUTH", "LOGIN " + login)[0] == 334  # the password, please
        code, reply = client.docmd(base64.b64encode(RELAY_PASSWORD.encode()).decode())
        assert code == 535, reply
    assert not Message.objects.exists()


# Limits and failures ---------------------------------------------------------------

def test_a_message_over_the_size_limit_is_refused_with_552(make_gateway, relaying, alice):
    gateway = make_gateway(max_bytes=100_000)
    big = mail(body="x" * 150_000)
    code, reply = submit(gateway.port, big)  # announced with SIZE=: refused before the data
    assert code == 552
    code, reply = submit(gateway.port, big, size=False)  # not announced: refused after it
    assert code == 552
    assert not Message.objects.exists()


def test_a_file_over_the_organisations_limit_is_refused_and_nothing_is_kept(gateway, org, alice):
    org.max_file_mb = 1
    org.save()
    msg = mail()
    msg.add_attachment(b"small", maintype="text", subtype="plain", filename="small.txt")
    msg.add_attachment(os.urandom(MB + 1), maintype="application", subtype="octet-stream", filename="big.bin")
    code, reply = submit(gateway.port, msg)
    assert (code, reply) == (552, "5.3.4 big.bin is larger than 1 MB, the largest file your "
                                  "organisation allows.")
    assert not Message.objects.exists() and not Attachment.objects.exists()
    org.max_message_mb = 1
    org.save()
    msg = mail()
    for n in (1, 2):
        msg.add_attachment(os.urandom(600_000), maintype="application", subtype="pdf", filename=f"part{n}.pdf")
    code, reply = submit(gateway.port, msg)
    assert (code, reply) == (552, "5.3.4 The attached files come to more than 1 MB, the most your "
                                  "organisation allows on one message.")
    assert not Message.objects.exists() and not Attachment.objects.exists()


def test_a_colleague_cannot_send_as_someone_else_or_block_their_message(gateway, org, alice, make_sender):
    make_sender(org, "mallory", "Mallory")
    forged = mail(subject="[secure] Change of bank details", message_id="<predictable@northwind.example>")
    code, reply = submit(gateway.port, forged, mail_from="mallory@northwind.example")
    assert code == 550 and "the From address must be the envelope sender" in reply
    assert not Message.objects.exists()
    # A different e-mail reusing a Message-ID is no retry of the first: both are stored.
    first = mail(subject="[secure] One", message_id="<same-id@northwind.example>")
    second = mail(subject="[secure] Two", body="Another text.\n", message_id="<same-id@northwind.example>")
    assert submit(gateway.port, first)[0] == 250 and submit(gateway.port, second)[0] == 250
    assert Message.objects.filter(author=alice).count() == 2


def test_a_message_too_deep_or_with_too_many_parts_bounces_not_retries(gateway, alice):
    deep = b"From: alice@northwind.example\r\nTo: bob@client.example\r\nSubject: [secure] deep\r\n"
    deep += b"Message-ID: <deep@northwind.example>\r\nMIME-Version: 1.0\r\n"
    nesting = 3000
    for n in range(nesting):
        deep += f"Content-Type: multipart/mixed; boundary=b{n}\r\n\r\n--b{n}\r\n".encode()
    deep += b"Content-Type: text/plain\r\n\r\nhello\r\n"
    code, reply = submit(gateway.port, deep, mail_from=ALICE, rcpts=[BOB])
    assert code == 554 and ("too many MIME parts" in reply or "nested too deeply" in reply), reply
    many = mail(subject="[secure] parts")
    many.set_content("x")
    raw = as_bytes(many).replace(b"\r\n\r\nx", b"\r\n\r\n" + b"--b\r\n" * 2500)
    code, reply = submit(gateway.port, raw, mail_from=ALICE, rcpts=[BOB])
    assert code == 554 and "too many MIME parts" in reply
    assert not Message.objects.exists()


def test_the_same_message_relayed_twice_is_stored_once(gateway, alice):
    msg = mail(message_id=make_msgid(domain="northwind.example"))
    assert submit(gateway.port, msg) == (250, "2.0.0 stored as a secure message")
    assert submit(gateway.port, msg) == (250, "2.0.0 already received; stored once")
    # Without a Message-ID the bytes name it.
    raw = as_bytes(mail("[secure] No id", message_id=None))
    assert submit(gateway.port, raw)[0] == submit(gateway.port, raw)[0] == 250
    assert Message.objects.filter(author=alice).count() == 2
    # A server that splits the recipients over two transactions: one message each, none lost.
    split = mail("[secure] Split", to=(BOB, CAROL))
    assert submit(gateway.port, split, rcpts=[BOB])[0] == submit(gateway.port, split, rcpts=[CAROL])[0] == 250
    assert Message.objects.filter(author=alice).count() == 4


def test_a_retry_is_answered_as_received_after_the_organisation_changed_its_rules(gateway, org, alice):
    msg = mail("[secure] Your results", message_id=make_msgid(domain="northwind.example"))
    assert submit(gateway.port, msg) == (250, "2.0.0 stored as a secure message")
    configure(org, keyword="[encrypt]")  # the subject no longer carries the keyword
    assert submit(gateway.port, msg) == (250, "2.0.0 already received; stored once")
    assert submit(gateway.port, mail("[secure] A new one"))[0] == 550
    assert Message.objects.filter(author=alice).count() == 1


def test_a_sender_disabled_during_a_slow_transaction_is_refused_at_data(gateway, alice, monkeypatch):
    monkeypatch.setattr(actions, "SENDER_FRESH_SECONDS", 0.0)  # every DATA looks the sender up again
    with smtplib.SMTP("127.0.0.1", gateway.port, timeout=60) as client:
        client.ehlo()
        assert client.mail(ALICE)[0] == 250 and client.rcpt(BOB)[0] == 250
        alice.is_active = False
        alice.save()
        code, reply = client.data(as_bytes(mail()))
    assert code == 550 and "is not an active Hushpost sender" in reply.decode()
    assert not Message.objects.exists()


def test_logs_never_hold_content_subjects_or_addresses(gateway, alice, caplog):
    caplog.set_level(logging.DEBUG)
    assert submit(gateway.port, mail("[secure] Diagnosis-7731", "Tumour-marker-4410 negative"))[0] == 250
    assert submit(gateway.port, mail("No keyword Diagnosis-7731"))[0] == 550
    logged = caplog.text
    assert "reply=250" in logged and "reply=550" in logged and "org=northwind-health" in logged
    for secret in ("Diagnosis-7731", "Tumour-marker-4410", BOB):
        assert secret not in logged


# Operators -------------------------------------------------------------------------

def test_operators_configure_an_organisation_with_the_cli(org, monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr("sys.stdin", io.StringIO(RELAY_PASSWORD + "\n"))
    call_command("gateway", "set", org.slug, "--networks", "10.0.0.0/8 192.0.2.7", "--auth-user",
                 "northwind-relay", "--keyword", "[Encrypt]", "--route-all", stdout=out)
    call_command("gateway", "show", org.slug, stdout=out)
    shown = " ".join(out.getvalue().split())
    assert "Client networks: 10.0.0.0/8, 192.0.2.7/32" in shown
    assert "SMTP AUTH user: northwind-relay (password set)" in shown
    assert "Keyword: [Encrypt] (any case)" in shown and "Accepts mail: yes" in shown
    org.refresh_from_db()
    assert org.gateway_auth_password.startswith("argon2$argon2id$")
    assert org.gateway_auth_password not in shown and "argon2" not in shown
    with pytest.raises(CommandError, match="'10.0.0.300' is not a network"):
        call_command("gateway", "set", org.slug, "--networks", "10.0.0.300")
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    with pytest.raises(CommandError, match="at least 12 characters"):
        call_command("gateway", "set", org.slug, "--auth-user", "another")
    out = io.StringIO()
    call_command("gateway", "set", org.slug, "--networks", "", "--no-auth", "--no-route-all", stdout=out)
    assert "Accepts mail: no: set --networks or --auth-user" in " ".join(out.getvalue().split())
    with pytest.raises(CommandError, match="no organisation 'nobody'"):
        call_command("gateway", "show", "nobody")


# `hushpost smtpd` as a process ----------------------------------------------------------

def test_the_database_failing_mid_delivery_answers_451_and_the_retry_is_delivered(
    relaying, alice, smtp, deliver, settings,
):
    if connection.vendor != "postgresql":
        pytest.skip("cuts a TCP connection to PostgreSQL; SQLite has no connection to cut")
    db = connection.settings_dict
    proxy = TcpProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))
    proxy.start()
    port = _free_port()
    env = smtpd_env_through(proxy, settings)
    process = start_smtpd(env, port)
    try:
        assert submit(port, mail("[secure] Before the outage"))[0] == 250

        retried = mail("[secure] During the outage")
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
            client.ehlo()
            assert client.mail(ALICE)[0] == 250 and client.rcpt(BOB)[0] == 250
            proxy.stop()  # the database goes away between RCPT and the end of DATA
            code, reply = client.data(as_bytes(retried))
        assert (code, reply.decode()) == (451, "4.3.0 Hushpost cannot take messages right now; "
                                               "please try again later")
        assert submit(port, mail("[secure] Not now"))[0] == 451  # and at MAIL FROM too

        proxy.start()  # the sending server retries later
        assert submit(port, retried) == (250, "2.0.0 stored as a secure message")
        assert submit(port, retried)[0] == 250
    finally:
        proxy.stop()
        out, err = stop_smtpd(process)
    assert "listening on 127.0.0.1" in out and "stopped" in out
    assert "reply=451" in err and "During the outage" not in err
    subjects = sorted(open_content(m).subject for m in Message.objects.filter(author=alice))
    assert subjects == ["Before the outage", "During the outage"]
    deliver()
    assert len(smtp.wait_for(BOB, MESSAGE_SUBJECT, count=2)) == 2


def test_hushpost_smtpd_runs_and_stops(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUSHPOST_") and k != "DJANGO_SETTINGS_MODULE"}
    env |= {"HUSHPOST_MODE": "development", "HUSHPOST_DATA_DIR": str(tmp_path)}
    assert run_cli(env, "migrate", "-v0").returncode == 0  # smtpd starts only on a migrated database
    port = _free_port()
    process = start_smtpd(env, port)
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo()
        assert client.esmtp_features["size"] == str(150 * MB)  # the default limit, announced
        assert not client.has_extn("starttls") and not client.has_extn("auth")
    out, _ = stop_smtpd(process)
    assert f"listening on 127.0.0.1:{port} (no TLS; largest message 150 MB)" in out


def test_production_refuses_a_plain_text_gateway_on_a_public_address(settings):
    settings.PRODUCTION = True
    with pytest.raises(ConfigError, match="HUSHPOST_SMTPD_ALLOW_PLAINTEXT"):
        server.build("0.0.0.0:2525")
    assert server.build("127.0.0.1:2525").tls is False  # loopback: only this host can speak to it
    settings.SMTPD_ALLOW_PLAINTEXT = True
    assert server.build("0.0.0.0:2525").port == 2525
