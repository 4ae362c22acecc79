"""Conversations: what the sender decided for a message holds for every message under it.

"No Print" on the sender's message refuses printing of every reply
in its conversation; a recall takes the recalled message's subject out of
everything the recipient sees, their own earlier replies included.
"""

from __future__ import annotations

import pytest

from hushpost.messaging.models import Delivery, Message
from tests.helpers import send
from tests.personas import first_login

ANN, BEN, CAROL = "ann@client.example", "ben@client.example", "carol@client.example"
SUBJECT, BODY = "Settlement QX41", "<p>Figures QX42</p>"


@pytest.fixture
def conversation(sender_client, client_factory, smtp, deliver, org):
    """Alice's message to Ann (Cc Ben, Carol), and Ann's Reply All, with each reader's browser."""

    def start(**options):
        send(sender_client, to=ANN, cc=f"{BEN}, {CAROL}", subject=SUBJECT, body=BODY, **options)
        deliver()
        readers = {}
        for n, address in enumerate((ANN, BEN, CAROL)):
            readers[address] = client_factory()
            first_login(readers[address], smtp, org, address, new_password=f"Lantern-orchard-velvet-{n}7")
        original = Message.objects.get(kind="message")
        r = readers[ANN].post(f"/r/{org.slug}/m/{original.uid}/reply",
                              {"body": "Agreed QX43", "send_token": "a" * 24, "reply_all": "True"})
        assert r.status_code == 302
        return original, Message.objects.get(kind="reply"), readers

    return start


def _sender_reply(sender_client, reply: Message, **options) -> Message:
    """Alice replies to Ann's reply from Compose, without any restriction of its own."""
    r = send(sender_client, to=ANN, subject="Re: " + SUBJECT, in_reply_to=reply.uid, **options)
    assert r.status_code == 302
    return Message.objects.filter(kind="message").latest("id")


def test_no_print_holds_for_every_reply_in_the_conversation(conversation, sender_client, org):
    original, reply, readers = conversation(restriction="no_print")
    senders_reply = _sender_reply(sender_client, reply)
    base = f"/r/{org.slug}/m/"
    for reader, uid in ((readers[ANN], original.uid), (readers[ANN], reply.uid), (readers[BEN], reply.uid), (readers[ANN], senders_reply.uid)):
        r = reader.get(f"{base}{uid}/print")
        assert r.status_code == 403 and "cannot be printed" in r.content.decode()
        page = reader.get(f"{base}{uid}").content.decode()
        assert f"{uid}/print" not in page
        assert "Restricted by the sender: no printing." in page
        assert 'class="message-card card no-print"' in page  # the print stylesheet hides its content
        # Browsers print the page's title in the header: a restricted one names no subject.
        assert "<title>Restricted message" in page
    # Ben replies to Ann's reply: the page quotes it for the screen only, as its own page shows it.
    page = readers[BEN].get(f"{base}{reply.uid}/reply").content.decode()
    assert "Agreed QX43" in page and 'class="card quoted no-print"' in page
    assert "the original message is not printed" in page
    # The sender's own pages treat the conversation the same way, and say why.
    page = sender_client.get(f"/app/m/{reply.uid}").content.decode()
    assert 'class="message-card card no-print"' in page
    page = sender_client.get(f"/app/m/{senders_reply.uid}").content.decode()
    assert 'the conversation began with a "No Print" message' in page


def test_an_unrestricted_conversation_prints(conversation, sender_client, org):
    original, reply, readers = conversation()
    for reader in (readers[ANN], readers[BEN]):
        assert reader.get(f"/r/{org.slug}/m/{reply.uid}/print").status_code == 200
        assert f"{reply.uid}/print" in reader.get(f"/r/{org.slug}/m/{reply.uid}").content.decode()
    page = readers[BEN].get(f"/r/{org.slug}/m/{reply.uid}/reply").content.decode()
    assert 'class="card quoted"' in page


def test_a_recall_takes_the_subject_out_of_the_recipients_own_replies(conversation, sender_client, org):
    original, reply, readers = conversation()
    senders_reply = _sender_reply(sender_client, reply)
    ann, ben = Delivery.objects.get(message=original, recipient__email=ANN), readers[BEN]
    sender_client.post(f"/app/m/{original.uid}/recall", {"recipient": ann.recipient_id})
    base = f"/r/{org.slug}"
    pages = {path: readers[ANN].get(base + path) for path in
             ("/", "/sent", f"/m/{reply.uid}", f"/m/{reply.uid}/print", f"/m/{senders_reply.uid}")}
    for path, r in pages.items():
        assert r.status_code == 200, path
        text = r.content.decode()
        assert "QX41" not in text and "QX42" not in text, path
    assert "Re: a message the sender recalled" in pages["/sent"].content.decode()
    assert "Agreed QX43" in pages[f"/m/{reply.uid}"].content.decode()  # her own words stay hers
    # Ben, for whom nothing was recalled, still sees the conversation as it was.
    assert "Re: Settlement QX41" in ben.get(base + "/").content.decode()


def test_after_a_recall_nothing_under_the_message_reaches_the_recipient_or_takes_a_reply(
        conversation, sender_client, org):
    original, reply, readers = conversation()
    ben = Delivery.objects.get(message=original, recipient__email=BEN).recipient
    sender_client.post(f"/app/m/{original.uid}/recall", {"recipient": ben.pk})
    base = f"/r/{org.slug}"
    inbox = readers[BEN].get(base + "/").content.decode()
    assert "QX41" not in inbox and "Re: a message the sender recalled" in inbox
    page = readers[BEN].get(f"{base}/m/{reply.uid}").content.decode()
    assert "QX41" not in page and f"{reply.uid}/reply" not in page
    r = readers[BEN].post(f"{base}/m/{reply.uid}/reply", {"body": "late", "send_token": "b" * 24})
    assert r.status_code == 403 and "recalled" in r.content.decode()
    assert readers[BEN].get(f"{base}/m/{reply.uid}/reply").status_code == 403
    # Carol's Reply All to Ann's reply no longer reaches Ben.
    page = readers[CAROL].get(f"{base}/m/{reply.uid}/reply?all=1").content.decode()
    assert BEN not in page
    r = readers[CAROL].post(f"{base}/m/{reply.uid}/reply",
                            {"body": "Noted", "send_token": "c" * 24, "reply_all": "True"})
    assert r.status_code == 302
    carols = Message.objects.get(author__email=CAROL)
    assert BEN not in set(carols.deliveries.values_list("recipient__email", flat=True))
