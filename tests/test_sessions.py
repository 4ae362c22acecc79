"""Sessions: an idle timeout per role, a fixed lifetime, sign out everywhere, and password changes."""

from __future__ import annotations

from datetime import timedelta

from django.test import Client

from hushpost.lib import clock
from tests import personas
from tests.helpers import send
from tests.personas import NEW_PASSWORD, PASSWORD, first_login, signed_in_sender

CHOSEN = "Meadow-lantern-orbit-47"


def test_a_sender_is_signed_out_after_thirty_idle_minutes(alice):
    c = signed_in_sender(alice)
    clock.travel(timedelta(minutes=29))
    assert c.get("/app/").status_code == 200  # activity: the clock starts again
    clock.travel(timedelta(minutes=29))
    assert c.get("/app/sent").status_code == 200
    clock.travel(timedelta(minutes=31))
    r = c.get("/app/sent")
    assert r.status_code == 302 and r["Location"] == "/login?next=%2Fapp%2Fsent"
    page = c.get("/login").content.decode()
    assert "signed out after 30 minutes without activity" in page


def test_a_recipient_is_signed_out_after_fifteen_idle_minutes(sender_client, smtp, deliver, org, client_factory):
    send(sender_client, to="bob@client.example")
    deliver()
    bob = client_factory()
    first_login(bob, smtp, org, "bob@client.example")
    clock.travel(timedelta(minutes=14))
    assert bob.get(f"/r/{org.slug}/").status_code == 200
    clock.travel(timedelta(minutes=16))
    assert bob.get(f"/r/{org.slug}/")["Location"].startswith(f"/r/{org.slug}/login")


def test_an_organisation_sets_its_own_idle_limit(alice, org):
    admin = personas.ada(org)
    c = signed_in_sender(admin)
    r = c.post("/app/admin/policy", {"sender_name": "Northwind", "default_restriction": "none",
                                     "default_expire_days": "0", "allowed_expiry": ["0", "7"],
                                     "sender_idle_minutes": "5"})
    assert r.status_code == 302
    c = signed_in_sender(alice)
    clock.travel(timedelta(minutes=6))
    assert c.get("/app/").status_code == 302


def test_a_session_ends_at_its_lifetime_however_busy(alice, settings):
    c = signed_in_sender(alice)
    for _ in range(19):  # 7 h 55 min of steady work
        clock.travel(timedelta(minutes=25))
        assert c.get("/app/").status_code == 200
    clock.travel(timedelta(minutes=25))
    assert c.get("/app/").status_code == 302
    assert "reached its time limit" in c.get("/login").content.decode()


def test_sign_out_everywhere_ends_every_session(alice):
    laptop, phone = signed_in_sender(alice), signed_in_sender(alice)
    assert laptop.post("/app/account/sign-out-everywhere").status_code == 302
    assert laptop.get("/app/").status_code == 302 and phone.get("/app/").status_code == 302
    assert signed_in_sender(alice).get("/app/").status_code == 200  # a new sign-in works


def test_a_password_change_ends_the_other_sessions_only(alice):
    here, elsewhere = signed_in_sender(alice), signed_in_sender(alice)
    r = here.post("/app/account", {"current": "wrong", "password": CHOSEN, "confirm": CHOSEN})
    assert r.status_code == 400 and "current password is not right" in r.content.decode()
    r = here.post("/app/account", {"current": PASSWORD, "password": CHOSEN, "confirm": CHOSEN})
    assert r.status_code == 302
    assert here.get("/app/").status_code == 200 and elsewhere.get("/app/").status_code == 302


def test_a_recipient_signs_out_everywhere(sender_client, smtp, deliver, org, client_factory):
    send(sender_client, to="bob@client.example")
    deliver()
    bob = client_factory()
    first_login(bob, smtp, org, "bob@client.example")
    other = client_factory()
    other.post(f"/r/{org.slug}/login", {"email": "bob@client.example", "password": NEW_PASSWORD})
    assert other.get(f"/r/{org.slug}/").status_code == 200
    assert bob.post(f"/r/{org.slug}/sign-out-everywhere").status_code == 302
    assert other.get(f"/r/{org.slug}/").status_code == 302 and bob.get(f"/r/{org.slug}/").status_code == 302


# A copy of the session table (a backup, a replica, a leaked dump) holds no usable cookie.

def _session_rows() -> list[str]:
    from django.contrib.sessions.models import Session

    return list(Session.objects.values_list("session_key", flat=True))


def test_the_session_table_holds_no_cookie_value(alice):
    c = signed_in_sender(alice)
    cookie = c.cookies["hushpost_session"].value
    rows = _session_rows()
    assert rows and cookie not in rows
    assert c.get("/app/").status_code == 200  # the cookie itself still works


def test_a_session_row_cannot_be_used_as_a_cookie(alice):
    signed_in_sender(alice)
    for stolen in _session_rows():
        thief = Client()
        thief.cookies["hushpost_session"] = stolen
        r = thief.get("/app/")
        assert r.status_code == 302 and r["Location"].startswith("/login")


def test_rotating_the_secret_key_keeps_everyone_signed_in(alice, settings):
    c = signed_in_sender(alice)
    before = set(_session_rows())
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-for-this-deployment-0123456789"
    assert c.get("/app/").status_code == 200
    after = set(_session_rows())
    assert after and after.isdisjoint(before)  # filed under the new key on first use
    assert c.get("/app/sent").status_code == 200
    settings.SECRET_KEY_FALLBACKS = []  # the old key retired: the row was moved, so still signed in
    assert c.get("/app/sent").status_code == 200


def test_signing_out_removes_the_session_row(alice):
    c = signed_in_sender(alice)
    [row] = _session_rows()
    c.post("/logout")
    assert c.get("/app/").status_code == 302
    assert row not in _session_rows()
