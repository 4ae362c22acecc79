"""Two-factor sign-in: an authenticator app's codes (once each), recovery codes, organisation rules."""

from __future__ import annotations

from datetime import timedelta

from django.test import Client

from hushpost.accounts.models import User
from hushpost.lib import clock
from tests.helpers import enrol, send, totp_now
from tests.personas import NEW_PASSWORD, PASSWORD, first_login, password_step


def test_a_sender_turns_it_on_and_then_needs_a_code(alice, sender_client):
    secret, codes = enrol(sender_client, "/app/account/2fa")
    user = User.objects.get(pk=alice.pk)
    assert user.totp_enabled_at and secret.encode() not in bytes(user.totp_secret_sealed)
    c = Client()
    r = password_step(c, alice.email)
    assert r["Location"] == "/login/2fa?next=%2Fapp%2F"
    assert c.get("/app/").status_code == 302  # the password alone opens nothing
    r = c.post("/login/2fa?next=/app/", {"code": "000000" if totp_now(secret) != "000000" else "111111"})
    assert r.status_code == 400 and "That code is not right" in r.content.decode()
    clock.travel(timedelta(seconds=31))
    r = c.post("/login/2fa?next=/app/", {"code": totp_now(secret)})
    assert r.status_code == 302 and r["Location"] == "/app/"
    assert c.get("/app/").status_code == 200


def test_a_code_works_once(alice, sender_client):
    secret, _ = enrol(sender_client, "/app/account/2fa")
    clock.travel(timedelta(seconds=31))
    first, second = Client(), Client()
    password_step(first, alice.email)
    password_step(second, alice.email)
    now = totp_now(secret)
    assert first.post("/login/2fa", {"code": now}).status_code == 302
    assert second.post("/login/2fa", {"code": now}).status_code == 400  # replayed


def test_a_recovery_code_works_once(alice, sender_client):
    _, codes = enrol(sender_client, "/app/account/2fa")
    c = Client()
    password_step(c, alice.email)
    r = c.post("/login/2fa", {"code": codes[0].upper().replace("-", " ")}, follow=True)
    assert "You used a recovery code; 9 left." in r.content.decode()
    again = Client()
    password_step(again, alice.email)
    assert again.post("/login/2fa", {"code": codes[0]}).status_code == 400


def test_guessing_codes_locks_the_second_step(alice, sender_client, smtp, deliver):
    secret, _ = enrol(sender_client, "/app/account/2fa")
    c = Client()
    password_step(c, alice.email)
    for n in range(5):
        r = c.post("/login/2fa", {"code": f"{n:06d}"})
        clock.travel(timedelta(seconds=61))
        if r.status_code != 429:
            password_step(c, alice.email)  # the second step waits five minutes at most
    assert r.status_code == 429
    password_step(c, alice.email)
    assert c.post("/login/2fa", {"code": totp_now(secret)}).status_code == 429
    deliver()
    assert smtp.wait_for(alice.email, "Secure Messaging Account Locked")


def test_the_second_step_waits_five_minutes_at_most(alice, sender_client):
    secret, _ = enrol(sender_client, "/app/account/2fa")
    c = Client()
    password_step(c, alice.email)
    clock.travel(timedelta(minutes=6))
    r = c.post("/login/2fa", {"code": totp_now(secret)})
    assert r.status_code == 302 and r["Location"] == "/login"
    assert c.get("/app/").status_code == 302


def test_turning_it_off_needs_the_password_and_a_code(alice, sender_client):
    secret, _ = enrol(sender_client, "/app/account/2fa")
    clock.travel(timedelta(seconds=31))
    for attempt in ({"current": "wrong", "current_code": totp_now(secret)}, {"current": PASSWORD},
                    {"current": PASSWORD, "current_code": "000000" if totp_now(secret) != "000000" else "111111"}):
        r = sender_client.post("/app/account/2fa", {"action": "disable", **attempt})
        assert r.status_code == 400 and not User.objects.filter(pk=alice.pk, totp_enabled_at=None).exists()
        clock.travel(timedelta(seconds=61))  # past the throttle's growing wait
    sender_client.post("/app/account/2fa", {"action": "disable", "current": PASSWORD, "current_code": totp_now(secret)})
    assert User.objects.get(pk=alice.pk).totp_enabled_at is None
    assert password_step(Client(), alice.email)["Location"] == "/app/"


def test_an_organisation_requires_it_for_its_recipients(sender_client, smtp, deliver, org, client_factory):
    org.require_2fa_recipients = True
    org.save()
    send(sender_client, to="bob@client.example")
    deliver()
    bob = client_factory()
    first_login(bob, smtp, org, "bob@client.example")
    # Signed in, but every page leads to setting it up first.
    assert bob.get(f"/r/{org.slug}/")["Location"] == f"/r/{org.slug}/2fa"
    secret, _ = enrol(bob, f"/r/{org.slug}/2fa")
    assert bob.get(f"/r/{org.slug}/").status_code == 200
    page = bob.get(f"/r/{org.slug}/2fa").content.decode()
    assert "cannot be turned off" in page and "Turn off" not in page
    c = client_factory()
    r = c.post(f"/r/{org.slug}/login", {"email": "bob@client.example", "password": NEW_PASSWORD})
    assert r["Location"].startswith(f"/r/{org.slug}/login/2fa")
    clock.travel(timedelta(seconds=31))
    assert c.post(r["Location"], {"code": totp_now(secret)}).status_code == 302


def test_a_half_signed_in_session_is_not_a_sender_session(alice, sender_client, org):
    enrol(sender_client, "/app/account/2fa")
    c = Client()
    password_step(c, alice.email)
    for path in ("/app/", "/app/compose", "/app/sent", "/app/account", f"/r/{org.slug}/"):
        assert c.get(path).status_code == 302
