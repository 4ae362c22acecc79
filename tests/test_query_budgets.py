"""Query budgets: how many SQL statements each hot path runs, exactly.

A budget holds a path to the number of statements it runs today, so that a round trip
cannot be added without anyone noticing: a lookup repeated in a helper, a list that
queries once per row, a relation read lazily in a loop. They are exact, not ceilings, so
a statement saved shows too.

When one fails, read the statements pytest prints with the failure (every one, in order):

* more than the budget, by accident: find the new statement and remove it;
* more on purpose (the path must now read or write something new): raise the number, and
  its comment's list of statements, in the same commit, and say in the commit message
  what the statement is for;
* fewer: lower the number (and the list) in the commit that saved the statement.

How they are counted: what Django records for the connection of the thread doing the work
(``CaptureQueriesContext``; the gateway's are read the same way from its worker threads'
connections). Transactions are real (``transaction=True``), as in production: Django
records each BEGIN and COMMIT too, so a path that opens one more transaction costs two
more, and the SAVEPOINT and RELEASE of an ``atomic`` block inside another count as well.
Each path is measured in its steady state: this process has unwrapped the organisation's
key, the audit chain has begun, the session was touched less than ``TOUCH_SECONDS`` ago
(the clock stands still), the worker asked the relay a moment ago.

SQLite and PostgreSQL run the same number of statements on every path here but one, so each
budget is one number for both: a row lock is a ``FOR UPDATE`` clause on PostgreSQL and nothing
on SQLite, not a statement, and SQLite's ``BEGIN IMMEDIATE`` stands where PostgreSQL's BEGIN
does. The one: a send's rows (the message, each delivery, notification and task, the audit
event) are one statement on PostgreSQL (``lib.rows.together``), and each its own on SQLite.
"""

from __future__ import annotations

import secrets
import threading
import time
from contextlib import contextmanager

import pytest
from django.db import connection
from django.db.backends.signals import connection_created
from django.test.utils import CaptureQueriesContext

from hushpost.accounts.models import User
from hushpost.audit import linker
from hushpost.audit.actions import record
from hushpost.lib import clock
from hushpost.messaging.models import Message
from hushpost.notifications import delivery
from hushpost.notifications.models import Notification
from hushpost.scim import tokens as scim_tokens
from tests.gateway_mail import mail, submit
from tests.helpers import run_worker, send
from tests.personas import BOB, first_login
from tests.personas import sender as make_sender

pytestmark = pytest.mark.django_db(transaction=True)

# The budgets. Change one only as the module docstring says.

# Every signed-in page begins with one statement: the session row with its account and the
# account's organisation (hushpost.accounts.sessions), "the session" below.

# POST /app/compose with the confirm step: the session; BEGIN; Bob's account; the message,
# his delivery, the task and the notification and the audit event (no lock: the linker chains
# it after the commit; its count of files is the drafts attached), all in one statement on
# PostgreSQL, five on SQLite; COMMIT.
SEND_ROWS = 1 if connection.vendor == "postgresql" else 5
SEND_TO_ONE_EXISTING_RECIPIENT = 4 + SEND_ROWS
# GET /r/<org_slug>/m/<uid>, the first time (the message asks for a read receipt): the session
# (the address names Bob's own organisation: not read again); the gate (the message, with Bob's delivery joined to it: one
# statement); BEGIN, the opening, the receipt's task and notification, the audit event (one
# INSERT, in the opening's transaction), COMMIT; the message's deliveries with their
# recipients, for Reply All, read with who it was recalled for (the subject, "can reply" and
# Reply All each ask: the answer is kept on the message); the files. Bob's own replies are
# read only once his delivery says he replied.
RECIPIENT_OPENS_A_MESSAGE_FIRST = 10
# The same page again: no opening to record, the audit event as before (one INSERT, on its own).
RECIPIENT_OPENS_A_MESSAGE_AGAIN = 5
# GET /r/<org_slug>/: the session; the paginator's COUNT; the
# messages recalled for Bob; one page of deliveries with their messages and authors.
RECIPIENT_INBOX = 4  # with 1 message and with 30: never a statement per row
# GET /app/m/<uid>: the session; the gate (the message); its deliveries with their
# recipients and notifications; its files.
SENDERS_MESSAGE_PAGE = 5
# Once a delivery says its recipient replied: the replies she may see (one query through the gate).
REPLIES_ON_THE_SENDERS_PAGE = 1
# However many replies are listed there.
PER_REPLY_ON_THE_SENDERS_PAGE = 0
# MAIL FROM: the sender's account, found through its domain (one query). DATA: the account
# MAIL FROM found (the From address is the same one, so not looked up again), and no "is this
# e-mail stored already" first (the unique send token answers it); only the Compose send
# above, from BEGIN to COMMIT.
ONE_GATEWAY_MESSAGE = SEND_TO_ONE_EXISTING_RECIPIENT
# With the spool on (gateway/spool.py): MAIL FROM's look-up, then DATA's one INSERT, which
# commits itself; the worker stores it later.
ONE_SPOOLED_MESSAGE = 2
# deliver_due: BEGIN, the due notifications (locked), earlier ones of the same people, the
# lease, the queued tasks deleted, COMMIT; the claimed notifications loaded.
DELIVERY_BATCH = 7
# Each e-mail: is it still this worker's, with time left on the lease (a read, no commit);
# BEGIN, "sent", the audit event (one INSERT), COMMIT.
PER_EMAIL = 5
# A Password Notification, beyond that: is it still wanted (one read: the account waits for
# a password, and no newer one is queued); in its transaction, the password set.
PER_PASSWORD_NOTIFICATION = 2
# The worker's linker, for however many events wait in one organisation's chain: the chains
# with events waiting; BEGIN, the chain's head (locked), the events, all of them linked in one
# UPDATE, the head moved on, COMMIT.
LINKING_ONE_CHAIN = 7
# GET /scim/v2/Users from an identity provider: the token found by its hash (its last use was
# noted less than a minute ago: no write; a valid token does not touch the throttle); one page of
# senders with what provisioning keeps of them, and their COUNT.
PROVISIONING_LISTING = 3  # with 1 sender and with 20: never a statement per row
# The same with filter=userName eq "…", the look-up Entra ID and Okta make before each change.
PROVISIONING_LOOKUP = 3


@pytest.fixture(autouse=True)
def _clock_stands_still(_reset_clock):
    clock.freeze()


@pytest.fixture
def bob(org, sender_client, smtp, client_factory):
    """Bob's browser: Alice's first message to him came, he chose his password and read his
    inbox (so this process has unwrapped Northwind's key: see ``hushpost.crypto.keys``)."""
    assert send(sender_client, to=BOB, subject="Welcome").status_code == 302
    run_worker()
    browser = client_factory()
    first_login(browser, smtp, org, BOB)
    assert browser.get(f"/r/{org.slug}/").status_code == 200
    return browser


def _uid(response) -> str:
    assert response.status_code == 302, response.content[:400]
    return response["Location"].rsplit("/", 1)[1]


@contextmanager
def exactly(budget: int, what: str):
    """The statements run on this thread's connection; fails listing them unless ``budget``."""
    with CaptureQueriesContext(connection) as run:
        yield run
    _check(budget, what, [q["sql"] for q in run.captured_queries])


def _check(budget: int, what: str, statements: list[str]) -> None:
    listing = "\n".join(f"{n}. {sql}" for n, sql in enumerate(statements, 1))
    assert len(statements) == budget, f"{what}: {len(statements)} statements, budget {budget}\n{listing}"


def test_a_sender_sends_one_message_to_one_existing_recipient(sender_client, bob):
    # Which key version is current is read again after a minute: a send just before keeps
    # this one inside that minute, however slow the set-up was.
    send(sender_client, to=BOB, subject="Your appointment")
    with exactly(SEND_TO_ONE_EXISTING_RECIPIENT, "send"):
        response = send(sender_client, to=BOB, subject="Your results")
    assert Message.objects.get(uid=_uid(response)).deliveries.get().recipient.email == BOB


def test_a_recipient_opens_a_message_and_opens_it_again(org, sender_client, bob):
    uid = _uid(send(sender_client, to=BOB, subject="Your results", read_receipt=True))
    page = f"/r/{org.slug}/m/{uid}"
    with exactly(RECIPIENT_OPENS_A_MESSAGE_FIRST, "first open"):
        assert "Your results" in bob.get(page).content.decode()
    assert Notification.objects.filter(kind=Notification.Kind.READ_RECEIPT).count() == 1
    with exactly(RECIPIENT_OPENS_A_MESSAGE_AGAIN, "later open"):
        assert "Your results" in bob.get(page).content.decode()


def test_a_recipients_inbox_costs_the_same_with_1_and_30_messages(org, sender_client, bob):
    with exactly(RECIPIENT_INBOX, "inbox of 1"):
        assert "Welcome" in bob.get(f"/r/{org.slug}/").content.decode()
    for n in range(29):
        send(sender_client, to=BOB, subject=f"Statement {n}")
    with exactly(RECIPIENT_INBOX, "inbox of 30"):
        page = bob.get(f"/r/{org.slug}/").content.decode()
    assert "Welcome" in page and "Statement 28" in page


@pytest.mark.parametrize("replies", [0, 2])
def test_the_senders_page_of_a_message(org, sender_client, bob, replies):
    uid = _uid(send(sender_client, to=BOB, subject="Your results"))
    for n in range(replies):
        answer = {"body": f"Thank you ({n})", "body_format": "text", "send_token": secrets.token_urlsafe(24)}
        assert bob.post(f"/r/{org.slug}/m/{uid}/reply", answer).status_code == 302
    run_worker()
    sender_client.get(f"/app/m/{uid}")
    budget = SENDERS_MESSAGE_PAGE + (REPLIES_ON_THE_SENDERS_PAGE if replies else 0) + PER_REPLY_ON_THE_SENDERS_PAGE * replies
    with exactly(budget, f"sender's page, {replies} replies"):
        assert "Your results" in sender_client.get(f"/app/m/{uid}").content.decode()


@contextmanager
def statements_in_threads(prefix: str):
    """What ``CaptureQueriesContext`` counts, on the connections that threads named ``prefix``...
    open meanwhile (each thread has its own; the list is complete once the threads are idle)."""
    opened = {}

    def watch(sender, connection, **kwargs):
        if threading.current_thread().name.startswith(prefix) and id(connection) not in opened:
            connection.force_debug_cursor = True  # as CaptureQueriesContext does for its own thread
            opened[id(connection)] = connection

    statements: list[str] = []
    connection_created.connect(watch)
    try:
        yield statements
    finally:
        connection_created.disconnect(watch)
        for each in opened.values():
            statements += [q["sql"] for q in each.queries_log]


def test_one_message_through_the_smtp_gateway(make_gateway, relaying, alice):
    """MAIL FROM, RCPT TO and DATA from Northwind's mail server, to Bob who has an account."""
    warm = make_gateway()
    assert submit(warm.port, mail("[secure] Welcome"))[0] == 250  # Bob's account
    assert submit(warm.port, mail("[secure] Your appointment"))[0] == 250  # the key, as for Compose
    with statements_in_threads("hushpost-smtpd") as statements:
        gateway = make_gateway()  # its threads open their connections while counted
        assert submit(gateway.port, mail("[secure] Your results")) == (250, "2.0.0 stored as a secure message")
    _check(ONE_GATEWAY_MESSAGE, "gateway message", statements)


def test_one_message_into_the_gateways_spool(make_gateway, relaying, alice, settings):
    settings.SMTPD_SPOOL = True
    warm = make_gateway()
    for subject in ("[secure] Welcome", "[secure] Your appointment"):  # the organisation's key, read and kept
        assert submit(warm.port, mail(subject))[0] == 250
    with statements_in_threads("hushpost-smtpd") as statements:
        gateway = make_gateway()
        assert submit(gateway.port, mail("[secure] Your results")) == (
            250, "2.0.0 queued to be stored as a secure message")
    _check(ONE_SPOOLED_MESSAGE, "spooled gateway message", statements)


@pytest.mark.parametrize("emails", [1, 5])
def test_a_delivery_batch_costs_the_same_per_email(sender_client, smtp, emails, monkeypatch):
    people = [f"reader{n}@client.example" for n in range(emails)]
    assert send(sender_client, to=", ".join(people), subject="Welcome").status_code == 302
    run_worker()  # their password and first message e-mails: now they are known
    assert send(sender_client, to=", ".join(people), subject="Your results").status_code == 302
    monkeypatch.setattr(delivery.relay, "down", False)
    monkeypatch.setattr(delivery.relay, "probed_at", time.monotonic())  # asked a moment ago
    with exactly(DELIVERY_BATCH + PER_EMAIL * emails, f"batch of {emails}"):
        assert delivery.deliver_due() == emails
    assert Notification.objects.filter(status=Notification.Status.SENT).count() == 3 * emails


@pytest.mark.parametrize("people", [1, 5])
def test_a_delivery_batch_to_new_recipients_costs_the_same_per_person(sender_client, smtp, people, monkeypatch):
    """Each new person: a Password Notification, then the Secure Messaging Notification it unlocks."""
    assert send(sender_client, to="reader@client.example", subject="Welcome").status_code == 302
    run_worker()  # the organisation's audit chain has begun
    assert send(sender_client, to=", ".join(f"new{n}@client.example" for n in range(people)),
                subject="Your results").status_code == 302
    monkeypatch.setattr(delivery.relay, "down", False)
    monkeypatch.setattr(delivery.relay, "probed_at", time.monotonic())
    budget = DELIVERY_BATCH + (2 * PER_EMAIL + PER_PASSWORD_NOTIFICATION) * people
    with exactly(budget, f"batch for {people} new people"):
        assert delivery.deliver_due() == 2 * people
    assert Notification.objects.filter(status=Notification.Status.SENT).count() == 2 + 2 * people


@pytest.mark.parametrize("events", [1, 30])
def test_chaining_the_audit_trail_costs_the_same_however_many_events_wait(org, events):
    record("admin", org=org, detail="the chain begins")
    linker.link()
    for n in range(events):
        record("admin", org=org, detail=f"event {n}")
    with exactly(LINKING_ONE_CHAIN, f"linking {events} event(s)"):
        assert linker.link() == events


def test_a_provisioning_listing_costs_the_same_with_1_and_20_senders(org, client_factory):
    ada = make_sender(org, "ada", "Ada Admin", admin=True)
    provider = client_factory(HTTP_AUTHORIZATION=f"Bearer {scim_tokens.issue(org, 'Entra', by=ada)[1]}")
    provider.get("/scim/v2/Users")  # the token's use is noted (once a minute)
    for count in (1, 20):
        while User.objects.filter(org=org, role=User.Role.SENDER).count() < count:
            make_sender(org, f"s{secrets.token_hex(4)}", "Sender")
        with exactly(PROVISIONING_LISTING, f"provisioning listing of {count}"):
            page = provider.get("/scim/v2/Users")
        assert len(page.json()["Resources"]) == count
        with exactly(PROVISIONING_LOOKUP, "provisioning lookup"):
            found = provider.get("/scim/v2/Users", {"filter": 'userName eq "ada@northwind.example"'})
        assert found.json()["totalResults"] == 1
