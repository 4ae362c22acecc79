"""Cross-site requests: every state-changing POST needs this session's CSRF token, sent from
this site; signing out is a POST too."""

from __future__ import annotations

import secrets

import pytest
from django.test import Client

from hushpost.accounts.models import User
from hushpost.messaging.models import Delivery, Message
from hushpost.notifications.models import Notification
from tests.helpers import SESSION_COOKIE
from tests.personas import BOB, NEW_PASSWORD, PASSWORD, World


def _token(client: Client, page: str) -> str:
    client.get(page)
    return client.cookies["csrftoken"].value


def _csrf_case(w: World, name: str):
    """(client, path, data, page to get a token from, check(before_or_after) -> state)."""
    a, b = w.slug(), w.uids["m1"]
    bob_id = w.users["bob"].pk
    if name == "sender login":
        return (Client(enforce_csrf_checks=True), "/login",
                {"email": w.users["alice"].email, "password": PASSWORD}, "/login",
                lambda c: SESSION_COOKIE in c.cookies and c.cookies[SESSION_COOKIE].value != "")
    if name == "recipient login":
        return (Client(enforce_csrf_checks=True), f"/r/{a}/login", {"email": BOB, "password": NEW_PASSWORD},
                f"/r/{a}/login", lambda c: SESSION_COOKIE in c.cookies and c.cookies[SESSION_COOKIE].value != "")
    if name == "sender logout":
        return (w.signed_in("alice", enforce_csrf_checks=True), "/logout", {}, "/app/",
                lambda c: c.get("/app/").status_code == 200)
    if name == "recipient logout":
        return (w.signed_in("bob", enforce_csrf_checks=True), f"/r/{a}/logout", {}, f"/r/{a}/",
                lambda c: c.get(f"/r/{a}/").status_code == 200)
    if name == "compose":
        data = {"to": "zed@client.example", "subject": "CSRF", "body": "x", "body_format": "text",
                "send_token": secrets.token_urlsafe(24), "confirm": "1"}
        return (w.signed_in("alice", enforce_csrf_checks=True), "/app/compose", data, "/app/compose",
                lambda c: Message.objects.count())
    if name == "reply":
        data = {"body": "CSRF reply", "body_format": "text", "send_token": secrets.token_urlsafe(24)}
        return (w.signed_in("bob", enforce_csrf_checks=True), f"/r/{a}/m/{b}/reply", data,
                f"/r/{a}/m/{b}/reply", lambda c: Message.objects.count())
    if name == "delete":
        return (w.signed_in("bob", enforce_csrf_checks=True), f"/r/{a}/m/{b}/delete", {}, f"/r/{a}/m/{b}",
                lambda c: Delivery.objects.filter(deleted_at__isnull=False).count())
    if name == "set password":
        return (w.signed_in("bob", enforce_csrf_checks=True), f"/r/{a}/password",
                {"password": "Granite-violin-harbour-61", "confirm": "Granite-violin-harbour-61",
                 "current": w.passwords["bob"]},
                f"/r/{a}/password", lambda c: User.objects.get(pk=bob_id).password)
    if name == "resend":
        from hushpost.recipients.views import _resend_token

        pending = w.pending_recipient()
        # Its first password e-mail has gone out; a resend may queue another.
        Notification.objects.filter(user=pending).update(status=Notification.Status.SENT)
        token = _resend_token(pending)
        return (Client(enforce_csrf_checks=True), f"/r/{a}/login/resend", {"token": token}, f"/r/{a}/login",
                lambda c: Notification.objects.filter(kind=Notification.Kind.PASSWORD).count())
    if name == "retry":
        note = w.notification["m1"]
        Notification.objects.filter(pk=note).update(status=Notification.Status.FAILED)
        return (w.signed_in("alice", enforce_csrf_checks=True), f"/app/m/{b}/retry/{note}", {},
                f"/app/m/{b}", lambda c: Notification.objects.get(pk=note).status)
    alice_id = w.users["alice"].pk
    if name == "recall":
        return (w.signed_in("alice", enforce_csrf_checks=True), f"/app/m/{b}/recall", {}, f"/app/m/{b}",
                lambda c: Delivery.objects.filter(recalled_at__isnull=False).count())
    if name == "expiry":
        return (w.signed_in("alice", enforce_csrf_checks=True), f"/app/m/{b}/expiry", {"expiry": "7"},
                f"/app/m/{b}", lambda c: Message.objects.get(uid=b).expires_at)
    if name == "sender password":
        return (w.signed_in("alice", enforce_csrf_checks=True), "/app/account",
                {"current": PASSWORD, "password": "Granite-violin-harbour-61", "confirm": "Granite-violin-harbour-61"},
                "/app/account", lambda c: User.objects.get(pk=alice_id).password)
    if name == "sign out everywhere":
        return (w.signed_in("alice", enforce_csrf_checks=True), "/app/account/sign-out-everywhere", {},
                "/app/account", lambda c: User.objects.get(pk=alice_id).sessions_ended_at)
    raise AssertionError(name)


CSRF_CASES = ["sender login", "recipient login", "sender logout", "recipient logout", "compose", "reply",
              "delete", "set password", "resend", "retry", "recall", "expiry", "sender password",
              "sign out everywhere"]


@pytest.mark.parametrize("name", CSRF_CASES)
def test_every_state_changing_post_needs_a_csrf_token(world, db, name):
    client, path, data, page, state = _csrf_case(world, name)
    before = state(client)
    # No token at all, then a token from another session: refused, nothing changes.
    response = client.post(path, data)
    assert response.status_code == 403
    assert "This page has expired" in response.content.decode()
    assert state(client) == before
    stranger = Client()
    foreign = _token(stranger, "/login")
    client.get(page)
    assert client.post(path, {**data, "csrfmiddlewaretoken": foreign}).status_code == 403
    assert state(client) == before
    # The right token, sent from another site (its Origin, or Origin: null from a
    # cross-site or sandboxed page): refused too.
    token = _token(client, page)
    for headers in ({"HTTP_ORIGIN": "https://evil.example"},
                    {"HTTP_ORIGIN": "https://evil.example", "HTTP_SEC_FETCH_SITE": "same-origin"},
                    {"HTTP_ORIGIN": "null", "HTTP_SEC_FETCH_SITE": "cross-site"},
                    {"HTTP_ORIGIN": "null"}):
        response = client.post(path, {**data, "csrfmiddlewaretoken": token}, **headers)
        assert response.status_code == 403, headers
        assert state(client) == before
    # With this session's token from our own page the same request goes through.
    response = client.post(path, {**data, "csrfmiddlewaretoken": token})
    assert response.status_code == 302, response.content[:400]
    assert state(client) != before


def test_logout_is_post_only(world, db):
    w = world
    alice = w.signed_in("alice")
    assert alice.get("/logout").status_code == 405
    assert alice.get("/app/").status_code == 200
    bob = w.signed_in("bob")
    assert bob.get(f"/r/{w.slug()}/logout").status_code == 405
    assert bob.get(f"/r/{w.slug()}/").status_code == 200
