"""'Forgot your password?': one link, once, for 30 minutes, the same answer for anyone."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client

from hushpost.lib import clock
from tests.helpers import open_link, path_of, post_link, send
from tests.personas import NEW_PASSWORD, PASSWORD, first_login

RESET_SUBJECT = "Secure Messaging Password Reset"
CHOSEN = "Meadow-lantern-orbit-47"


def _link(smtp, address):
    """The e-mailed link, as the page's path and the fragment after '#' that only the browser sees."""
    url = smtp.wait_for(address, RESET_SUBJECT)[-1].link()
    path, _, fragment = path_of(url.split("#", 1)[0]), "#", url.split("#", 1)[1]
    return path + "#" + fragment


def test_a_sender_resets_and_every_other_session_ends(alice, sender_client, smtp, deliver):
    c = Client()
    r = c.post("/forgot", {"email": alice.email})
    assert r.status_code == 200 and "we have sent it a link" in r.content.decode()
    deliver()
    link = _link(smtp, alice.email)
    assert re.fullmatch(r"/reset#[\w-]+/[\w-]+", link)  # the secret only after '#'
    form = open_link(c, link)
    assert "Choose a new password" in c.get(form).content.decode()  # a GET uses nothing up
    assert "Choose a new password" in c.get(form).content.decode()
    r = c.post(form, {"password": CHOSEN, "confirm": CHOSEN})
    assert r.status_code == 302 and r["Location"] == "/login"
    assert sender_client.get("/app/").status_code == 302  # the old session is over
    assert Client().post("/login", {"email": alice.email, "password": PASSWORD}).status_code == 400
    assert Client().post("/login", {"email": alice.email, "password": CHOSEN}).status_code == 302
    # Once only.
    r = post_link(c, link)
    assert r.status_code == 404 and "This link no longer works" in r.content.decode()
    assert c.post(form, {"password": "Another-fine-pass-93", "confirm": "Another-fine-pass-93"}).status_code == 404


def test_the_link_expires_after_thirty_minutes(alice, smtp, deliver):
    Client().post("/forgot", {"email": alice.email})
    deliver()
    link = _link(smtp, alice.email)
    clock.travel(timedelta(minutes=29))
    c = Client()
    assert post_link(c, link).status_code == 302
    assert "Choose a new password" in c.get("/reset").content.decode()
    clock.travel(timedelta(minutes=2))
    assert post_link(Client(), link).status_code == 404
    page = c.get("/reset").content.decode()  # the ticket in the session expired with the link
    assert 'name="password"' not in page


def test_the_session_keeps_no_usable_token(alice, smtp, deliver):
    from hushpost.accounts.models import Session
    from hushpost.accounts.sessions import SessionStore

    Client().post("/forgot", {"email": alice.email})
    deliver()
    link = _link(smtp, alice.email)
    token = link.rsplit("/", 1)[1]
    c = Client()
    open_link(c, link)
    stored = "".join(s.session_data + repr(SessionStore().decode(s.session_data)) for s in Session.objects.all())
    assert stored and token not in stored and token.split("-")[1] not in stored


def test_unknown_addresses_get_the_same_answer_and_no_mail(alice, smtp, deliver):
    known = Client().post("/forgot", {"email": alice.email}).content.decode()
    unknown = Client().post("/forgot", {"email": "nobody@northwind.example"}).content.decode()
    strip = lambda page, a: re.sub(r'value="[^"]+"', "", page).replace(a, "X")  # noqa: E731
    assert strip(known, alice.email) == strip(unknown, "nobody@northwind.example")
    deliver()
    assert not smtp.to("nobody@northwind.example", RESET_SUBJECT)
    assert len(smtp.to(alice.email, RESET_SUBJECT)) == 1


def test_asking_again_and_again_sends_one_mail_per_five_minutes(alice, smtp, deliver):
    for _ in range(4):
        Client().post("/forgot", {"email": alice.email})
    deliver()
    assert len(smtp.to(alice.email, RESET_SUBJECT)) == 1


def test_a_recipient_resets_in_their_organisations_portal(sender_client, smtp, deliver, org, client_factory):
    send(sender_client, to="bob@client.example")
    deliver()
    first_login(client_factory(), smtp, org, "bob@client.example")
    c = client_factory()
    assert c.post(f"/r/{org.slug}/forgot", {"email": "bob@client.example"}).status_code == 200
    deliver()
    link = _link(smtp, "bob@client.example")
    assert link.startswith(f"/r/{org.slug}/reset#")
    form = open_link(c, link)
    assert form == f"/r/{org.slug}/reset"
    assert c.post(form, {"password": CHOSEN, "confirm": CHOSEN})["Location"] == f"/r/{org.slug}/login"
    assert client_factory().post(f"/r/{org.slug}/login", {"email": "bob@client.example", "password": NEW_PASSWORD}).status_code == 400
    assert client_factory().post(f"/r/{org.slug}/login", {"email": "bob@client.example", "password": CHOSEN}).status_code == 302


@pytest.mark.parametrize("token", ["x", "abc-def", "c3d4ef-" + "0" * 32])
def test_forged_links_open_nothing_and_are_throttled(alice, token, settings):
    settings.CLIENT_FAILURES = 3
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    uid = urlsafe_base64_encode(force_bytes(alice.pk))
    c = Client()
    statuses = [post_link(c, f"/reset#{uid}/{token}").status_code for _ in range(3)]
    assert statuses == [404, 404, 429]  # after two misses, each further try must wait
    clock.travel(timedelta(seconds=61))
    assert post_link(c, f"/reset#{uid}/{token}").status_code == 404
    assert Client().post("/login", {"email": alice.email, "password": PASSWORD}).status_code == 429  # the same network


def test_the_miss_that_stops_a_network_guessing_links_says_so_and_for_how_long(alice, settings):
    settings.CLIENT_FAILURES = 100  # the block this test reaches is the links' own
    c = Client()
    answers = []
    for _ in range(settings.LOCKOUT_FAILURES):
        answers.append(post_link(c, "/reset#MQ/c3d4ef-" + "0" * 32))
        clock.travel(timedelta(seconds=61))  # past each slow-down
    assert [a.status_code for a in answers] == [404] * (settings.LOCKOUT_FAILURES - 1) + [429]
    page = answers[-1].content.decode()
    assert "This link no longer works" in page
    assert "Too many links that did not work were tried from your network. Try again in 15 minutes." in page
    wait = post_link(c, "/reset#MQ/c3d4ef-" + "0" * 32)
    assert wait.status_code == 429 and "Try again in 14 minutes." in wait.content.decode()


def test_a_new_password_through_the_link_ends_a_lockout(alice, smtp, deliver):
    for n in range(5):  # someone guessing Alice's password locks her out
        Client().post("/login", {"email": alice.email, "password": f"Guess-{n}-wrong"}, REMOTE_ADDR="192.0.2.70")
        clock.travel(timedelta(seconds=61))
    assert Client().post("/login", {"email": alice.email, "password": PASSWORD}).status_code == 429
    Client().post("/forgot", {"email": alice.email})
    deliver()
    c = Client()
    form = open_link(c, _link(smtp, alice.email))
    assert c.post(form, {"password": CHOSEN, "confirm": CHOSEN}).status_code == 302
    assert Client().post("/login", {"email": alice.email, "password": CHOSEN}).status_code == 302


def test_a_weak_new_password_is_refused_and_the_link_still_works(alice, smtp, deliver):
    Client().post("/forgot", {"email": alice.email})
    deliver()
    link = _link(smtp, alice.email)
    c = Client()
    form = open_link(c, link)
    r = c.post(form, {"password": "short", "confirm": "short"})
    assert r.status_code == 400 and "at least 12 characters" in r.content.decode()
    assert c.post(form, {"password": CHOSEN, "confirm": CHOSEN}).status_code == 302


def test_signing_in_normally_ends_an_unused_link(alice, smtp, deliver):
    Client().post("/forgot", {"email": alice.email})
    deliver()
    link = _link(smtp, alice.email)
    clock.travel(timedelta(seconds=2))
    assert Client().post("/login", {"email": alice.email, "password": PASSWORD}).status_code == 302
    assert post_link(Client(), link).status_code == 404


def test_forged_links_do_not_block_the_real_one(alice, smtp, deliver):
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    uid = urlsafe_base64_encode(force_bytes(alice.pk))
    for n in range(8):
        post_link(Client(), f"/reset#{uid}/forged-{n}", REMOTE_ADDR="192.0.2.66")
    Client().post("/forgot", {"email": alice.email})
    deliver()
    assert post_link(Client(), _link(smtp, alice.email), REMOTE_ADDR="192.0.2.67").status_code == 302


def test_a_pasted_link_works_without_script(alice, smtp, deliver):
    Client().post("/forgot", {"email": alice.email})
    deliver()
    url = smtp.wait_for(alice.email, RESET_SUBJECT)[-1].link()
    c = Client()
    page = c.get("/reset").content.decode()
    assert "<noscript>" in page and "Paste the whole link" in page
    assert c.post("/reset", {"link": f"  {url}  "}).status_code == 302
    assert c.post("/reset", {"password": CHOSEN, "confirm": CHOSEN})["Location"] == "/login"


def test_opening_a_link_gives_the_browser_a_new_session_key(alice, smtp, deliver):
    """A session someone planted in the browser (a cookie set from a sibling site) never holds the ticket."""
    Client().post("/forgot", {"email": alice.email})
    deliver()
    link = _link(smtp, alice.email)
    from hushpost.accounts.sessions import SessionStore

    store = SessionStore()
    store["planted"] = "by the attacker"
    store.save()
    victim, planter = Client(), Client()
    victim.cookies["hushpost_session"] = planter.cookies["hushpost_session"] = store.session_key
    open_link(victim, link)
    assert victim.cookies["hushpost_session"].value != store.session_key
    assert 'name="password"' not in planter.get("/reset").content.decode()


def test_a_signed_in_sender_who_must_set_up_two_factor_stays_on_the_reset_page(alice, sender_client, org):
    """Any redirect would carry the link's fragment, and so its secret, on to the next address."""
    org.require_2fa_senders = True
    org.save()
    assert sender_client.get("/app/")["Location"] == "/app/account/2fa"
    assert sender_client.get("/reset").status_code == 200
