"""A sender's Sent list says how each message is doing, in the message page's own words."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hushpost.messaging.actions import Addressees, SendOptions, recall, send_message
from hushpost.messaging.models import Message
from tests.helpers import send
from tests.personas import first_login

BOB, CAROL, DAN = "bob@client.example", "carol@client.example", "dan@client.example"
LIST_STATE = re.compile(r'<span class="badge badge-(\w+) delivery-state">'
                        r'<span class="visually-hidden">Delivery: </span>([^<]+)</span>')
PAGE_STATE = re.compile(r'Status: <span class="state (\w+)">([^<]+)</span>')
ROW_STATE = re.compile(r'<td class="notified">\s*<span class="state \w+">([^<]+)</span>')


def sent_list(client) -> dict[str, str]:
    """Subject -> the delivery state shown on that message's row."""
    page = client.get("/app/sent").content.decode()
    rows = re.findall(r'<li class="message-row[^"]*">(.*?)</li>', page, re.S)
    found = {}
    for row in rows:
        subject = re.search(r'<span class="subject">([^<]*)</span>', row).group(1)
        found[subject] = LIST_STATE.search(row).group(2)
    return found


def message_page(client, message: Message) -> tuple[str, str]:
    """The message page's summary, and the page itself (its table per recipient)."""
    page = client.get(f"/app/m/{message.uid}").content.decode()
    return PAGE_STATE.search(page).group(2), page


def both_say(client, subject: str) -> str:
    """What the list and the message page say, which must be the same."""
    listed = sent_list(client)[subject]
    on_page, _ = message_page(client, Message.objects.get(uid=_uid(client, subject)))
    assert listed == on_page, (listed, on_page)
    return listed


def _uid(client, subject: str) -> str:
    page = client.get("/app/sent").content.decode()
    return re.search(rf'href="/app/m/([^"]+)">\s*<span class="who">[^<]*</span>\s*<span class="summary">\s*'
                     rf'<span class="subject">{re.escape(subject)}</span>', page).group(1)


def test_a_message_waiting_for_the_worker_is_pending_in_the_list(sender_client, smtp):
    send(sender_client, to=f"{BOB}, {CAROL}", subject="Lab results")
    assert both_say(sender_client, "Lab results") == "Pending"
    _, page = message_page(sender_client, Message.objects.get())
    assert ROW_STATE.findall(page) == ["Pending", "Pending"]


def test_once_the_e_mails_are_accepted_the_list_says_notified(sender_client, smtp, deliver):
    send(sender_client, to=f"{BOB}, {CAROL}", subject="Lab results")
    deliver()
    assert both_say(sender_client, "Lab results") == "Notified"


def test_a_refused_e_mail_shows_as_one_failure_among_the_recipients(sender_client, smtp, deliver):
    send(sender_client, to=f"{BOB}, {CAROL}, {DAN}", subject="Lab results")
    smtp.refuse_next("550 5.1.1 No such user here")
    deliver()
    assert both_say(sender_client, "Lab results") == "Failed: 1 of 3"


def test_a_temporary_refusal_shows_as_pending_and_retrying(sender_client, smtp, deliver, settings):
    settings.NOTIFY_RETRY_SCHEDULE = [3600]
    send(sender_client, to=BOB, subject="Lab results")
    smtp.refuse_next("451 4.3.0 Mailbox temporarily unavailable")
    deliver()
    assert both_say(sender_client, "Lab results") == "Pending, retrying"


def test_openings_are_counted_and_a_pending_read_receipt_is_not_the_recipients_state(
    sender_client, client_factory, smtp, deliver, org
):
    send(sender_client, to=f"{BOB}, {CAROL}, {DAN}", subject="Board pack", read_receipt=True)
    deliver()
    message = Message.objects.get()
    for address in (BOB, CAROL):
        reader = client_factory()
        first_login(reader, smtp, org, address)
        assert reader.get(f"/r/{org.slug}/m/{message.uid}").status_code == 200
    # The two read receipts to the sender are queued, not sent: the recipients
    # were notified all the same.
    assert both_say(sender_client, "Board pack") == "Opened by 2 of 3"
    _, page = message_page(sender_client, message)
    assert ROW_STATE.findall(page) == ["Notified"] * 3


def test_a_recall_before_the_worker_ran_is_not_left_pending(sender_client, alice, smtp, deliver):
    send(sender_client, to=BOB, subject="Wrong patient")
    recall(Message.objects.get(), by=alice)
    assert both_say(sender_client, "Wrong patient") == "Recalled"
    send(sender_client, to=CAROL, subject="Existing account")
    deliver()
    send(sender_client, to=CAROL, subject="Second thoughts")
    message = Message.objects.get(uid=_uid(sender_client, "Second thoughts"))
    recall(message, by=alice)
    deliver()
    _, page = message_page(sender_client, message)
    assert ROW_STATE.findall(page) == ["Not sent"]


def test_another_organisations_sender_sees_none_of_it(sender_client, client_factory, make_org, make_sender, smtp):
    send(sender_client, to=BOB, subject="Lab results")
    outsider = client_factory()
    outsider.force_login(make_sender(make_org("Elsewhere"), "charlie", "Charlie"),
                         backend="hushpost.accounts.backends.HushpostBackend")
    assert sent_list(outsider) == {}


@pytest.mark.parametrize("count", [1, 30])
def test_the_sent_list_costs_the_same_queries_for_1_or_30_messages(sender_client, alice, smtp, count):
    for n in range(count):
        send_message(author=alice, addressees=Addressees(to=[BOB, f"r{n}@client.example"]),
                     subject=f"Message {n}", body_html="<p>Hello.</p>", options=SendOptions(),
                     send_token=f"list-{n}")
    sender_client.get("/app/sent")  # warm the organisation key cache, as any running process has
    with CaptureQueriesContext(connection) as queries:
        states = sent_list(sender_client)
    assert len(states) == count and set(states.values()) == {"Pending"}
    assert len(queries) <= QUERY_BUDGET, "\n".join(q["sql"] for q in queries.captured_queries)


QUERY_BUDGET = 7  # the session with its user, the page count and rows, three prefetches, recalls
