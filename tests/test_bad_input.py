"""Bad input gets a clear error, keeps what was typed, and stores nothing half-done."""

from __future__ import annotations

import pytest

from hushpost.messaging.models import Message
from hushpost.notifications.models import Notification
from tests.helpers import send


def _errors(response) -> str:
    return response.content.decode()


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"to": ""}, "This field is required."),
        ({"to": "not-an-address"}, "To: not a valid e-mail address: not-an-address"),
        ({"to": "bob@client.example, eve@@bad"}, "not a valid e-mail address: eve@@bad"),
        ({"cc": "nobody"}, "Cc: not a valid e-mail address: nobody"),
        ({"subject": ""}, "This field is required."),
        ({"subject": "   "}, "This field is required."),
        ({"subject": "Hello\r\nBcc: eve@evil.example"}, "The subject cannot contain line breaks."),
        ({"body": ""}, "Write a message before sending."),
        ({"body": "<p> </p><script>alert(1)</script>"}, "Write a message before sending."),
    ],
)
def test_compose_rejects_bad_input_and_keeps_the_draft(sender_client, fields, expected):
    data = {"to": "bob@client.example", "subject": "Quarterly statement",
            "body": "<p>Kept text</p>"} | fields
    r = send(sender_client, **data)
    assert r.status_code == 400
    page = _errors(r)
    assert expected in page.replace("&#x27;", "'")
    if fields.get("body", None) is None:
        assert "Kept text" in page  # nothing the sender typed is lost
    assert Message.objects.count() == 0
    assert Notification.objects.count() == 0


def test_oversized_body_is_refused_with_the_limit(sender_client, settings):
    settings.MAX_BODY_BYTES = 2000
    r = send(sender_client, to="bob@client.example", body="<p>" + "x" * 3000 + "</p>")
    assert r.status_code == 400
    assert "The message is too long: the limit is 2 KB." in _errors(r)
    assert Message.objects.count() == 0


def test_too_many_recipients(sender_client, settings):
    settings.MAX_RECIPIENTS = 2
    r = send(sender_client, to="a@x.example, b@x.example, c@x.example")
    assert "Send to at most 2 recipients at once." in _errors(r)
    assert Message.objects.count() == 0


def test_forged_send_token_is_refused(sender_client):
    r = send(sender_client, to="bob@client.example", token="short")
    assert r.status_code == 400 and "This form has expired" in _errors(r)


def test_double_clicked_send_stores_one_message(sender_client, smtp, deliver):
    first = send(sender_client, to="bob@client.example", token="same-token-0123456789")
    second = send(sender_client, to="bob@client.example", token="same-token-0123456789")
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert Message.objects.count() == 1
    deliver()
    assert len(smtp.to("bob@client.example", "Secure Messaging Notification")) == 1


def test_unconfirmed_send_shows_the_options_step(sender_client):
    r = send(sender_client, to="bob@client.example", confirm="")
    assert r.status_code == 200
    page = _errors(r)
    assert 'id="send-options"' in page and "open" in page.split('id="send-options"')[1][:200]
    for wording in ("Request Read Receipt", "Restricted - No Print, No Reply",
                    "Restricted - No Print", "Expire Message in", "7 Days", "30 Days"):
        assert wording in page
    assert Message.objects.count() == 0


def test_addresses_pasted_from_a_mail_client_are_accepted(sender_client):
    r = send(sender_client, to="Bob Smith <BOB@Client.example>; carol@client.example",
             cc="carol@client.example")
    assert r.status_code == 302
    message = Message.objects.get()
    emails = sorted(d.recipient.email for d in message.deliveries.all())
    assert emails == ["bob@client.example", "carol@client.example"]


def test_reply_id_of_someone_elses_message_is_not_found(sender_client, make_org, make_sender, client_factory):
    other_org = make_org("Other", "other.example")
    dave = make_sender(other_org, "dave")
    c = client_factory()
    c.force_login(dave, backend="hushpost.accounts.backends.HushpostBackend")
    send(c, to="x@client.example")
    theirs = Message.objects.get()
    r = send(sender_client, to="bob@client.example", in_reply_to=theirs.uid)
    assert r.status_code == 404
    assert sender_client.get(f"/app/compose?reply_to={theirs.uid}").status_code == 404
    assert Message.objects.count() == 1


@pytest.mark.parametrize("address", ["", "   ", "alice", "alice@", "@northwind.example", "a b@northwind.example"])
def test_sign_in_asks_again_for_an_address_that_is_not_one(client, db, address):
    r = client.post("/login", {"email": address})
    page = r.content.decode()
    assert r.status_code == 400
    assert "Enter your e-mail address, for example name@example.org." in page
    assert 'name="password"' not in page  # still the first step


def test_sign_in_next_asks_for_the_password_of_any_address(client, db, alice):
    for address in (alice.email, "nobody@unknown.example"):
        r = client.post("/login", {"email": address})
        page = r.content.decode()
        assert r.status_code == 200
        assert f'value="{address}" readonly' in page and 'name="password"' in page
    # A link with a malformed address starts over at the first step.
    assert 'name="password"' not in client.get("/login", {"email": "<script>"}).content.decode()
