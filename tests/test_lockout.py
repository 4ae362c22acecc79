"""Brute force: failures slow down, then lock, per account name and per client address.

A lockout looks the same for an address that has no account; the owner of a
real one is told by e-mail; an organisation admin can unlock.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client

from hushpost.accounts.models import Throttle
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock
from hushpost.lib.client import client_address
from hushpost.notifications.models import Notification
from tests import personas
from tests.helpers import PASSWORD_SUBJECT, send, signed_in_as
from tests.personas import PASSWORD

LOCKED = "Too many unsuccessful attempts: signing in with this address is paused for 15 minutes."
LOCKOUT_SUBJECT = "Secure Messaging Account Locked"


WRONG = "Wrong-password-123"  # noqa: S105 - a deliberately wrong password


def attempt(client, email, password=WRONG, ip="203.0.113.7"):
    return client.post("/login", {"email": email, "password": password}, REMOTE_ADDR=ip)


def _page(response, address):
    page = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())
    return page.replace(address, "ADDRESS")


def wait_out_delays():
    clock.travel(timedelta(seconds=61))


def test_five_failures_lock_the_account_and_tell_its_owner(alice, smtp, deliver):
    c = Client()
    for _ in range(1, 5):
        r = attempt(c, alice.email)
        assert r.status_code == 400 and "don&#x27;t match an account" in r.content.decode()
        wait_out_delays()
    r = attempt(c, alice.email)  # the fifth
    assert r.status_code == 429 and LOCKED in r.content.decode()
    # Locked: even the right password is refused, and costs no password check.
    r = attempt(c, alice.email, PASSWORD)
    assert r.status_code == 429 and LOCKED in r.content.decode()
    deliver()
    [mail] = smtp.to(alice.email, LOCKOUT_SUBJECT)
    assert "paused for 15 minutes" in mail.text and "/login" in mail.text
    clock.travel(timedelta(minutes=16))
    assert attempt(c, alice.email, PASSWORD).status_code == 302
    assert not smtp.to(alice.email, PASSWORD_SUBJECT)


def test_failures_make_the_next_try_wait_longer(alice):
    clock.freeze()  # the waits are counted in seconds; a slow machine must not shorten them
    c = Client()
    assert attempt(c, alice.email).status_code == 400
    assert attempt(c, alice.email).status_code == 400  # two typos cost nothing
    r = attempt(c, alice.email, PASSWORD)
    assert r.status_code == 429 and "Please wait 2 seconds before trying again." in r.content.decode()
    clock.travel(timedelta(seconds=3))
    assert attempt(c, alice.email).status_code == 400
    r = attempt(c, alice.email, PASSWORD)
    assert r.status_code == 429 and "Please wait 4 seconds" in r.content.decode()
    clock.travel(timedelta(seconds=5))
    assert attempt(c, alice.email, PASSWORD).status_code == 302  # and the count starts again
    assert not Throttle.objects.filter(scope="account").exists()


def test_an_address_without_an_account_locks_exactly_the_same(alice, smtp, deliver):
    real, ghost = Client(), Client()
    for _ in range(1, 7):
        a = attempt(real, alice.email, ip="198.51.100.1")
        b = attempt(ghost, "nobody@northwind.example", ip="198.51.100.2")
        assert a.status_code == b.status_code
        assert _page(a, alice.email) == _page(b, "nobody@northwind.example")
        wait_out_delays()
    deliver()
    assert not smtp.to("nobody@northwind.example", LOCKOUT_SUBJECT)
    assert len(smtp.to(alice.email, LOCKOUT_SUBJECT)) == 1  # once per lockout


def test_one_client_trying_many_names_is_blocked(alice, settings):
    settings.CLIENT_FAILURES = 6
    c = Client()
    for n in range(6):
        attempt(c, f"guess{n}@northwind.example", ip="192.0.2.50")
    r = attempt(c, alice.email, PASSWORD, ip="192.0.2.50")
    assert r.status_code == 429 and "Too many unsuccessful attempts from your network" in r.content.decode()
    assert attempt(Client(), alice.email, PASSWORD, ip="192.0.2.51").status_code == 302


def test_temporary_passwords_lock_too(sender_client, smtp, deliver, org, client_factory):
    send(sender_client, to="bob@client.example")
    deliver()
    temp = smtp.wait_for("bob@client.example", PASSWORD_SUBJECT)[-1].temporary_password()
    bob = client_factory()
    for n in range(5):
        r = bob.post(f"/r/{org.slug}/login", {"email": "bob@client.example", "password": f"WRONG-{n}-TEMP"})
        wait_out_delays()
    assert r.status_code == 429 and LOCKED in r.content.decode()
    r = bob.post(f"/r/{org.slug}/login", {"email": "bob@client.example", "password": temp})
    assert r.status_code == 429
    deliver()
    [mail] = smtp.to("bob@client.example", LOCKOUT_SUBJECT)
    assert f"/r/{org.slug}/n/" in mail.link() and "bob" not in mail.link()  # its own portal, no address
    assert Notification.objects.filter(kind="lockout").count() == 1


def test_an_admin_unlocks_a_locked_sender(org, alice):
    admin = personas.ada(org)
    for _ in range(5):
        attempt(Client(), alice.email)
        wait_out_delays()
    assert attempt(Client(), alice.email, PASSWORD).status_code == 429
    c = Client()
    signed_in_as(c, admin)
    page = c.get("/app/admin/").content.decode()
    assert "Locked" in page and f"/app/admin/people/{alice.pk}/unlock" in page
    assert c.post(f"/app/admin/people/{alice.pk}/unlock", {"role": "sender"}).status_code == 302
    assert attempt(Client(), alice.email, PASSWORD).status_code == 302
    # The trail says who ended the lockout, and for whom.
    [event] = AuditEvent.objects.filter(action=AuditEvent.Action.UNLOCK)
    assert (event.actor, event.object_id, event.detail) == (admin, str(alice.pk), alice.email)
    trail = c.get("/app/admin/audit", {"action": "unlock"}).content.decode()
    assert "Account unlocked" in trail


def test_an_admin_cannot_unlock_another_organisations_people(org, alice):
    other = personas.harbour()
    theirs = personas.hal(other)
    c = Client()
    signed_in_as(c, theirs)
    assert c.post(f"/app/admin/people/{alice.pk}/unlock", {"role": "sender"}).status_code == 404


def test_portal_lookups_are_limited_per_client(db, settings):
    settings.LOOKUPS_PER_WINDOW = 3
    c = Client()
    for n in range(3):
        r = c.post("/find-my-portal", {"email": f"rita{n}@client.example"}, REMOTE_ADDR="192.0.2.9")
        assert r.status_code == 200
    r = c.post("/find-my-portal", {"email": "rita@client.example"}, REMOTE_ADDR="192.0.2.9")
    assert r.status_code == 429 and "Too many look-ups from your network" in r.content.decode()
    assert c.post("/find-my-portal", {"email": "rita@client.example"}, REMOTE_ADDR="192.0.2.10").status_code == 200
    clock.travel(timedelta(minutes=16))
    assert c.post("/find-my-portal", {"email": "rita@client.example"}, REMOTE_ADDR="192.0.2.9").status_code == 200


@pytest.mark.parametrize(("behind_proxy", "counted_as"), [(False, "10.0.0.1"), (True, "198.51.100.77")])
def test_the_client_address_comes_from_the_proxy_only_when_told(alice, settings, behind_proxy, counted_as):

    settings.BEHIND_TLS_PROXY = behind_proxy
    request = Client().get("/login", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.77").wsgi_request
    assert client_address(request) == counted_as


@pytest.mark.django_db(transaction=True)
def test_guesses_sent_all_at_once_are_counted_one_by_one(org, make_sender):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("concurrent requests need PostgreSQL's row locks; SQLite runs one writer at a time")
    alice = make_sender(org, "alice", "Alice Moreno")

    def guess(n):
        try:
            return attempt(Client(), alice.email, f"Parallel-guess-{n}-wrong", ip=f"203.0.113.{n + 1}").status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(guess, range(8)))
    # Two are checked (the free tries); every other one waits its turn and is refused.
    assert statuses.count(400) == 2 and statuses.count(429) == 6
