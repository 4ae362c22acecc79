"""A lost recipient asks where to sign in; the answer goes only to their mailbox."""

from __future__ import annotations

from datetime import timedelta

from hushpost.accounts.models import Throttle
from hushpost.lib import clock
from tests.helpers import send


def test_the_page_says_the_same_whether_or_not_an_account_exists(sender_client, client_factory, smtp, deliver, org):
    send(sender_client, to="bob@client.example")
    deliver()
    smtp.clear()
    client = client_factory()
    known = client.post("/find-my-portal", {"email": "Bob@Client.example"})
    unknown = client.post("/find-my-portal", {"email": "nobody@client.example"})
    assert known.status_code == unknown.status_code == 200
    assert known.content.decode().replace("bob@client.example", "X") == \
        unknown.content.decode().replace("nobody@client.example", "X")
    deliver()
    [mail] = smtp.to("bob@client.example", "Your Secure Messaging portals")
    assert f"/r/{org.slug}/login?email=bob%40client.example" in mail.text
    assert "Northwind Health" in mail.text
    assert not smtp.to("nobody@client.example")  # no account: no e-mail at all


def test_a_bad_address_is_explained(client, db):
    r = client.post("/find-my-portal", {"email": "not an address"})
    assert r.status_code == 400 and "Enter the e-mail address" in r.content.decode()


def test_an_address_gets_one_list_however_often_and_from_wherever_it_is_asked(
        sender_client, client_factory, smtp, deliver):
    send(sender_client, to="bob@client.example")
    deliver()
    smtp.clear()
    pages = set()
    for n in range(8):  # eight clients, one after the other
        r = client_factory().post("/find-my-portal", {"email": "bob@client.example"}, REMOTE_ADDR=f"198.51.100.{n + 1}")
        assert r.status_code == 200
        pages.add(r.content.decode())
    unknown = client_factory().post("/find-my-portal", {"email": "nobody@client.example"})
    deliver()
    assert len(smtp.to("bob@client.example", "Your Secure Messaging portals")) == 1
    # Sent, suppressed or no account: the page is the same.
    assert len(pages) == 1 and pages == {unknown.content.decode().replace("nobody@client.example", "bob@client.example")}
    # Counted by a hash: the table never holds the address.
    rows = list(Throttle.objects.filter(scope=Throttle.Scope.PORTAL_LIST).values_list("key", flat=True))
    assert rows and not any("bob" in key for key in rows)
    clock.travel(timedelta(minutes=16))  # the window has passed: one more may go
    client_factory().post("/find-my-portal", {"email": "bob@client.example"})
    deliver()
    assert len(smtp.to("bob@client.example", "Your Secure Messaging portals")) == 2
