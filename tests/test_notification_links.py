"""E-mails' links name the e-mail by a code, never the recipient's address, over real SMTP."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import unquote

from django.test import Client

from hushpost.lib import clock
from tests.helpers import MESSAGE_SUBJECT, PASSWORD_SUBJECT, path_of, send
from tests.personas import first_login

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


def test_the_link_opens_the_sign_in_page_with_the_address_filled_in(sender_client, smtp, deliver, org):
    send(sender_client, to=BOB, subject="Scan results")
    deliver()
    [notice] = smtp.to(BOB, MESSAGE_SUBJECT)
    anonymous = Client()
    r = anonymous.get(path_of(notice.link()))
    page = r.content.decode()
    assert r.status_code == 200 and _filled_in(page) == BOB
    assert re.fullmatch(rf"/r/{org.slug}/m/\w+", _next(page))  # on to the message once signed in

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
    altered = code[:-1] + ("A" if code[-1] != "A" else "B")
    other = make_org("Harbour Legal")
    for path in (f"/r/{org.slug}/n/{altered}", f"/r/{org.slug}/n/nothing-here", f"/r/{other.slug}/n/{code}"):
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
