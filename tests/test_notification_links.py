"""E-mails' links name the e-mail by a code, never the recipient's address, over real SMTP."""

from __future__ import annotations

import base64
import re
from datetime import timedelta
from urllib.parse import unquote

from django.test import Client

from hushpost.accounts.models import User
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock
from hushpost.notifications.models import Notification
from tests.helpers import MESSAGE_SUBJECT, PASSWORD_SUBJECT, path_of, send
from tests.personas import NEW_PASSWORD, first_login

BOB = "bob@client.example"


def _filled_in(page: str) -> str:
    return re.search(r'<input id="email" name="email" type="email"[^>]* value="([^"]*)"', page).group(1)


def _next(page: str) -> str:
    return unquote(re.search(r'action="/r/[^/]+/login\?next=([^"]*)"', page).group(1))


def test_no_link_in_any_e_mail_carries_the_address(sender_client, smtp, deliver, org):
    send(sender_client, to=BOB, subject="Scan results")
    deliver()
    mails = smtp.to(BOB)
    assert {m.subject for m in mails} == {PASSWORD_SUBJECT, MESSAGE_SUBJECT}
    for mail in mails:
        urls = re.findall(r"https?://[^\s\"<>]+", mail.text + mail.html)
        assert urls
        assert not [u for u in urls if "bob" in unquote(u).lower() or "email=" in u]


def test_no_link_or_bounce_address_shows_the_key_a_temporary_password_comes_from(
        sender_client, smtp, deliver, org, settings):
    settings.BOUNCE_ADDRESS = "bounces@bounce.northwind.example"
    send(sender_client, to=BOB, subject="Scan results")
    deliver()
    [password_mail] = smtp.to(BOB, PASSWORD_SUBJECT)
    key = Notification.objects.get(kind=Notification.Kind.PASSWORD).key
    code = path_of(password_mail.link()).rsplit("/", 1)[1]
    assert key.bytes not in base64.urlsafe_b64decode(code + "=")
    tag = password_mail.mail_from.split("+", 1)[1].split("@")[0]
    assert base64.b32encode(key.bytes).decode().rstrip("=").lower() not in tag
    assert key.hex not in password_mail.raw.decode(errors="replace")


def test_the_link_opens_the_sign_in_page_with_the_address_filled_in(sender_client, smtp, deliver, org):
    send(sender_client, to=BOB, subject="Scan results")
    deliver()
    [notice] = smtp.to(BOB, MESSAGE_SUBJECT)
    anonymous = Client()
    r = anonymous.get(path_of(notice.link()))
    page = r.content.decode()
    assert r.status_code == 200 and _filled_in(page) == BOB
    assert re.fullmatch(rf"/r/{org.slug}/m/[\w-]+", _next(page))  # on to the message once signed in

    # Signing in from there lands on the message.
    first_login(anonymous, smtp, org, BOB)
    r = anonymous.get(path_of(notice.link()))
    assert r.status_code == 302 and r["Location"] == _next(page)
    assert "Scan results" in anonymous.get(r["Location"]).content.decode()


def test_the_password_e_mails_link_fills_in_the_address_too(sender_client, smtp, deliver, org):
    send(sender_client, to=BOB)
    deliver()
    [password_mail] = smtp.to(BOB, PASSWORD_SUBJECT)
    page = Client().get(path_of(password_mail.link())).content.decode()
    assert _filled_in(page) == BOB and _next(page) == f"/r/{org.slug}/"


def test_an_unknown_or_altered_code_gets_the_plain_sign_in_page(sender_client, smtp, deliver, org, make_org):
    send(sender_client, to=BOB)
    deliver()
    [notice] = smtp.to(BOB, MESSAGE_SUBJECT)
    code = path_of(notice.link()).rsplit("/", 1)[1]
    plain = Client().get(f"/r/{org.slug}/login").content.decode()
    altered = code[:17] + ("A" if code[17] != "A" else "B") + code[18:]
    # The last letter carries two spare bits: flipping only those spells the same bytes another way.
    respelled = code[:-1] + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(code[-1]) ^ 1]
    other = make_org("Harbour Legal")
    for path in (f"/r/{org.slug}/n/{altered}", f"/r/{org.slug}/n/{respelled}",
                 f"/r/{org.slug}/n/nothing-here", f"/r/{other.slug}/n/{code}"):
        r = Client().get(path)
        # Word for word the page with no code: nothing says whether a code exists.
        page = r.content.decode().replace(other.name, org.name).replace(other.slug, org.slug)
        assert r.status_code == 200 and _without_token(page) == _without_token(plain), path
        assert BOB not in r.content.decode()


def test_guessing_codes_is_throttled(sender_client, smtp, deliver, org, settings):
    settings.LOOKUPS_PER_WINDOW = 3
    send(sender_client, to=BOB)
    deliver()
    [notice] = smtp.to(BOB, MESSAGE_SUBJECT)
    guesser = Client(REMOTE_ADDR="203.0.113.9")
    assert _filled_in(guesser.get(path_of(notice.link())).content.decode()) == BOB  # a real code costs nothing
    for _ in range(3):
        guesser.get(f"/r/{org.slug}/n/{'A' * 35}")
    # Its share used up, not even a real code is looked at from there until the window ends.
    assert _filled_in(guesser.get(path_of(notice.link())).content.decode()) == ""
    assert _filled_in(Client(REMOTE_ADDR="198.51.100.4").get(path_of(notice.link())).content.decode()) == BOB


def test_the_address_is_still_filled_in_from_an_older_link(client, org):
    page = client.get(f"/r/{org.slug}/login?email=bob%40client.example").content.decode()
    assert _filled_in(page) == BOB


def test_asking_for_a_new_temporary_password_returns_without_the_address_in_the_url(
        sender_client, smtp, deliver, org):
    send(sender_client, to=BOB)
    deliver()
    [password_mail] = smtp.to(BOB, PASSWORD_SUBJECT)
    clock.travel(timedelta(days=8))
    recipient = Client()
    r = recipient.post(f"/r/{org.slug}/login", {"email": BOB, "password": password_mail.temporary_password()})
    token = re.search(r'name="token" value="([^"]+)"', r.content.decode()).group(1)
    r = recipient.post(f"/r/{org.slug}/login/resend", {"token": token})
    assert r.status_code == 302 and "bob" not in r["Location"] and f"/r/{org.slug}/n/" in r["Location"]
    assert _filled_in(recipient.get(r["Location"]).content.decode()) == BOB
    deliver()
    assert path_of(smtp.to(BOB, PASSWORD_SUBJECT)[-1].link()) == r["Location"]  # the new e-mail's own link


def _without_token(page: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", page)


REFERENCE = re.compile(r"Reference:? ([2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4})")


def _reference(text: str) -> str:
    return REFERENCE.search(text).group(1)


def test_the_reference_code_matches_from_e_mail_to_sign_in_page_to_both_portals(
        sender_client, smtp, deliver, org):
    uid = path_of(send(sender_client, to=BOB, subject="Scan results")["Location"]).rstrip("/").rsplit("/", 1)[1]
    deliver()
    [notice] = smtp.to(BOB, MESSAGE_SUBJECT)
    code = _reference(notice.text)
    assert f">{code}</strong>" in notice.html
    anonymous = Client()
    page = anonymous.get(path_of(notice.link())).content.decode()
    assert f"Reference <strong class=\"reference\">{code}</strong>: the same code is in your e-mail" in page
    # The sender finds it on the Sent row and the message's page.
    assert code in sender_client.get("/app/sent").content.decode()
    assert code in sender_client.get(f"/app/m/{uid}").content.decode()
    # The recipient, who typed the portal's address, finds it in the inbox and on the message.
    first_login(anonymous, smtp, org, BOB)
    assert code in anonymous.get(f"/r/{org.slug}/").content.decode()
    assert code in anonymous.get(f"/r/{org.slug}/m/{uid}").content.decode()
    # Another message has another code.
    send(sender_client, to=BOB, subject="Second")
    deliver()
    assert _reference(smtp.to(BOB, MESSAGE_SUBJECT)[-1].text) != code


def test_every_e_mails_link_shows_that_e_mails_code(sender_client, smtp, deliver, org):
    send(sender_client, to=BOB)
    deliver()
    for mail in smtp.to(BOB):
        page = Client().get(path_of(mail.link())).content.decode()
        assert f'<strong class="reference">{_reference(mail.text)}</strong>' in page


def test_every_e_mail_says_what_is_never_asked_and_where_to_go_without_the_link(sender_client, smtp, deliver, org):
    send(sender_client, to=BOB)
    deliver()
    for mail in smtp.to(BOB):
        for part in (mail.text, mail.html):
            assert "never asks by e-mail for your password, to open an attachment, or to pay" in part
            assert f"testserver/r/{org.slug}/" in part or f"/r/{org.slug}/" in part
        # The portal's address is text to type, never a link.
        assert not re.search(r'href="[^"]*/r/[^"/]+/"', mail.html)


def _receipt_and_reply(sender_client, smtp, deliver, org, alice, subject):
    r = send(sender_client, to=BOB, subject=subject, read_receipt=True)
    uid = path_of(r["Location"]).rstrip("/").rsplit("/", 1)[1]
    deliver()
    code = _reference(smtp.to(BOB, MESSAGE_SUBJECT)[0].text)
    bob = Client()
    first_login(bob, smtp, org, BOB)
    bob.get(f"/r/{org.slug}/m/{uid}")
    bob.post(f"/r/{org.slug}/m/{uid}/reply", {"body": "Thank you.", "send_token": "t" * 24})
    deliver()
    [receipt] = smtp.to(alice.email, "Secure Messaging Read Receipt")
    [reply] = smtp.to(alice.email, "Secure Messaging Reply Notification")
    return code, receipt, reply


def test_receipts_and_reply_notices_name_the_message_by_its_code_not_its_subject(
        sender_client, smtp, deliver, org, alice):
    code, receipt, reply = _receipt_and_reply(sender_client, smtp, deliver, org, alice, "Tuesday appointment")
    for mail in (receipt, reply):
        assert code in mail.text and code in mail.html
        assert "Tuesday" not in mail.text + mail.html


def test_where_the_policy_allows_receipts_and_reply_notices_name_the_subject(
        sender_client, smtp, deliver, org, alice):
    org.receipt_includes_subject = True
    org.save()
    code, receipt, reply = _receipt_and_reply(sender_client, smtp, deliver, org, alice, "Tuesday appointment")
    assert code in receipt.text and "Subject: Tuesday appointment" in receipt.text
    assert code in reply.text and "Subject: Re: Tuesday appointment" in reply.text


PHRASE = "blue heron at dawn"


def _first_sign_in_with_phrase(client, smtp, org, phrase=PHRASE):
    temporary = smtp.wait_for(BOB, PASSWORD_SUBJECT)[-1].temporary_password()
    assert client.post(f"/r/{org.slug}/login", {"email": BOB, "password": temporary}).status_code == 302
    page = client.get(f"/r/{org.slug}/password").content.decode()
    assert "Security phrase" in page and "(optional)" in page and "not from us" in page
    r = client.post(f"/r/{org.slug}/password", {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD, "phrase": phrase})
    assert r.status_code == 302, r.content[:400]


def test_the_phrase_chosen_at_first_sign_in_is_in_every_later_e_mail_and_no_page_before_sign_in(
        sender_client, smtp, deliver, org):
    send(sender_client, to=BOB, subject="First")
    deliver()
    [first] = smtp.to(BOB, MESSAGE_SUBJECT)
    assert "Choose a security phrase on your account page" in first.text  # none yet: how to set one
    bob = Client()
    _first_sign_in_with_phrase(bob, smtp, org)
    stored = bytes(User.objects.get(email=BOB).security_phrase_sealed)
    assert PHRASE.encode() not in stored  # sealed, never as typed
    assert AuditEvent.objects.filter(action="security_phrase", actor__email=BOB).count() == 1

    send(sender_client, to=BOB, subject="Second")
    deliver()
    later = smtp.to(BOB, MESSAGE_SUBJECT)[-1]
    assert f"Your security phrase: {PHRASE}" in later.text and PHRASE in later.html
    # Nothing before sign-in shows it, not even the page the e-mail's own link opens.
    anonymous = Client()
    for path in (path_of(later.link()), f"/r/{org.slug}/login", f"/r/{org.slug}/login?email={BOB}",
                 f"/r/{org.slug}/forgot", "/find-my-portal", "/"):
        assert PHRASE not in anonymous.get(path, follow=True).content.decode(), path
    # Nor does any page after it: it is only ever in the e-mails.
    for path in (f"/r/{org.slug}/", f"/r/{org.slug}/password", f"/r/{org.slug}/phrase"):
        assert PHRASE not in bob.get(path).content.decode(), path


def test_changing_the_phrase_asks_for_the_password_and_is_audited(sender_client, smtp, deliver, org):
    send(sender_client, to=BOB)
    deliver()
    bob = Client()
    _first_sign_in_with_phrase(bob, smtp, org)
    r = bob.post(f"/r/{org.slug}/phrase", {"phrase": "red kite"})
    assert r.status_code == 400 and "red kite" not in r.content.decode()
    r = bob.post(f"/r/{org.slug}/phrase", {"phrase": "red kite", "current": "wrong password"})
    assert r.status_code == 400
    r = bob.post(f"/r/{org.slug}/phrase", {"phrase": "red kite", "current": NEW_PASSWORD})
    assert r.status_code == 302
    assert AuditEvent.objects.filter(action="security_phrase", actor__email=BOB).count() == 2
    send(sender_client, to=BOB, subject="After the change")
    deliver()
    latest = smtp.to(BOB, MESSAGE_SUBJECT)[-1]
    assert "Your security phrase: red kite" in latest.text and PHRASE not in latest.text
