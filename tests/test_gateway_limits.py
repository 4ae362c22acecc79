"""The gateway's limits: no single message can hold it.

Messages built to be slow to parse are refused (552 at once for oversized
headers; 554 once a message has spent its CPU budget), and the session goes on
to the next message.
"""

from __future__ import annotations

import smtplib
import time

import pytest

from hushpost.attachments.models import Attachment
from hushpost.messaging.content import open_content
from hushpost.messaging.models import Message
from tests.gateway_mail import ALICE, BOB, mail, semicolons, slow_to_parse, submit, transaction
from tests.test_gateway import make_gateway, relaying  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)
STORED = (250, "2.0.0 stored as a secure message")


def subjects(alice) -> list[str]:
    return [open_content(m).subject for m in Message.objects.filter(author=alice).order_by("id")]


# Messages slow to parse ------------------------------------------------------------------

def test_oversized_headers_are_refused_at_once_and_the_session_goes_on(make_gateway, relaying, alice):
    gateway = make_gateway()
    # Ten files, each with a folded 64 KB Content-Disposition: 153 s of CPU to parse in full.
    ten_parts = slow_to_parse(10, 64 * 1024)
    # One 256 KB header (a To list that is all semicolons): minutes of CPU.
    one_header = (b"From: alice@northwind.example\r\nTo: bob@client.example,\r\n" + semicolons(256 * 1024)
                  + b"Subject: [secure] Huge\r\n\r\nHello.\r\n")
    with smtplib.SMTP("127.0.0.1", gateway.port, timeout=60) as client:
        client.ehlo()
        started = time.monotonic()
        code, reply = transaction(client, ten_parts, mail_from=ALICE, rcpts=[BOB])
        assert (code, reply) == (552, "5.3.4 the message has a Content-Disposition field of 64 KB; "
                                      "Hushpost reads header fields of at most 32 KB")
        code, reply = transaction(client, one_header, mail_from=ALICE, rcpts=[BOB])
        assert (code, reply) == (552, "5.3.4 the message has a To field of 256 KB; "
                                      "Hushpost reads header fields of at most 32 KB")
        assert time.monotonic() - started < 30  # generous: a bound on the protection, not a speed test
        # The same session goes on, and the gateway answers the next message as usual.
        assert transaction(client, mail("[secure] Right after")) == STORED
    assert subjects(alice) == ["Right after"]
    assert not Attachment.objects.exists()


def test_a_message_that_spends_its_cpu_budget_bounces_and_the_next_one_is_stored(
    make_gateway, relaying, alice, settings,
):
    settings.SMTPD_READ_CPU_SECONDS = 1
    gateway = make_gateway()
    # Every header under the limits, yet about 30 s of CPU to parse in full.
    slow = slow_to_parse(12, 30 * 1024)
    with smtplib.SMTP("127.0.0.1", gateway.port, timeout=60) as client:
        client.ehlo()
        started = time.monotonic()
        code, reply = transaction(client, slow, mail_from=ALICE, rcpts=[BOB])
        assert (code, reply) == (554, "5.6.0 the message is too costly to read: it would take more "
                                      "than 1 s of CPU")  # for good: the relay bounces it, no retries
        assert time.monotonic() - started < 30  # generous: a bound on the protection, not a speed test
        assert transaction(client, mail("[secure] Right after")) == STORED
    # Messages in other sessions meanwhile are unaffected too.
    assert submit(gateway.port, mail("[secure] Another session")) == STORED
    assert subjects(alice) == ["Right after", "Another session"]
    assert not Attachment.objects.exists()
