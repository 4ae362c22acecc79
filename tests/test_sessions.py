"""Sessions: an idle timeout per role, a fixed lifetime, sign out everywhere, and password changes."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

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
    from hushpost.accounts.models import Session

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


# The session row names its account, so a request reads both (and the organisation) in one
# statement. Everything that ends a session still ends it on the very next request.

def test_the_session_row_names_its_account(alice):
    from hushpost.accounts.models import Session

    c = signed_in_sender(alice)
    assert list(Session.objects.values_list("user_id", flat=True)) == [alice.pk]
    with CaptureQueriesContext(connection) as queries:
        assert c.get("/app/sent").status_code == 200
    first = queries.captured_queries[0]["sql"]
    assert "accounts_session" in first and "accounts_user" in first and "orgs_organization" in first
    assert not any('FROM "accounts_user"' in q["sql"] for q in queries.captured_queries[1:])


def test_disabling_an_account_or_its_organisation_ends_its_sessions_at_once(alice, org):
    from hushpost.accounts.actions import set_active

    c = signed_in_sender(alice)
    set_active(alice, False)
    assert c.get("/app/").status_code == 302
    set_active(alice, True)
    c = signed_in_sender(alice)
    org.is_active = False
    org.save()
    assert c.get("/app/").status_code == 302


def test_a_row_naming_another_account_gives_nobody_that_account(alice, org):
    from hushpost.accounts.models import Session

    other = personas.sender(org, "carol", "Carol Other")
    c = signed_in_sender(alice)
    # Whoever can write the session table, but not sign the session's data, points the row
    # at another account: the data's own account is the one restored, or no one.
    Session.objects.update(user=other)
    page = c.get("/app/account").content.decode()
    assert alice.email in page and other.email not in page


def test_a_row_kept_from_before_it_named_its_account_still_signs_in(alice):
    from hushpost.accounts.models import Session

    c = signed_in_sender(alice)
    Session.objects.update(user=None)  # as the upgrade copied the rows
    assert c.get("/app/").status_code == 200
    clock.travel(timedelta(minutes=1))  # the next write of the row names the account
    assert c.get("/app/").status_code == 200
    assert list(Session.objects.values_list("user_id", flat=True)) == [alice.pk]
