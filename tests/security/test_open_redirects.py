"""The page after sign-in (``next``) is always on this site, and for a recipient in their own
organisation, however the target is spelt."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.test import Client

from tests.personas import BOB, NEW_PASSWORD, PASSWORD

EVIL_NEXT = ["//evil.example", "https://evil.example", "/\\evil.example", "\\\\evil.example", "/\\/evil.example",
             "http:/evil.example", "///evil.example", " //evil.example", "\t//evil.example", "javascript:alert(1)",
             "/app/\\..\\\\evil.example", "https:evil.example", "//evil.example/app/", "/%2F%2Fevil.example"]


def _same_site(location: str, prefix: str) -> None:
    parts = urlsplit(location)
    assert not parts.scheme and not parts.netloc, location
    lenient = location.replace("\\", "/").replace("\t", "").replace("\n", "").strip()
    assert lenient.startswith("/") and not lenient.startswith("//"), location
    assert location.startswith(prefix), location


@pytest.fixture
def quick_password_check(monkeypatch):
    """Where the redirect after sign-in is under test, not Argon2: the real account
    lookup and session, with a plain comparison instead of 0.2 s of hashing."""
    from hushpost.accounts import flows

    monkeypatch.setattr(flows, "verify_password", lambda user, password: user is not None and password in (
        PASSWORD, NEW_PASSWORD))


@pytest.mark.parametrize("target", [*EVIL_NEXT, "/r/{A}/"])
def test_sender_login_next_stays_on_site(world, db, quick_password_check, target):
    w = world
    target = target.format(A=w.slug())
    r = Client().post("/login?" + _q(target), {"email": w.users["alice"].email, "password": PASSWORD})
    assert r.status_code == 302
    _same_site(r["Location"], "/app/")


def _q(target: str) -> str:
    from urllib.parse import urlencode

    return urlencode({"next": target})


@pytest.mark.parametrize("target", [*EVIL_NEXT, "/app/", "/r/{B}/", "/login"])
def test_recipient_login_next_stays_in_the_organisation(world, db, quick_password_check, target):
    w = world
    target = target.format(B=w.slug("B"))
    prefix = f"/r/{w.slug()}/"
    r = Client().post(f"/r/{w.slug()}/login?" + _q(target), {"email": BOB, "password": NEW_PASSWORD})
    assert r.status_code == 302
    _same_site(r["Location"], prefix)
    assert r["Location"] == prefix
    # Already signed in, the GET only forwards, to the same safe place.
    r = w.signed_in("bob").get(f"/r/{w.slug()}/login?" + _q(target))
    assert (r.status_code, r["Location"]) == (302, prefix)
    # The form carries only the cleaned target.
    page = Client().get(f"/r/{w.slug()}/login?" + _q(target)).content.decode()
    assert "evil.example" not in page


def test_next_built_from_a_crafted_path_stays_on_site(world, db, quick_password_check):
    """The sign-in redirect puts the requested path in next= unencoded; a path
    carrying '&next=' or '?next=' must not smuggle a second target."""
    w = world
    for crafted in ("/app/m/x%26next=https:evil.example", "/app/m/x%3Fnext=https:evil.example"):
        r = Client().get(crafted)
        assert r.status_code == 302 and r["Location"].startswith("/login?")
        r = Client().post(r["Location"], {"email": w.users["alice"].email, "password": PASSWORD})
        assert r.status_code == 302
        _same_site(r["Location"], "/app/")


def test_safe_next_targets_are_kept(world, db):
    w = world
    target = f"/r/{w.slug()}/m/{w.uids['m1']}"
    r = Client().post(f"/r/{w.slug()}/login?" + _q(target), {"email": BOB, "password": NEW_PASSWORD})
    assert r["Location"] == target
    r = Client().post("/login?next=/app/sent", {"email": w.users["alice"].email, "password": PASSWORD})
    assert r["Location"] == "/app/sent"
