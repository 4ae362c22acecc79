"""Sessions and their cookies: out of a script's reach, not sent cross-site, a new key at every
sign-in (so a planted one is worth nothing), ended on the server at sign-out and, for the other
sessions, at a password change."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.test import Client

from hushpost.accounts.sessions import SessionStore
from tests.helpers import SESSION_COOKIE
from tests.personas import BOB, NEW_PASSWORD, PASSWORD


def test_session_and_csrf_cookies_are_httponly_and_samesite(world, db):
    w = world
    client = Client()
    client.get("/login")
    csrf = client.cookies["csrftoken"]
    assert csrf["httponly"] and csrf["samesite"] == "Lax"
    response = client.post("/login", {"email": w.users["alice"].email, "password": PASSWORD})
    assert response.status_code == 302
    cookie = response.cookies[SESSION_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert cookie["max-age"] == "" and cookie["expires"] == ""  # ends with the browser
    assert django_settings.SESSION_COOKIE_AGE <= 8 * 3600
    response = Client().post(f"/r/{w.slug()}/login", {"email": BOB, "password": NEW_PASSWORD})
    assert response.status_code == 302
    assert response.cookies[SESSION_COOKIE]["httponly"]
    assert response.cookies[SESSION_COOKIE]["samesite"] == "Lax"


def _planted(client: Client) -> str:
    store = SessionStore()
    store["planted"] = "by the attacker"
    store.save()
    client.cookies[SESSION_COOKIE] = store.session_key
    return store.session_key


@pytest.mark.parametrize("portal", ["sender", "recipient"])
def test_session_key_changes_at_login(world, db, portal):
    w = world
    client = Client()
    planted = _planted(client)
    if portal == "sender":
        r = client.post("/login", {"email": w.users["alice"].email, "password": PASSWORD})
        home = "/app/"
    else:
        r = client.post(f"/r/{w.slug()}/login", {"email": BOB, "password": NEW_PASSWORD})
        home = f"/r/{w.slug()}/"
    assert r.status_code == 302
    new_key = client.cookies[SESSION_COOKIE].value
    assert new_key and new_key != planted
    assert not SessionStore().exists(planted)
    # The attacker's copy of the old cookie is worth nothing.
    attacker = Client()
    attacker.cookies[SESSION_COOKIE] = planted
    assert attacker.get(home).status_code == 302
    assert client.get(home).status_code == 200


def test_logout_ends_the_session_on_the_server(world, db):
    w = world
    alice = w.signed_in("alice")
    key = alice.cookies[SESSION_COOKIE].value
    assert alice.post("/logout").status_code == 302
    thief = Client()
    thief.cookies[SESSION_COOKIE] = key
    assert thief.get("/app/").status_code == 302


def test_password_change_signs_out_other_sessions(world, db):
    w = world
    here, elsewhere = w.signed_in("bob"), w.signed_in("bob")
    new = "Granite-violin-harbour-61"
    r = here.post(f"/r/{w.slug()}/password", {"password": new, "confirm": new, "current": "wrong"})
    assert r.status_code == 400 and "current password is not right" in r.content.decode()
    assert elsewhere.get(f"/r/{w.slug()}/").status_code == 200
    r = here.post(f"/r/{w.slug()}/password",
                  {"password": new, "confirm": new, "current": w.passwords["bob"]})
    assert r.status_code == 302
    assert here.get(f"/r/{w.slug()}/").status_code == 200
    assert elsewhere.get(f"/r/{w.slug()}/").status_code == 302
