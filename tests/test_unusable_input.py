"""Unusable input anywhere gets a clear answer, never a 500.

NUL (which PostgreSQL cannot even compare), other control characters,
over-long values and impossible dates go into every typed field of every form
and filter, and stray NULs and control characters into every route, on the
database the suite runs on. Typed fields answer with their own form and the
problem explained (400); anything else with the page that says why (400).

The routes come from Django's URL resolver: a route added without a line in
``FIELDS`` or ``NO_TYPED_FIELDS`` fails ``test_every_route_is_walked``, and so
does a view whose declared fields (``@checks_input``) differ from its line.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from functools import cached_property
from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from hushpost.accounts.actions import create_sender
from hushpost.accounts.models import Throttle, User
from hushpost.accounts.reset import invitation_tokens, tokens
from hushpost.lib.input import IN_ADDRESS, IN_FIELDS
from hushpost.messaging.models import Message
from hushpost.regions.config import Region, Regions
from hushpost.regions.discovery import SIGNATURE, sign
from tests.helpers import enrol
from tests.personas import BOB, NEW_PASSWORD, PASSWORD

LINE, TEXT, SECRET, DAY, DOCUMENT = "line", "text", "secret", "day", "document"
STRONG = "Solid-granite-meadow-88"
CONTROLS = {"NUL": "\x00", "bell": "\x07", "escape": "\x1b", "delete": "\x7f", "C1 next line": "\x85"}
REFUSED = "This cannot be used"  # the heading of the page that refuses what no form checks

# Every typed field of every form or filter, by route.
FIELDS = {
    "senders:login": {"email": LINE, "password": SECRET},
    "recipients:login": {"email": LINE, "password": SECRET},
    "find-portal": {"email": LINE},
    "senders:forgot": {"email": LINE},
    "recipients:forgot": {"email": LINE},
    "senders:reset": {"password": SECRET, "confirm": SECRET},
    "senders:welcome": {"password": SECRET, "confirm": SECRET},
    "recipients:reset": {"password": SECRET, "confirm": SECRET},
    "senders:second-factor": {"code": SECRET},
    "recipients:second-factor": {"code": SECRET},
    "senders:two-factor": {"code": SECRET, "current": SECRET, "current_code": SECRET},
    "recipients:two-factor": {"code": SECRET, "current": SECRET, "current_code": SECRET},
    "senders:account": {"current": SECRET, "current_code": SECRET, "password": SECRET, "confirm": SECRET},
    "recipients:password": {"current": SECRET, "current_code": SECRET, "password": SECRET, "confirm": SECRET,
                            "phrase": LINE},
    "recipients:security-phrase": {"current": SECRET, "current_code": SECRET, "phrase": LINE},
    "senders:compose": {"to": TEXT, "cc": TEXT, "subject": LINE, "body": TEXT},
    "recipients:reply": {"body": TEXT},
    "orgadmin:senders": {"email": LINE, "name": LINE},
    "orgadmin:recipients": {"q": LINE},
    "orgadmin:messages": {"sender": LINE, "recipient": LINE, "since": DAY, "until": DAY},
    "orgadmin:audit": {"actor": LINE, "since": DAY, "until": DAY},
    "orgadmin:policy": {"sender_name": LINE, "notify_from_email": LINE},
    "orgadmin:sso": {"oidc_issuer": LINE, "oidc_client_id": LINE, "oidc_client_secret": SECRET,
                     "saml_metadata_url": LINE, "saml_metadata_xml": DOCUMENT, "group_claim": LINE,
                     "admin_group": LINE},
    "orgadmin:provisioning": {"name": LINE},
    "orgadmin:branding": {"accent": LINE, "footer": TEXT, "support_email": LINE, "support_phone": LINE},
    "orgadmin:hold-place": {"address": LINE, "reason": LINE},
    "senders:correct-address": {"address": LINE},
}

# Routes that take nothing typed (buttons, links, files, signed server-to-server calls, pages).
NO_TYPED_FIELDS = {
    "home", "senders:logout", "senders:inbox", "senders:sent", "senders:sign-out-everywhere", "senders:upload",
    "senders:discard-file", "senders:message", "senders:file", "senders:retry", "senders:recall",
    "senders:expiry", "senders:time-zone", "recipients:time-zone", "recipients:inbox", "recipients:resend",
    "recipients:logout", "recipients:sign-out-everywhere", "recipients:notification-link", "recipients:sent",
    "recipients:upload", "recipients:discard-file", "senders:resend",
    "recipients:message", "recipients:file", "recipients:print", "recipients:delete", "orgadmin:sender-active",
    "orgadmin:sender-reset", "orgadmin:sender-invite", "orgadmin:sender-import",
    "orgadmin:recipient-reset", "orgadmin:unlock", "orgadmin:message-recall", "orgadmin:message-export",
    "region-domain-lookup",
    "region-portals-lookup", "dev-mailbox", "dev-mail", "dev-mail-html",
    "orgadmin:provisioning-revoke", "orgadmin:retention", "orgadmin:hold-release",
    # An organisation's public branding files, addressed by their content.
    "brand:logo", "brand:accent",
    # Single sign-on: the identity provider's answers (checked as signed tokens and assertions).
    "sso:start", "sso:oidc-callback", "sso:saml-acs", "sso:saml-metadata",
    # Provisioning: JSON with a bearer token, each value checked by hushpost/scim (tests/test_scim.py).
    "scim:service-provider-config", "scim:resource-types", "scim:resource-type", "scim:schemas", "scim:schema",
    "scim:users", "scim:user",
    # Passkeys: the browser's answer, and the password "Confirm it's you" asks like the admin's buttons.
    *(f"{portal}:passkey-{step}" for portal in ("senders", "recipients")
      for step in ("sign-in", "second-step", "add", "keep", "remove")),
}


# An API's query fields, answered in its own words (SCIM's errors: tests/test_scim.py), not with a form.
API_FIELDS = {"scim:users": {"filter", "startIndex", "count", "attributes", "excludedAttributes"}}


def _routes():
    """(route, name, view, converters) for every URL pattern the site has."""

    def walk(patterns, prefix="", namespace=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern), p.namespace or namespace)
            elif isinstance(p, URLPattern):
                name = f"{namespace}:{p.name}" if namespace else str(p.name)
                yield prefix + str(p.pattern), name, p.callback

    return list(walk(get_resolver().url_patterns))


def test_every_route_is_walked():
    # The operators' site (Django's admin) is walked for stray NULs below and in tests/test_ops.py.
    named = {name: view for _, name, view in _routes() if not name.startswith(("admin:", "ops:"))}
    assert set(named) == set(FIELDS) | NO_TYPED_FIELDS, "give each new route a line in FIELDS or NO_TYPED_FIELDS"
    assert set(SUBMISSIONS) == set(FIELDS)
    for name, view in named.items():
        assert getattr(view, "checks_input", frozenset()) == set(FIELDS.get(name, API_FIELDS.get(name, {}))), name


def bad_values(kind: str, good: str):
    """(what, value): the good value spoilt each way its kind of field must explain."""
    # A secret is only ever hashed or compared, never looked up: NUL and one other will do.
    for what, char in CONTROLS.items() if kind != SECRET else (("NUL", "\x00"), ("escape", "\x1b")):
        yield what, good[:1] + char + good[1:]
    yield "too long", good + "x" * (600_000 if kind == DOCUMENT else 5000)
    if kind == DAY:
        yield from (("30 February", "2026-02-30"), ("year 99999", "99999-01-01"), ("month 13", "2026-13-01"),
                    ("year 0", "0000-01-01"))


# The world each form is tried in ----------------------------------------------------

def signed_in(login: str, email: str, password: str = PASSWORD) -> Client:
    client = Client()
    r = client.post(login, {"email": email, "password": password})
    assert r.status_code == 302, r.content[:300]
    return client


def recipient(org, email: str) -> User:
    user = User(org=org, email=email, role=User.Role.RECIPIENT)
    user.set_password(PASSWORD)
    user.save()
    return user


class World:
    """Northwind, Alice who sent Bob a message, and Ada its admin; each made when first needed."""

    def __init__(self, org, make_sender):
        self.org, self.make_sender = org, make_sender

    @cached_property
    def alice(self) -> User:
        return self.make_sender(self.org, "alice", "Alice Moreno")

    @cached_property
    def alice_client(self) -> Client:
        return signed_in("/login", self.alice.email)

    @cached_property
    def admin(self) -> Client:
        self.make_sender(self.org, "ada", "Ada Admin", admin=True)
        return signed_in("/login", "ada@northwind.example")

    @cached_property
    def message(self) -> Message:
        r = self.alice_client.post("/app/compose", compose_data())
        assert r.status_code == 302, r.content[:300]
        return Message.objects.get(kind=Message.Kind.MESSAGE)

    @cached_property
    def bob(self) -> User:
        self.message  # noqa: B018 - Bob's account comes with the message
        bob = User.objects.get(email=BOB, role=User.Role.RECIPIENT)
        bob.set_password(PASSWORD)
        bob.must_change_password, bob.temp_password_expires_at = False, None
        bob.save()
        return bob

    @cached_property
    def bob_client(self) -> Client:
        self.bob  # noqa: B018
        return signed_in(f"/r/{self.org.slug}/login", BOB)


@pytest.fixture
def world(org, make_sender, settings):
    settings.MAX_BODY_BYTES = 4000  # "too long" stays small
    return World(org, make_sender)


def compose_data() -> dict:
    return {"to": BOB, "cc": "carol@client.example", "subject": "Quarterly statement",
            "body": "<p>Kind regards</p>", "body_format": "html", "restriction": "none", "expire_days": "0",
            "send_token": secrets.token_urlsafe(24), "confirm": "1"}


def _reset(user: User, prefix: str):
    user.refresh_from_db()  # the link is bound to the last sign-in
    client = Client()
    fragment = f"{urlsafe_base64_encode(force_bytes(user.pk))}/{tokens.make_token(user)}"
    r = client.post(f"{prefix}/reset", {"link": fragment})  # what the page's script does with the link
    assert r.status_code == 302
    return [(client, "post", r["Location"], {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})]


def _welcome():
    invited = create_sender(email="ivy@northwind.example", name="Ivy")  # no password: invited
    client = Client()
    fragment = f"{urlsafe_base64_encode(force_bytes(invited.pk))}/{invitation_tokens.make_token(invited)}"
    r = client.post("/welcome", {"link": fragment})
    assert r.status_code == 302
    return [(client, "post", r["Location"], {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})]


def _second_step(w, sender: bool):
    org = w.org
    login, settings_page = ("/login", "/app/account/2fa") if sender else (f"/r/{org.slug}/login", f"/r/{org.slug}/2fa")
    email = w.alice.email if sender else w.bob.email
    enrol(w.alice_client if sender else w.bob_client, settings_page)
    client = Client()
    r = client.post(login, {"email": email, "password": PASSWORD})
    assert r.status_code == 302
    return [(client, "post", r["Location"].split("?")[0], {"code": "123456"})]


def _two_factor_settings(w, sender: bool):
    org = w.org
    if sender:
        login, page = "/login", "/app/account/2fa"
        fresh, enrolled = w.alice_client, "tess@northwind.example"
        create_sender(email=enrolled, name="Tess", password=PASSWORD)
    else:
        login, page = f"/r/{org.slug}/login", f"/r/{org.slug}/2fa"
        fresh, enrolled = w.bob_client, "rita@client.example"
        recipient(org, enrolled)
    fresh.get(page)  # the page makes the secret the code must match
    with_two_factor = signed_in(login, enrolled)
    enrol(with_two_factor, page)
    return [(fresh, "post", page, {"action": "enable", "code": "123456"}),
            (with_two_factor, "post", page, {"action": "disable", "current": PASSWORD, "current_code": "123456"})]


def _new_password(client: Client, path: str):
    return [(client, "post", path, {"current": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})]


def _policy(w):
    data = {"sender_name": "Northwind Health", "notify_from_email": "notices@northwind.example",
            "default_restriction": "none", "default_expire_days": "0", "allowed_expiry": ["0", "1", "7", "30"],
            "max_file_mb": "100", "max_message_mb": "100"}
    return [(w.admin, "post", "/app/admin/policy", data)]


def _filters(w, path: str, data: dict, *extra: dict):
    return [(w.admin, "get", path, {**data, **more}) for more in ({}, *extra)]


SUBMISSIONS = {
    "senders:login": lambda w: [(Client(), "get", "/login", {"email": w.alice.email}),
                                (Client(), "post", "/login", {"email": w.alice.email, "password": PASSWORD})],
    "recipients:login": lambda w: [
        (Client(), "get", f"/r/{w.org.slug}/login", {"email": w.bob.email}),
        (Client(), "post", f"/r/{w.org.slug}/login", {"email": w.bob.email, "password": PASSWORD})],
    "find-portal": lambda w: [(Client(), "post", "/find-my-portal", {"email": BOB})],
    "senders:forgot": lambda w: [(Client(), "post", "/forgot", {"email": w.alice.email})],
    "recipients:forgot": lambda w: [(Client(), "post", f"/r/{w.org.slug}/forgot", {"email": BOB})],
    "senders:reset": lambda w: _reset(w.alice, ""),
    "senders:welcome": lambda w: _welcome(),
    "recipients:reset": lambda w: _reset(w.bob, f"/r/{w.org.slug}"),
    "senders:second-factor": lambda w: _second_step(w, sender=True),
    "recipients:second-factor": lambda w: _second_step(w, sender=False),
    "senders:two-factor": lambda w: _two_factor_settings(w, sender=True),
    "recipients:two-factor": lambda w: _two_factor_settings(w, sender=False),
    "senders:account": lambda w: _new_password(w.alice_client, "/app/account"),
    "recipients:password": lambda w: _new_password(w.bob_client, f"/r/{w.org.slug}/password"),
    "recipients:security-phrase": lambda w: [(w.bob_client, "post", f"/r/{w.org.slug}/phrase",
                                              {"current": PASSWORD, "phrase": "blue heron at dawn"})],
    "senders:compose": lambda w: [(w.alice_client, "post", "/app/compose", compose_data())],
    "recipients:reply": lambda w: [(
        w.bob_client, "post", f"/r/{w.org.slug}/m/{w.message.uid}/reply",
        {"body": "<p>Thank you</p>", "body_format": "html", "send_token": secrets.token_urlsafe(24)})],
    "orgadmin:senders": lambda w: [(w.admin, "post", "/app/admin/",
                                    {"email": "nina@northwind.example", "name": "Nina New"})],
    "orgadmin:recipients": lambda w: _filters(w, "/app/admin/recipients", {"q": "bob"}),
    "orgadmin:messages": lambda w: _filters(w, "/app/admin/messages", {
        "sender": "alice", "recipient": "bob", "since": "2026-01-01", "until": "2026-12-31"}),
    "orgadmin:audit": lambda w: _filters(w, "/app/admin/audit", {
        "actor": "alice", "since": "2026-01-01", "until": "2026-12-31"}, {"format": "csv"}),
    "orgadmin:policy": _policy,
    "orgadmin:sso": lambda w: [(w.admin, "post", "/app/admin/sso", {
        "protocol": "", "oidc_issuer": "https://login.northwind.example", "oidc_client_id": "secure-messaging",
        "oidc_client_secret": "client-secret-value", "saml_metadata_url": "https://idp.northwind.example/metadata",
        "saml_metadata_xml": "<EntityDescriptor/>", "group_claim": "groups", "admin_group": "messaging-admins"})],
    "orgadmin:provisioning": lambda w: [(w.admin, "post", "/app/admin/provisioning", {"name": "Microsoft Entra ID"})],
    "orgadmin:branding": lambda w: [(w.admin, "post", "/app/admin/branding", {
        "accent": "#0b6e4f", "footer": "Northwind Health, 1 Harbour Road", "support_email": "help@northwind.example",
        "support_phone": "+44 113 496 0000", "action": "save"})],
    "orgadmin:hold-place": lambda w: [(w.admin, "post", "/app/admin/retention/holds",
                                       {"kind": "sender", "address": w.alice.email, "reason": "Matter 2026-114"})],
    "senders:correct-address": lambda w: [(w.alice_client, "post", f"/app/m/{w.message.uid}/correct", {
        "delivery": str(w.message.deliveries.first().pk), "address": "bob.smith@client.example"})],
}


@pytest.mark.parametrize("route", sorted(FIELDS))
def test_every_typed_field_explains_what_it_cannot_use(world, route):
    for client, method, path, good in SUBMISSIONS[route](world):
        for field in FIELDS[route].keys() & good.keys():
            for what, value in bad_values(FIELDS[route][field], good[field]):
                Throttle.objects.all().delete()  # each try on its own, not a guessing run
                r = getattr(client, method)(path, {**good, field: value})
                page = r.content.decode()
                where = f"{method.upper()} {path} {field}: {what}"
                assert r.status_code == 400, (where, r.status_code)
                assert r["Content-Type"].startswith("text/html"), where  # the form, not a CSV
                assert "<form" in page and REFUSED not in page, where
                assert 'role="alert"' in page or 'class="field-error"' in page, where


# Everything else: the backstop ------------------------------------------------------

SAMPLES = {"uid": "NoSuchMessage0000000000", "file_uid": "NoSuchFile000000000000", "org_slug": "northwind-health",
           "user_id": "1", "notification_id": "1", "pk": "1", "uidb64": "MQ", "token": "set-password",
           "object_id": "1", "content_type_id": "1", "token_id": "1", "hold_id": "1", "name": "User",
           "urn": "urn:ietf:params:scim:schemas:core:2.0:User", "code": "NoSuchCode", "digest": "0" * 64,
           "colour": "0b6e4f"}
PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


def _concrete():
    """Every route with sample values for its parameters (regular-expression routes left out)."""
    for route, name, view in _routes():
        if "(?P<" not in route:
            yield route, name, view


def _path(route: str, **given) -> str:
    return "/" + PARAM.sub(lambda m: given.get(m.group(2), SAMPLES[m.group(2)]), route)


@pytest.mark.parametrize(("route", "name", "view"), list(_concrete()), ids=lambda v: v if isinstance(v, str) else "")
def test_a_stray_nul_anywhere_gets_the_page_that_says_why(client, db, route, name, view):
    path = _path(route)
    answers = [client.get(path + "?stray=a%00b"), client.post(path, {"stray": "a\x00b"})]
    if getattr(view, "csrf_exempt", False):
        # Not forms: signed calls between regions (refused unsigned), provisioning (refused without
        # its bearer token), the SAML assertion consumer service (refused without an answer in it).
        expected = 401 if path.startswith("/scim/") else 400 if path.endswith("/saml/acs") else 403
        assert answers.pop().status_code == expected, path
    for r in answers:
        assert r.status_code == 400, (path, r.status_code)
        assert IN_FIELDS in r.content.decode()


def test_a_control_character_or_an_impossible_value_in_an_address_is_no_error(world):
    users = (world.admin, world.bob_client)
    for route, _, _ in _concrete():
        for param in PARAM.finditer(route):
            converter, key = param.group(1) or "str", param.group(2)
            for char in ("%00", "%01", "%1B"):
                r = users[0].get(_path(route, **{key: "a" + char + "b"}))
                assert r.status_code == (400 if converter in ("str", "path") else 404), (route, key, char)
                if r.status_code == 400:
                    assert IN_ADDRESS in r.content.decode()
            impossible = "9" * 30 if converter == "int" else quote("x" * 5000)
            for user in users:
                for r in (user.get(_path(route, **{key: impossible})), user.post(_path(route, **{key: impossible}))):
                    assert r.status_code < 500, (route, key, r.status_code)


def test_signed_questions_from_another_region_with_a_nul_get_an_empty_answer(client, world, settings):
    key = "QEFuxEXTRb42NsHiYkYI/qDNzBdhYzSglxI3d4bpu63C"
    settings.REGIONS = Regions(here="us", key=key.encode(), regions={
        "us": Region("us", "US", "http://testserver"), "eu": Region("eu", "EU", "http://eu.example")})
    for purpose, field, value in (("portals", "email", "b\x00ob@client.example"),
                                  ("domain", "domain", "client\x00.example")):
        body = json.dumps({"purpose": purpose, "from": "eu", "to": "us", "nonce": "n1", "ts": time.time(),
                           field: value}).encode()
        r = client.post(f"/regions/v1/{'portals' if purpose == 'portals' else 'domain'}", body,
                        content_type="application/json", **{"HTTP_" + SIGNATURE.upper().replace("-", "_"): sign(body)})
        assert r.status_code == 200, r.content[:200]
        answer = json.loads(r.content)
        assert answer.get("portals", []) == [] and answer.get("hosted", False) is False


def test_a_recipient_number_only_unicode_calls_a_digit_is_refused(world):
    r = world.alice_client.post(f"/app/m/{world.message.uid}/recall", {"recipient": "²"})
    assert r.status_code == 400 and b"Choose a recipient" in r.content


def test_a_recall_from_the_admin_area_goes_back_only_to_a_search_it_wrote(world):
    r = world.admin.post(f"/app/admin/messages/{world.message.uid}/recall", {"back": "sender=al\x01ice"})
    assert r.status_code == 302 and r["Location"] == "/app/admin/messages"
    r = world.admin.post(f"/app/admin/messages/{world.message.uid}/recall", {"back": "sender=alice&status=active"})
    assert r["Location"] == "/app/admin/messages?sender=alice&status=active"
