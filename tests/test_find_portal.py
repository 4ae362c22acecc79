"""A lost recipient asks where to sign in; the answer goes only to their mailbox."""

from __future__ import annotations

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
