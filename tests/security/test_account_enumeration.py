"""Sign-in tells nobody which accounts exist: the same page for every failure, and the same
Argon2 work whether the account exists or not."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.test import Client

from tests.helpers import PASSWORD_SUBJECT
from tests.personas import BOB, NEW_PASSWORD, PASSWORD


def _normalised(response, email: str) -> str:
    page = response.content.decode()
    page = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', 'name="csrfmiddlewaretoken" value="T"', page)
    return page.replace(email, "EMAIL")


def test_sender_login_errors_do_not_reveal_accounts(world, db):
    w = world
    attempts = {
        "unknown": ("nobody@access-north.example", "Wrong-password-123"),
        "wrong password": (w.users["alice"].email, "Wrong-password-123"),
        "a recipient's address": (BOB, NEW_PASSWORD),
        "another organisation's sender": (w.users["charlie"].email, "Wrong-password-123"),
        "unknown domain": ("x@nowhere.example", "Wrong-password-123"),
    }
    pages = {}
    for label, (email, password) in attempts.items():
        response = Client().post("/login", {"email": email, "password": password})
        assert response.status_code == 400, label
        assert "don&#x27;t match an account" in response.content.decode()
        pages[label] = _normalised(response, email)
    assert len(set(pages.values())) == 1, pages.keys()


def test_recipient_login_errors_do_not_reveal_accounts(world, db):
    w = world
    pending = w.pending_recipient()
    attempts = {
        "unknown": ("nobody@client.example", "Wrong-password-123"),
        "wrong password": (BOB, "Wrong-password-123"),
        "pending account, wrong password": (pending.email, "Wrong-password-123"),
        "a sender's address": (w.users["alice"].email, PASSWORD),
        "another organisation's recipient": ("erin@patient.example", NEW_PASSWORD),
    }
    pages = {}
    for label, (email, password) in attempts.items():
        response = Client().post(f"/r/{w.slug()}/login", {"email": email, "password": password})
        assert response.status_code == 400, label
        assert "don&#x27;t match an account" in response.content.decode()
        pages[label] = _normalised(response, email)
    assert len(set(pages.values())) == 1, pages.keys()


@pytest.fixture
def argon2_work(monkeypatch):
    """Counts Argon2 computations (hash or verify): the cost an attacker can time."""
    calls = []
    encode, verify = Argon2PasswordHasher.encode, Argon2PasswordHasher.verify

    def counted_encode(self, *args, **kwargs):
        calls.append("encode")
        return encode(self, *args, **kwargs)

    def counted_verify(self, *args, **kwargs):
        calls.append("verify")
        return verify(self, *args, **kwargs)

    monkeypatch.setattr(Argon2PasswordHasher, "encode", counted_encode)
    monkeypatch.setattr(Argon2PasswordHasher, "verify", counted_verify)
    return calls


def _work(calls, client, path, email, password) -> int:
    calls.clear()
    assert client.post(path, {"email": email, "password": password}).status_code == 400
    return len(calls)


def test_sender_login_costs_the_same_for_unknown_and_known_accounts(world, db, argon2_work):
    w = world
    unknown = _work(argon2_work, Client(), "/login", "nobody@access-north.example", "Wrong-password-123")
    known = _work(argon2_work, Client(), "/login", w.users["alice"].email, "Wrong-password-123")
    assert unknown == known == 1


def test_recipient_login_costs_the_same_for_unknown_and_active_accounts(world, db, argon2_work):
    w = world
    path = f"/r/{w.slug()}/login"
    unknown = _work(argon2_work, Client(), path, "nobody@client.example", "Wrong-password-123")
    known = _work(argon2_work, Client(), path, BOB, "Wrong-password-123")
    assert unknown == known == 1


@pytest.mark.parametrize("state", ["temporary password e-mailed", "e-mail not yet sent"])
def test_recipient_login_costs_the_same_for_pending_accounts(world, db, argon2_work, smtp, deliver, state):
    w = world
    pending = w.pending_recipient()
    if state == "temporary password e-mailed":
        deliver()
        smtp.wait_for(pending.email, PASSWORD_SUBJECT)
    path = f"/r/{w.slug()}/login"
    unknown = _work(argon2_work, Client(), path, "nobody@client.example", "Wrong-password-123")
    known = _work(argon2_work, Client(), path, pending.email, "Wrong-password-123")
    assert known == unknown
