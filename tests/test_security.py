"""Security properties of the portal, over HTTP, in the database, in e-mail and logs.

Uses the persona world of ``tests/personas.py`` (built once for this module, each
test rolled back): Alice (sender, org A) sent m1 to Bob, m2 to Carol; Bob
replied (r1); Charlie (org B) wrote to Erin and to Bob's org-B account.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.db import connection
from django.test import Client

from hushpost.accounts.actions import create_sender
from hushpost.accounts.models import User
from hushpost.accounts.sessions import SessionStore
from hushpost.lib import clock
from hushpost.messaging.models import Delivery, Message
from hushpost.notifications.models import DevMail, Notification
from hushpost.orgs.actions import create_organization
from hushpost.orgs.models import Organization
from tests.helpers import BACKEND, PASSWORD_SUBJECT, send, signed_in_as
from tests.personas import (
    BOB,
    CONTENT,
    NEW_PASSWORD,
    OPS_PASSWORD,
    PASSWORD,
    SECRETS,
    World,
    ops_enrol,
)

SESSION_COOKIE = "hushpost_session"


@pytest.fixture(autouse=True)
def _smtp_connection_from_this_test():
    """The worker keeps one connection per process; start each test with a fresh one."""
    from hushpost.notifications.relay import relay as worker_connection

    worker_connection.close()
    yield
    worker_connection.close()


def signed_in(w: World, persona: str, **client_kwargs) -> Client:
    return signed_in_as(Client(**client_kwargs), w.users[persona])


def slug(w: World, org: str = "A") -> str:
    return w.orgs[org].slug


# --- response headers -----------------------------------------------------------

PAGES = [
    ("anon", "/login"),
    ("anon", "/r/{A}/login"),
    ("anon", "/no-such-page"),
    ("alice", "/app/"),
    ("alice", "/app/sent"),
    ("alice", "/app/compose"),
    ("alice", "/app/m/{m1}"),
    ("alice", "/app/m/{r1}"),
    ("bob", "/r/{A}/"),
    ("bob", "/r/{A}/m/{m1}"),
    ("bob", "/r/{A}/m/{m1}/reply"),
    ("bob", "/r/{A}/m/{m1}/print"),
    ("bob", "/r/{A}/password"),
]


def _csp(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    policy = {}
    for directive in filter(None, (d.strip() for d in header.split(";"))):
        name, *values = directive.split()
        policy[name] = values
    return policy


@pytest.mark.parametrize(("persona", "template"), PAGES)
def test_security_headers_on_every_page(world, db, persona, template):
    w = world
    path = template.format(A=slug(w), m1=w.uids["m1"], r1=w.uids["r1"])
    client = Client() if persona == "anon" else signed_in(w, persona)
    response = client.get(path)
    assert response.status_code in (200, 404), path
    policy = _csp(response)
    assert policy["default-src"] == ["'none'"]
    assert "script-src" in policy
    for directive in ("script-src", "style-src", "default-src"):
        for value in policy.get(directive, []):
            assert value not in ("'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:"), directive
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["X-Content-Type-Options"] == "nosniff"
    cache = [d.strip() for d in response["Cache-Control"].split(",")]
    assert "no-store" in cache and "private" in cache
    # The policy forbids inline script and handlers, so the pages must not rely on them.
    page = response.content.decode()
    for tag in re.findall(r"<script\b[^>]*>", page, re.I):
        assert "src=" in tag, tag
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", page, re.I)
    assert "javascript:" not in page.lower()


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
    response = Client().post(f"/r/{slug(w)}/login", {"email": BOB, "password": NEW_PASSWORD})
    assert response.status_code == 302
    assert response.cookies[SESSION_COOKIE]["httponly"]
    assert response.cookies[SESSION_COOKIE]["samesite"] == "Lax"


# --- CSRF -------------------------------------------------------------------------

def _token(client: Client, page: str) -> str:
    client.get(page)
    return client.cookies["csrftoken"].value


def _csrf_case(w: World, name: str):
    """(client, path, data, page to get a token from, check(before_or_after) -> state)."""
    a, b = slug(w), w.uids["m1"]
    bob_id = w.users["bob"].pk
    if name == "sender login":
        return (Client(enforce_csrf_checks=True), "/login",
                {"email": w.users["alice"].email, "password": PASSWORD}, "/login",
                lambda c: SESSION_COOKIE in c.cookies and c.cookies[SESSION_COOKIE].value != "")
    if name == "recipient login":
        return (Client(enforce_csrf_checks=True), f"/r/{a}/login", {"email": BOB, "password": NEW_PASSWORD},
                f"/r/{a}/login", lambda c: SESSION_COOKIE in c.cookies and c.cookies[SESSION_COOKIE].value != "")
    if name == "sender logout":
        return (signed_in(w, "alice", enforce_csrf_checks=True), "/logout", {}, "/app/",
                lambda c: c.get("/app/").status_code == 200)
    if name == "recipient logout":
        return (signed_in(w, "bob", enforce_csrf_checks=True), f"/r/{a}/logout", {}, f"/r/{a}/",
                lambda c: c.get(f"/r/{a}/").status_code == 200)
    if name == "compose":
        data = {"to": "zed@client.example", "subject": "CSRF", "body": "x", "body_format": "text",
                "send_token": secrets.token_urlsafe(24), "confirm": "1"}
        return (signed_in(w, "alice", enforce_csrf_checks=True), "/app/compose", data, "/app/compose",
                lambda c: Message.objects.count())
    if name == "reply":
        data = {"body": "CSRF reply", "body_format": "text", "send_token": secrets.token_urlsafe(24)}
        return (signed_in(w, "bob", enforce_csrf_checks=True), f"/r/{a}/m/{b}/reply", data,
                f"/r/{a}/m/{b}/reply", lambda c: Message.objects.count())
    if name == "delete":
        return (signed_in(w, "bob", enforce_csrf_checks=True), f"/r/{a}/m/{b}/delete", {}, f"/r/{a}/m/{b}",
                lambda c: Delivery.objects.filter(deleted_at__isnull=False).count())
    if name == "set password":
        return (signed_in(w, "bob", enforce_csrf_checks=True), f"/r/{a}/password",
                {"password": "Granite-violin-harbour-61", "confirm": "Granite-violin-harbour-61",
                 "current": w.passwords["bob"]},
                f"/r/{a}/password", lambda c: User.objects.get(pk=bob_id).password)
    if name == "resend":
        from hushpost.recipients.views import _resend_token

        pending = _pending_recipient(w)
        # Its first password e-mail has gone out; a resend may queue another.
        Notification.objects.filter(user=pending).update(status=Notification.Status.SENT)
        token = _resend_token(pending)
        return (Client(enforce_csrf_checks=True), f"/r/{a}/login/resend", {"token": token}, f"/r/{a}/login",
                lambda c: Notification.objects.filter(kind=Notification.Kind.PASSWORD).count())
    if name == "retry":
        note = w.notification["m1"]
        Notification.objects.filter(pk=note).update(status=Notification.Status.FAILED)
        return (signed_in(w, "alice", enforce_csrf_checks=True), f"/app/m/{b}/retry/{note}", {},
                f"/app/m/{b}", lambda c: Notification.objects.get(pk=note).status)
    alice_id = w.users["alice"].pk
    if name == "recall":
        return (signed_in(w, "alice", enforce_csrf_checks=True), f"/app/m/{b}/recall", {}, f"/app/m/{b}",
                lambda c: Delivery.objects.filter(recalled_at__isnull=False).count())
    if name == "expiry":
        return (signed_in(w, "alice", enforce_csrf_checks=True), f"/app/m/{b}/expiry", {"expiry": "7"},
                f"/app/m/{b}", lambda c: Message.objects.get(uid=b).expires_at)
    if name == "sender password":
        return (signed_in(w, "alice", enforce_csrf_checks=True), "/app/account",
                {"current": PASSWORD, "password": "Granite-violin-harbour-61", "confirm": "Granite-violin-harbour-61"},
                "/app/account", lambda c: User.objects.get(pk=alice_id).password)
    if name == "sign out everywhere":
        return (signed_in(w, "alice", enforce_csrf_checks=True), "/app/account/sign-out-everywhere", {},
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
    alice = signed_in(w, "alice")
    assert alice.get("/logout").status_code == 405
    assert alice.get("/app/").status_code == 200
    bob = signed_in(w, "bob")
    assert bob.get(f"/r/{slug(w)}/logout").status_code == 405
    assert bob.get(f"/r/{slug(w)}/").status_code == 200


# --- sign-in: no account enumeration ---------------------------------------------------

def _normalised(response, email: str) -> str:
    page = response.content.decode()
    page = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', 'name="csrfmiddlewaretoken" value="T"', page)
    return page.replace(email, "EMAIL")


def _pending_recipient(w: World, email="pat@client.example") -> User:
    """A recipient whose account exists but who has not chosen a password yet."""
    alice = signed_in(w, "alice")
    assert send(alice, to=email, subject="Pending")["Location"]
    return User.objects.get(role=User.Role.RECIPIENT, org=w.orgs["A"], email=email)


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
    pending = _pending_recipient(w)
    attempts = {
        "unknown": ("nobody@client.example", "Wrong-password-123"),
        "wrong password": (BOB, "Wrong-password-123"),
        "pending account, wrong password": (pending.email, "Wrong-password-123"),
        "a sender's address": (w.users["alice"].email, PASSWORD),
        "another organisation's recipient": ("erin@patient.example", NEW_PASSWORD),
    }
    pages = {}
    for label, (email, password) in attempts.items():
        response = Client().post(f"/r/{slug(w)}/login", {"email": email, "password": password})
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
    path = f"/r/{slug(w)}/login"
    unknown = _work(argon2_work, Client(), path, "nobody@client.example", "Wrong-password-123")
    known = _work(argon2_work, Client(), path, BOB, "Wrong-password-123")
    assert unknown == known == 1


@pytest.mark.parametrize("state", ["temporary password e-mailed", "e-mail not yet sent"])
def test_recipient_login_costs_the_same_for_pending_accounts(world, db, argon2_work, smtp, deliver, state):
    w = world
    pending = _pending_recipient(w)
    if state == "temporary password e-mailed":
        deliver()
        smtp.wait_for(pending.email, PASSWORD_SUBJECT)
    path = f"/r/{slug(w)}/login"
    unknown = _work(argon2_work, Client(), path, "nobody@client.example", "Wrong-password-123")
    known = _work(argon2_work, Client(), path, pending.email, "Wrong-password-123")
    assert known == unknown


# --- what recipients see: sanitised bodies, escaped names -----------------------------------

RISKY_BODY = (
    "<p>Intro <b>bold</b> <i>italic</i> <u>under</u></p>"
    "<ul><li>first</li><li>second</li></ul>"
    '<p><a href="https://example.org/ok">good link</a></p>'
    "<script>alert('s1')</script>"
    "<style>body{display:none}</style>"
    '<form action="https://evil.example/steal"><input name="password"><button>Log in</button></form>'
    '<iframe src="https://evil.example/frame"></iframe>'
    '<img src="https://evil.example/pixel.png" onerror="alert(\'i1\')">'
    '<p onclick="alert(\'c1\')">click</p>'
    '<a href="javascript:alert(\'j1\')">js link</a>'
    '<a href="JaVaScRiPt:alert(\'j2\')">js link 2</a>'
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">data link</a>'
    '<svg onload="alert(\'v1\')"></svg>'
    '<object data="https://evil.example/o"></object><embed src="https://evil.example/e">'
    '<base href="https://evil.example/">'
    '<meta http-equiv="refresh" content="0;url=https://evil.example/">'
)


def _body_of(page: str) -> str:
    start = page.index('class="rich-text message-body">')
    return page[start:page.index("</article>", start)]


def _assert_clean(fragment: str) -> None:
    lowered = fragment.lower()
    for needle in ("<script", "<style", "<form", "<input", "<iframe", "<img", "<svg", "<object", "<embed",
                   "<base", "<meta", "onerror", "onclick", "onload", "javascript:", "data:text", "evil.example",
                   "alert("):
        assert needle not in lowered, needle


def test_active_content_is_stripped_and_formatting_kept(world, db, smtp, deliver):
    w = world
    alice, bob = signed_in(w, "alice"), signed_in(w, "bob")
    uid = send(alice, to=BOB, subject="Formatting test", body=RISKY_BODY)["Location"].rsplit("/", 1)[1]
    stored = Message.objects.get(uid=uid)
    from hushpost.messaging.content import open_content

    _assert_clean(open_content(stored).body_html)  # sanitised before it is even encrypted
    for path in (f"/r/{slug(w)}/m/{uid}", f"/r/{slug(w)}/m/{uid}/print"):
        page = bob.get(path).content.decode()
        body = _body_of(page)
        _assert_clean(body)
        for kept in ("<b>bold</b>", "<i>italic</i>", "<u>under</u>", "<ul>", "<li>first</li>",
                     '<a href="https://example.org/ok" rel="noopener noreferrer nofollow">good link</a>'):
            assert kept in body, kept
        for text in ("js link", "click", "data link"):
            assert text in body  # the words stay, the behaviour goes
        assert "evil.example" not in page and "alert(" not in page
    reply_page = bob.get(f"/r/{slug(w)}/m/{uid}/reply").content.decode()
    assert "alert(" not in reply_page and "evil.example" not in reply_page
    _assert_clean(_body_of(alice.get(f"/app/m/{uid}").content.decode()))
    # A recipient's reply goes through the same allow-list on its way to the sender.
    r = bob.post(f"/r/{slug(w)}/m/{uid}/reply",
                 {"body": RISKY_BODY, "body_format": "html", "send_token": secrets.token_urlsafe(24)})
    assert r.status_code == 302
    reply = Message.objects.get(in_reply_to=stored, kind=Message.Kind.REPLY)
    page = alice.get(f"/app/m/{reply.uid}").content.decode()
    _assert_clean(_body_of(page))
    assert "<b>bold</b>" in _body_of(page)


def test_plain_text_body_is_shown_as_text(world, db):
    w = world
    alice, bob = signed_in(w, "alice"), signed_in(w, "bob")
    body = "Dear Bob,\n<script>alert('t1')</script> & <b>not bold</b>"
    uid = send(alice, to=BOB, subject="Text", body=body, body_format="text")["Location"].rsplit("/", 1)[1]
    shown = _body_of(bob.get(f"/r/{slug(w)}/m/{uid}").content.decode())
    assert "&lt;script&gt;" in shown and "<script" not in shown
    assert "&lt;b&gt;not bold&lt;/b&gt;" in shown


HOSTILE_NAME = 'Eve <img src=x onerror=alert("n1")>'
HOSTILE_ORG = 'Org <script>alert("o1")</script>'
HOSTILE_ADDRESS = '"<svg/onload=alert(1)>"@client.example'


def test_names_and_addresses_are_escaped_everywhere(db, smtp, deliver, base_url_testserver):
    org = create_organization(name=HOSTILE_ORG, domains=["hostile.example"])
    eve = create_sender(email="eve@hostile.example", name=HOSTILE_NAME, password=PASSWORD)
    alice = Client()
    alice.force_login(eve, backend=BACKEND)
    subject = '<script>alert("subj")</script> "quoted" & more'
    r = send(alice, to=f"{HOSTILE_ADDRESS}, bob@client.example", subject=subject, read_receipt=True)
    assert r.status_code == 302, r.content[:400]
    uid = r["Location"].rsplit("/", 1)[1]
    deliver()
    recipient = User.objects.get(org=org, email=HOSTILE_ADDRESS.lower())
    User.objects.filter(pk=recipient.pk).update(must_change_password=False)
    reader = Client()
    reader.force_login(recipient, backend=BACKEND)
    pages = {
        "sender message": alice.get(f"/app/m/{uid}"),
        "sender sent": alice.get("/app/sent"),
        "sender compose": alice.get("/app/compose"),
        "recipient inbox": reader.get(f"/r/{org.slug}/"),
        "recipient message": reader.get(f"/r/{org.slug}/m/{uid}"),
        "recipient reply all": reader.get(f"/r/{org.slug}/m/{uid}/reply?all=1"),
        "recipient print": reader.get(f"/r/{org.slug}/m/{uid}/print"),
    }
    for label, response in pages.items():
        assert response.status_code == 200, label
        page = response.content.decode()
        for raw in ("<img src=x", "<svg/onload", '<script>alert("'):
            assert raw not in page, (label, raw)
    assert "&lt;svg/onload=alert(1)&gt;" in pages["sender message"].content.decode()
    assert "&lt;img src=x onerror=alert(&quot;n1&quot;)&gt;" in pages["recipient message"].content.decode()
    reader.get(f"/r/{org.slug}/m/{uid}")
    deliver()
    mails = smtp.messages
    assert {m.subject for m in mails} >= {PASSWORD_SUBJECT, "Secure Messaging Read Receipt"}
    for mail in mails:
        html = mail.html
        for raw in ("<img src=x", "<svg/onload", "<script>alert"):
            assert raw not in html, (mail.subject, raw)
        assert "subj" not in mail.text + html


@pytest.mark.parametrize("subject", ["Hello\r\nBcc: evil@evil.example", "Hello\nBcc: evil@evil.example",
                                     "Hello\rBcc: evil@evil.example"])
def test_line_breaks_in_the_subject_are_refused(world, db, subject):
    alice = signed_in(world, "alice")
    before = Message.objects.count()
    r = send(alice, to="zed@client.example", subject=subject)
    assert r.status_code == 400
    assert "The subject cannot contain line breaks." in r.content.decode()
    assert Message.objects.count() == before


def test_line_breaks_in_addresses_add_no_recipient(world, db, smtp, deliver):
    alice = signed_in(world, "alice")
    before = Message.objects.count()
    r = send(alice, to="zed@client.example\r\nBcc: evil@evil.example", subject="Injected")
    assert r.status_code == 400 and "not a valid e-mail address" in r.content.decode()
    assert Message.objects.count() == before
    deliver()
    assert not [m for m in smtp.messages if "evil@evil.example" in m.rcpt_tos]


def test_organisation_sender_name_loses_its_line_breaks(db):
    org = create_organization(name="Crlf", domains=["crlf.example"], sender_name="Crlf\r\nBcc: evil@evil.example")
    assert "\r" not in org.sender_name and "\n" not in org.sender_name


def test_operators_admin_cannot_set_the_sender_name(db):
    """The name notifications come from is the organisation's (its policy) or the CLI's, never /ops/."""
    org = create_organization(name="Crlf", domains=["crlf.example"])
    User.objects.create_superuser("op@ops.example", OPS_PASSWORD)
    client = Client()
    ops_enrol(client, "op@ops.example")
    data = {"name": org.name, "slug": org.slug, "sender_name": "Crlf\r\nBcc: evil@evil.example",
            "is_active": "on", "_save": "Save"}
    r = client.post(f"/ops/orgs/organization/{org.pk}/change/", data)
    assert r.status_code == 302
    org.refresh_from_db()
    assert org.sender_name == "Crlf"


def test_organisation_sender_name_never_injects_a_header(db, smtp, deliver):
    org = create_organization(name="Crlf", domains=["crlf.example"])
    Organization.objects.filter(pk=org.pk).update(sender_name="Crlf\r\nBcc: evil@evil.example")
    sender = create_sender(email="s@crlf.example", name="S", password=PASSWORD)
    client = Client()
    client.force_login(sender, backend=BACKEND)
    assert send(client, to="zed@client.example").status_code == 302
    deliver()
    assert not [m for m in smtp.messages if "evil@evil.example" in m.rcpt_tos or m.message["Bcc"]]


# --- plaintext never leaves the ciphertext ---------------------------------------------------

FLOW_SECRETS = {
    "subject": "Ultrasound follow-up ZX41QHTMVK",
    "body": "Your ultrasound shows WQ93KJDPRA nothing of concern",
    "reply": "Thank you, I will bring VJ27MCXZLE to the clinic",
    "senders_reply": "Please also bring LP58TGWYSN next time",
}


def _full_flow(w: World, deliver) -> None:
    """Send (to a known and a new recipient), deliver, read, reply, read the reply, reply to it."""
    alice, bob = signed_in(w, "alice"), signed_in(w, "bob")
    r = send(alice, to=f"{BOB}, newcomer@client.example", subject=FLOW_SECRETS["subject"],
             body=f"<p>{FLOW_SECRETS['body']}</p>", read_receipt=True)
    uid = r["Location"].rsplit("/", 1)[1]
    deliver()
    assert FLOW_SECRETS["body"] in bob.get(f"/r/{slug(w)}/m/{uid}").content.decode()
    r = bob.post(f"/r/{slug(w)}/m/{uid}/reply",
                 {"body": FLOW_SECRETS["reply"], "body_format": "text", "send_token": secrets.token_urlsafe(24)})
    assert r.status_code == 302
    deliver()
    reply = Message.objects.get(in_reply_to__uid=uid, kind=Message.Kind.REPLY)
    assert FLOW_SECRETS["reply"] in alice.get(f"/app/m/{reply.uid}").content.decode()
    r = send(alice, to=BOB, subject="Re: " + FLOW_SECRETS["subject"], body=FLOW_SECRETS["senders_reply"],
             body_format="text", in_reply_to=reply.uid)
    assert r.status_code == 302
    deliver()
    assert Notification.objects.exclude(status=Notification.Status.SENT).count() == 0


def _needles() -> list[str]:
    """Whole secrets and their distinctive tokens, this test's and the world's."""
    tokens = [re.search(r"[A-Z]{2}\d{2}[A-Z]{6}", s).group(0) for s in FLOW_SECRETS.values()]
    everything = [*FLOW_SECRETS.values(), *tokens, *SECRETS, *(s for s, _ in CONTENT.values())]
    return [n.lower() for n in everything]


def _as_text(value) -> str | None:
    if isinstance(value, memoryview):
        value = bytes(value)
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, str):
        return value
    return None


def _database_hits(needles: list[str]) -> list[tuple[str, str, str]]:
    hits = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            columns = [c.name for c in connection.introspection.get_table_description(cursor, table)]
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 - introspected names
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    text = _as_text(value)
                    if text is None:
                        continue
                    texts = [text.lower()]
                    if table == "django_session" and column == "session_data":
                        texts.append(repr(SessionStore().decode(text)).lower())
                    for needle in needles:
                        if any(needle in t for t in texts):
                            hits.append((table, column, needle))
    return hits


def test_no_plaintext_anywhere_in_the_database(world, db, smtp, deliver):
    _full_flow(world, deliver)
    assert _database_hits(_needles()) == []
    # The scan does read every table: it finds what is stored in clear on purpose.
    assert ("accounts_user", "email", "newcomer@client.example") in _database_hits(["newcomer@client.example"])


def test_no_plaintext_in_any_email(world, db, smtp, deliver):
    _full_flow(world, deliver)
    mails = smtp.messages
    kinds = {m.subject for m in mails}
    assert {PASSWORD_SUBJECT, "Secure Messaging Notification", "Secure Messaging Read Receipt",
            "Secure Messaging Reply Notification"} <= kinds
    for mail in mails:
        raw = mail.message.as_bytes().decode("latin-1").lower()
        decoded = "\n".join(str(v) for _, v in mail.message.items()) + mail.text + mail.html
        for needle in _needles():
            assert needle not in raw and needle not in decoded.lower(), (mail.subject, needle)


@pytest.fixture
def every_logger_at_debug(caplog):
    manager = logging.root.manager
    loggers = [logging.root] + [lg for lg in manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    caplog.set_level(logging.DEBUG)  # first, so that it restores the root level it found
    levels = {lg: lg.level for lg in loggers}
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    force = connection.force_debug_cursor
    connection.force_debug_cursor = True  # every SQL statement and its parameters, logged
    yield caplog
    connection.force_debug_cursor = force
    for lg, level in levels.items():
        lg.setLevel(level)


def test_no_plaintext_in_logs(world, db, smtp, deliver, every_logger_at_debug):
    _full_flow(world, deliver)
    records = every_logger_at_debug.records
    assert any(r.name == "django.db.backends" for r in records)  # the capture works
    text = "\n".join(
        f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''} {getattr(r, 'sql', '')} {getattr(r, 'params', '')!r}"
        for r in records
    ).lower()
    for needle in _needles():
        assert needle not in text, needle


# --- redirects, sessions -----------------------------------------------------------------------

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
    target = target.format(A=slug(w))
    r = Client().post("/login?" + _q(target), {"email": w.users["alice"].email, "password": PASSWORD})
    assert r.status_code == 302
    _same_site(r["Location"], "/app/")


def _q(target: str) -> str:
    from urllib.parse import urlencode

    return urlencode({"next": target})


@pytest.mark.parametrize("target", [*EVIL_NEXT, "/app/", "/r/{B}/", "/login"])
def test_recipient_login_next_stays_in_the_organisation(world, db, quick_password_check, target):
    w = world
    target = target.format(B=slug(w, "B"))
    prefix = f"/r/{slug(w)}/"
    r = Client().post(f"/r/{slug(w)}/login?" + _q(target), {"email": BOB, "password": NEW_PASSWORD})
    assert r.status_code == 302
    _same_site(r["Location"], prefix)
    assert r["Location"] == prefix
    # Already signed in, the GET only forwards, to the same safe place.
    r = signed_in(w, "bob").get(f"/r/{slug(w)}/login?" + _q(target))
    assert (r.status_code, r["Location"]) == (302, prefix)
    # The form carries only the cleaned target.
    page = Client().get(f"/r/{slug(w)}/login?" + _q(target)).content.decode()
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
    target = f"/r/{slug(w)}/m/{w.uids['m1']}"
    r = Client().post(f"/r/{slug(w)}/login?" + _q(target), {"email": BOB, "password": NEW_PASSWORD})
    assert r["Location"] == target
    r = Client().post("/login?next=/app/sent", {"email": w.users["alice"].email, "password": PASSWORD})
    assert r["Location"] == "/app/sent"


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
        r = client.post(f"/r/{slug(w)}/login", {"email": BOB, "password": NEW_PASSWORD})
        home = f"/r/{slug(w)}/"
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
    alice = signed_in(w, "alice")
    key = alice.cookies[SESSION_COOKIE].value
    assert alice.post("/logout").status_code == 302
    thief = Client()
    thief.cookies[SESSION_COOKIE] = key
    assert thief.get("/app/").status_code == 302


def test_password_change_signs_out_other_sessions(world, db):
    w = world
    here, elsewhere = signed_in(w, "bob"), signed_in(w, "bob")
    new = "Granite-violin-harbour-61"
    r = here.post(f"/r/{slug(w)}/password", {"password": new, "confirm": new, "current": "wrong"})
    assert r.status_code == 400 and "current password is not right" in r.content.decode()
    assert elsewhere.get(f"/r/{slug(w)}/").status_code == 200
    r = here.post(f"/r/{slug(w)}/password",
                  {"password": new, "confirm": new, "current": w.passwords["bob"]})
    assert r.status_code == 302
    assert here.get(f"/r/{slug(w)}/").status_code == 200
    assert elsewhere.get(f"/r/{slug(w)}/").status_code == 302


# --- temporary passwords ------------------------------------------------------------------------

def _temporary_password(smtp, email: str, count: int = 1) -> str:
    return smtp.wait_for(email, PASSWORD_SUBJECT, count=count)[-1].temporary_password()


def test_temporary_password_works_once(world, db, smtp, deliver):
    w = world
    pending = _pending_recipient(w)
    deliver()
    temp = _temporary_password(smtp, pending.email)
    path = f"/r/{slug(w)}/login"
    assert Client().post(path, {"email": pending.email, "password": temp}).status_code == 302
    assert Client().post(path, {"email": pending.email, "password": temp}).status_code == 400


def test_resend_token_cannot_be_replayed_after_the_password_is_set(world, db, smtp, deliver):
    w = world
    pending = _pending_recipient(w)
    deliver()
    expired = _temporary_password(smtp, pending.email)
    clock.travel(timedelta(days=django_settings.TEMP_PASSWORD_DAYS, minutes=1))
    path = f"/r/{slug(w)}/login"
    page = Client().post(path, {"email": pending.email, "password": expired}).content.decode()
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    assert Client().post(f"{path}/resend", {"token": token}).status_code == 302
    deliver()
    fresh = _temporary_password(smtp, pending.email, count=2)
    owner = Client()
    assert owner.post(path, {"email": pending.email, "password": fresh}).status_code == 302
    chosen = "Granite-violin-harbour-61"
    assert owner.post(f"/r/{slug(w)}/password", {"password": chosen, "confirm": chosen}).status_code == 302
    # Minutes later, someone replays the token (it sat in the page, the history, a proxy log...).
    Client().post(f"{path}/resend", {"token": token})
    deliver()
    assert Client().post(path, {"email": pending.email, "password": chosen}).status_code == 302


def test_resend_needs_a_valid_token_for_this_organisation(world, db):
    from django.core import signing

    from hushpost.recipients.views import RESEND_SALT

    w = world
    before = Notification.objects.count()
    for token in ("", "garbage", signing.dumps(w.users["bob"].pk, salt="another-salt"),
                  signing.dumps(w.users["erin"].pk, salt=RESEND_SALT)):
        r = Client().post(f"/r/{slug(w)}/login/resend", {"token": token})
        assert r.status_code in (302, 404)
        assert "erin@" not in r.get("Location", "")
    assert Notification.objects.count() == before


# --- the development mailbox ---------------------------------------------------------------------

@pytest.fixture
def stored_mail(db):
    return DevMail.objects.create(to="bob@client.example", from_email="x@y.example", subject=PASSWORD_SUBJECT,
                                  text="temporary password abcde-fghij", html="<p>hi</p>", raw="raw")


def _mailbox_urls(mail) -> list[str]:
    return ["/dev/mailbox", f"/dev/mailbox/{mail.pk}", f"/dev/mailbox/{mail.pk}/html"]


def test_dev_mailbox_is_not_found_when_disabled(stored_mail, settings, client):
    settings.DEV_MAILBOX_ENABLED = False
    for url in _mailbox_urls(stored_mail):
        r = client.get(url)
        assert r.status_code == 404, url
        assert "abcde-fghij" not in r.content.decode()
    assert "/dev/mailbox" not in client.get("/login").content.decode()


def test_dev_mailbox_is_not_found_in_production_even_if_enabled(stored_mail, settings, client):
    settings.DEV_MAILBOX_ENABLED = True
    settings.PRODUCTION = True
    for url in _mailbox_urls(stored_mail):
        assert client.get(url).status_code == 404, url


def test_dev_mailbox_answers_in_development(stored_mail, settings, client):
    settings.DEV_MAILBOX_ENABLED = True
    for url in _mailbox_urls(stored_mail):
        assert client.get(url).status_code == 200, url


# --- production refuses unsafe settings -----------------------------------------------------------

HUSHPOST = str(Path(sys.executable).parent / "hushpost")
GOOD = {
    "HUSHPOST_SECRET_KEY": "s" * 10 + secrets.token_urlsafe(40),
    "HUSHPOST_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),  # openssl rand -base64 32
    "HUSHPOST_EMAIL_URL": "smtp://relay.example:587",
    "HUSHPOST_BASE_URL": "https://secure.example.org",
}
PROBLEMS = {
    "secret": ("HUSHPOST_SECRET_KEY", "HUSHPOST_SECRET_KEY (or HUSHPOST_SECRET_KEY_FILE) is not set"),
    "master": ("HUSHPOST_MASTER_KEY", "HUSHPOST_MASTER_KEY (or HUSHPOST_MASTER_KEY_FILE) is not set"),
    "mailbox": ("HUSHPOST_EMAIL_URL", "HUSHPOST_EMAIL_URL is the dev mailbox"),
    "debug": ("HUSHPOST_DEBUG", "HUSHPOST_DEBUG is on"),
}


def _run(tmp_path, env: dict[str, str], *args: str, command=None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT")}
    clean["HUSHPOST_DATABASE_URL"] = f"sqlite:///{tmp_path / 'prod.sqlite3'}"
    clean.update(env)
    return subprocess.run(command or [HUSHPOST, *args], env=clean, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)


def test_production_refuses_to_start_with_nothing_configured(tmp_path):
    r = _run(tmp_path, {}, "check")
    assert r.returncode == 2, r.stderr
    assert "refuses to start in production mode" in r.stderr
    for name in ("secret", "master", "mailbox"):
        assert PROBLEMS[name][1] in r.stderr
    assert PROBLEMS["debug"][1] not in r.stderr


@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_production_names_each_problem(tmp_path, problem):
    env = dict(GOOD)
    variable, message = PROBLEMS[problem]
    if problem == "debug":
        env["HUSHPOST_DEBUG"] = "true"
    elif problem == "mailbox":
        env["HUSHPOST_EMAIL_URL"] = "mailbox:"
    else:
        env.pop(variable)
    r = _run(tmp_path, env, "check")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr
    for other, (_, text) in PROBLEMS.items():
        if other != problem:
            assert text not in r.stderr


def test_production_starts_when_configured(tmp_path):
    r = _run(tmp_path, GOOD, "check")
    assert r.returncode == 0, r.stderr
    assert "no issues" in r.stdout
    shown = _run(tmp_path, GOOD, "shell", "-c",
                 "from django.conf import settings as s; print(s.PRODUCTION, s.DEBUG, s.DEV_MAILBOX_ENABLED, "
                 "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY)")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip().splitlines()[-1].split() == ["True", "False", "False", "True", "True", "True"]


def test_production_reads_secrets_from_files(tmp_path):
    secret, master = tmp_path / "secret", tmp_path / "master"
    secret.write_text(GOOD["HUSHPOST_SECRET_KEY"] + "\n")
    master.write_text(GOOD["HUSHPOST_MASTER_KEY"] + "\n")
    env = {"HUSHPOST_SECRET_KEY_FILE": str(secret), "HUSHPOST_MASTER_KEY_FILE": str(master),
           "HUSHPOST_EMAIL_URL": GOOD["HUSHPOST_EMAIL_URL"], "HUSHPOST_BASE_URL": GOOD["HUSHPOST_BASE_URL"]}
    assert _run(tmp_path, env, "check").returncode == 0
    env["HUSHPOST_MASTER_KEY_FILE"] = str(tmp_path / "missing")
    r = _run(tmp_path, env, "check")
    assert r.returncode == 2 and "HUSHPOST_MASTER_KEY_FILE" in r.stderr


def test_wsgi_entry_point_refuses_too(tmp_path):
    r = _run(tmp_path, {}, command=[sys.executable, "-c", "import hushpost.wsgi"])
    assert r.returncode == 2
    assert PROBLEMS["secret"][1] in r.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"HUSHPOST_SECRET_KEY": "short-secret"}, "HUSHPOST_SECRET_KEY is shorter than 32 characters"),
        ({"HUSHPOST_MASTER_KEY": "a memorable passphrase"}, "HUSHPOST_MASTER_KEY must be 32 random bytes"),
        ({"HUSHPOST_BASE_URL": "http://secure.example.org"}, "HUSHPOST_BASE_URL must start with https://"),
    ],
)
def test_production_refuses_weak_settings(tmp_path, change, message):
    r = _run(tmp_path, GOOD | change, "check")
    assert r.returncode == 2 and message in r.stderr


def test_production_accepts_https_base_url(tmp_path):
    r = _run(tmp_path, GOOD | {"HUSHPOST_BASE_URL": "https://secure.example.org"}, "check")
    assert r.returncode == 0, r.stderr


def test_production_refuses_plain_http_between_regions(tmp_path):
    regions = tmp_path / "regions.toml"
    regions.write_text(
        '[trust]\nkey = "QEFuxEXTRb42NsHiYkYI/qDNzBdhYzSglxI3d4bpu63C"\n'
        '[regions.us]\nbase_url = "https://secure.example.org"\n'
        '[regions.eu]\nbase_url = "http://eu.secure.example.org"\n')
    env = GOOD | {"HUSHPOST_REGION": "us", "HUSHPOST_REGIONS_FILE": str(regions)}
    r = _run(tmp_path, env, "check")
    assert r.returncode == 2 and "region eu's base_url must be https://" in r.stderr
