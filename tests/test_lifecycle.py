"""The secure-message procedure end to end, through HTTP and a real SMTP server."""

from __future__ import annotations

import re
from datetime import timedelta

from hushpost.lib import clock
from hushpost.messaging.models import Delivery, Message
from tests.helpers import MESSAGE_SUBJECT, PASSWORD_SUBJECT, path_of, send
from tests.personas import NEW_PASSWORD, first_login, sign_in_again


def test_new_recipient_gets_password_then_message_notification(sender_client, smtp, deliver, org):
    r = send(sender_client, to="bob@client.example", subject="Scan results")
    assert r.status_code == 302
    deliver()
    [password_mail] = smtp.to("bob@client.example", PASSWORD_SUBJECT)
    [notice] = smtp.to("bob@client.example", MESSAGE_SUBJECT)
    for mail in (password_mail, notice):
        assert mail.message["Auto-Submitted"] == "auto-generated"
        assert mail.message["Message-ID"] and mail.message["Date"]
        assert "Northwind Health" in str(mail.message["From"])
        assert mail.text and mail.html
        assert "Scan results" not in mail.text + mail.html
        assert "normal" not in mail.text + mail.html
    assert len(password_mail.temporary_password()) == 23
    # Each link names its e-mail by a code, never the address it went to.
    for mail in (password_mail, notice):
        assert re.fullmatch(rf"https?://[^/]+/r/{org.slug}/n/[A-Za-z0-9_-]{{35}}", mail.link())
    assert password_mail.link() != notice.link()


def test_second_message_sends_only_the_message_notification(sender_client, smtp, deliver):
    send(sender_client, to="bob@client.example", subject="One")
    send(sender_client, to="bob@client.example", subject="Two")
    deliver()
    assert len(smtp.to("bob@client.example", PASSWORD_SUBJECT)) == 1
    assert len(smtp.to("bob@client.example", MESSAGE_SUBJECT)) == 2


def test_recipient_must_set_password_before_anything_else(sender_client, client_factory, smtp, deliver, org):
    send(sender_client, to="bob@client.example")
    deliver()
    bob = client_factory()
    temp = smtp.wait_for("bob@client.example", PASSWORD_SUBJECT)[0].temporary_password()
    r = bob.post(f"/r/{org.slug}/login", {"email": "bob@client.example", "password": temp.upper().replace("-", " ")})
    assert r.status_code == 302
    r = bob.get(f"/r/{org.slug}/")
    assert r.status_code == 302 and r["Location"] == f"/r/{org.slug}/password?next=%2Fr%2F{org.slug}%2F"
    r = bob.get(f"/r/{org.slug}/sent")
    assert r["Location"].startswith(f"/r/{org.slug}/password")
    r = bob.post(f"/r/{org.slug}/logout")
    assert r.status_code == 302
    # The temporary password opened its one session; while that may still be
    # open, signing in with it again is refused and offers nothing.
    r = bob.post(f"/r/{org.slug}/login", {"email": "bob@client.example", "password": temp})
    assert r.status_code == 400 and "already been used to sign in" in r.content.decode()
    assert 'name="token"' not in r.content.decode()
    # Once that session has run out, it offers a new temporary password.
    clock.travel(timedelta(minutes=31))
    r = bob.post(f"/r/{org.slug}/login", {"email": "bob@client.example", "password": temp})
    assert r.status_code == 400 and "already been used" in r.content.decode()
    deliver()
    r = bob.post(f"/r/{org.slug}/login/resend", {"token": _resend_token(r)})
    assert r.status_code == 302
    deliver()
    temp = smtp.wait_for("bob@client.example", PASSWORD_SUBJECT, count=2)[-1].temporary_password()
    r = bob.post(f"/r/{org.slug}/login", {"email": "bob@client.example", "password": temp})
    assert r.status_code == 302
    r = bob.post(f"/r/{org.slug}/password", {"password": temp, "confirm": temp})
    assert r.status_code == 400
    r = bob.post(f"/r/{org.slug}/password", {"password": "short", "confirm": "short"})
    assert b"at least 12 characters" in r.content
    r = bob.post(f"/r/{org.slug}/password", {"password": "aaaaaaaaaaaa", "confirm": "aaaaaaaaaaaa"})
    assert b"stronger password" in r.content
    r = bob.post(f"/r/{org.slug}/password", {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert r.status_code == 302
    assert bob.get(f"/r/{org.slug}/").status_code == 200
    # The temporary password is spent.
    other = client_factory()
    r = other.post(f"/r/{org.slug}/login", {"email": "bob@client.example", "password": temp})
    assert r.status_code == 400 and b"don&#x27;t match" in r.content


def test_read_receipt_reply_and_the_senders_reply(sender_client, client_factory, smtp, deliver, org, alice):
    send(sender_client, to="bob@client.example", subject="Your test results", read_receipt=True,
         restriction="no_print", expire_days=7)
    deliver()
    bob = client_factory()
    first_login(bob, smtp, org, "bob@client.example")
    notice = smtp.wait_for("bob@client.example", MESSAGE_SUBJECT)[0]
    # The link is a GET that changes nothing: it forwards to the message once signed in.
    r = bob.get(path_of(notice.link()))
    assert r.status_code == 302
    r = bob.get(r["Location"])
    assert r.status_code == 200
    page = r.content.decode()
    assert "Your test results" in page and "<b>normal</b>" in page
    assert "Expires" in page and "/print" not in page
    assert r["Cache-Control"].startswith("no-store")
    bob.get(r.request["PATH_INFO"])  # a second open sends no second receipt
    deliver()
    [receipt] = smtp.to(alice.email, "Secure Messaging Read Receipt")
    assert "bob@client.example" in receipt.text
    message = Message.objects.get(kind="message")
    r = bob.post(f"/r/{org.slug}/m/{message.uid}/reply",
                 {"body": "Thank you, see you Tuesday.", "send_token": "t" * 24})
    assert r.status_code == 302
    deliver()
    [reply_mail] = smtp.to(alice.email, "Secure Messaging Reply Notification")
    assert "Tuesday" not in reply_mail.text
    inbox = sender_client.get("/app/").content.decode()
    assert "Re: Your test results" in inbox
    reply = Message.objects.get(kind="reply")
    page = sender_client.get(f"/app/m/{reply.uid}").content.decode()
    assert "see you Tuesday" in page
    # One word for one act: the sender's button is "Reply", as the recipient's is.
    assert f'href="/app/compose?reply_to={reply.uid}">Reply</a>' in page and "Answer" not in page
    compose = sender_client.get(f"/app/compose?reply_to={reply.uid}").content.decode()
    assert "<h1>Reply</h1>" in compose and "Answer" not in compose
    status = sender_client.get(f"/app/m/{message.uid}").content.decode()
    assert "Notified" in status and "Not yet" not in status
    # The sender replies to the reply; Bob gets only a message notification.
    r = send(sender_client, to="bob@client.example", subject="Re: Your test results",
             in_reply_to=reply.uid)
    assert r.status_code == 302
    deliver()
    assert len(smtp.to("bob@client.example", MESSAGE_SUBJECT)) == 2
    assert len(smtp.to("bob@client.example", PASSWORD_SUBJECT)) == 1


def test_restricted_no_reply_refuses_forged_reply_and_print(sender_client, client_factory, smtp, deliver, org):
    send(sender_client, to="bob@client.example", restriction="no_print_no_reply")
    deliver()
    bob = client_factory()
    first_login(bob, smtp, org, "bob@client.example")
    message = Message.objects.get()
    page = bob.get(f"/r/{org.slug}/m/{message.uid}").content.decode()
    assert "/reply" not in page and "/print" not in page
    r = bob.post(f"/r/{org.slug}/m/{message.uid}/reply", {"body": "forged", "send_token": "f" * 24})
    assert r.status_code == 403 and "replies are not allowed" in r.content.decode()
    r = bob.get(f"/r/{org.slug}/m/{message.uid}/print")
    assert r.status_code == 403 and "cannot be printed" in r.content.decode()
    assert Message.objects.filter(kind="reply").count() == 0


def test_expired_message_refuses_reply_but_prints_and_deletes(sender_client, client_factory, smtp, deliver, org):
    send(sender_client, to="bob@client.example", expire_days=1)
    deliver()
    bob = client_factory()
    first_login(bob, smtp, org, "bob@client.example")
    message = Message.objects.get()
    assert "/reply" in bob.get(f"/r/{org.slug}/m/{message.uid}").content.decode()
    clock.travel(timedelta(days=1, minutes=1))
    sign_in_again(bob, org, "bob@client.example")
    page = bob.get(f"/r/{org.slug}/m/{message.uid}").content.decode()
    assert "expired on" in page and "/reply" not in page and "/print" in page
    r = bob.post(f"/r/{org.slug}/m/{message.uid}/reply", {"body": "late", "send_token": "l" * 24})
    assert r.status_code == 403 and "expired" in r.content.decode()
    assert bob.get(f"/r/{org.slug}/m/{message.uid}/print").status_code == 200
    r = bob.post(f"/r/{org.slug}/m/{message.uid}/delete")
    assert r.status_code == 302
    assert Delivery.objects.get().deleted_at is not None
    assert bob.get(f"/r/{org.slug}/m/{message.uid}").status_code == 404


def test_expired_temporary_password_offers_a_new_one(sender_client, client_factory, smtp, deliver, org):
    send(sender_client, to="bob@client.example")
    deliver()
    temp = smtp.wait_for("bob@client.example", PASSWORD_SUBJECT)[0].temporary_password()
    clock.travel(timedelta(days=8))
    bob = client_factory()
    r = bob.post(f"/r/{org.slug}/login", {"email": "bob@client.example", "password": temp})
    page = r.content.decode()
    assert r.status_code == 400 and "temporary password expired" in page
    token = _resend_token(r)
    r = bob.post(f"/r/{org.slug}/login/resend", {"token": token})
    assert r.status_code == 302
    deliver()
    # The request cannot be replayed once it has done its job.
    r = bob.post(f"/r/{org.slug}/login/resend", {"token": token}, follow=True)
    assert "That request has expired" in r.content.decode()
    deliver()
    mails = smtp.wait_for("bob@client.example", PASSWORD_SUBJECT, count=2)
    assert len(mails) == 2
    fresh = mails[-1].temporary_password()
    assert fresh != temp
    r = bob.post(f"/r/{org.slug}/login", {"email": "bob@client.example", "password": fresh})
    assert r.status_code == 302


def test_sent_list_summarises_each_message(sender_client, client_factory, smtp, deliver, org):
    send(sender_client, to="bob@client.example, carol@client.example", subject="Board pack",
         read_receipt=True)
    deliver()
    bob = client_factory()
    first_login(bob, smtp, org, "bob@client.example")
    bob.get(f"/r/{org.slug}/m/{Message.objects.get().uid}")
    page = sender_client.get("/app/sent").content.decode()
    assert "Board pack" in page and "Opened by 1 of 2" in page and "Receipt" in page
    assert "Failed" not in page and "Pending" not in page


def test_recipient_sees_their_replies_under_the_message(sender_client, client_factory, smtp, deliver, org):
    send(sender_client, to="bob@client.example", subject="Appointment")
    deliver()
    bob = client_factory()
    first_login(bob, smtp, org, "bob@client.example")
    message = Message.objects.get()
    bob.post(f"/r/{org.slug}/m/{message.uid}/reply", {"body": "Works for me", "send_token": "r" * 24})
    page = bob.get(f"/r/{org.slug}/m/{message.uid}").content.decode()
    assert "Your replies" in page
    reply = Message.objects.get(kind="reply")
    assert f"/r/{org.slug}/m/{reply.uid}" in page
    sent = bob.get(f"/r/{org.slug}/sent").content.decode()
    assert "Re: Appointment" in sent
    mine = bob.get(f"/r/{org.slug}/m/{reply.uid}").content.decode()
    assert "Works for me" in mine and "/delete" not in mine


def _resend_token(response) -> str:
    return re.search(r'name="token" value="([^"]+)"', response.content.decode()).group(1)


def test_replies_to_replies_keep_the_expiry_and_reach_the_sender(
    sender_client, client_factory, smtp, deliver, org, alice
):
    send(sender_client, to="ann@client.example", cc="ben@client.example", expire_days=1)
    deliver()
    ann, ben = client_factory(), client_factory()
    first_login(ann, smtp, org, "ann@client.example")
    first_login(ben, smtp, org, "ben@client.example", new_password="Pebble-lighthouse-quill-27")
    original = Message.objects.get(kind="message")
    ann.post(f"/r/{org.slug}/m/{original.uid}/reply",
             {"body": "R1", "send_token": "a" * 24, "reply_all": "True"})
    r1 = Message.objects.get(kind="reply", author__email="ann@client.example")
    r = ben.post(f"/r/{org.slug}/m/{r1.uid}/reply",
                 {"body": "R2", "send_token": "b" * 24, "reply_all": "True"})
    assert r.status_code == 302
    r2 = Message.objects.get(kind="reply", author__email="ben@client.example")
    assert set(r2.deliveries.values_list("recipient__email", flat=True)) == {
        alice.email, "ann@client.example"}
    clock.travel(timedelta(days=2))
    sign_in_again(ann, org, "ann@client.example")
    r = ann.post(f"/r/{org.slug}/m/{r2.uid}/reply", {"body": "R3", "send_token": "c" * 24})
    assert r.status_code == 403 and "expired" in r.content.decode()
    assert "/reply" not in ann.get(f"/r/{org.slug}/m/{r2.uid}").content.decode()
