"""Who may open what: every message URL, for every persona, over HTTP.

The personas live in one small world (``tests/personas.py``, the ``world``
fixture), built once for the module through the real portal (HTTP sends, the
real worker, a real SMTP sink, first sign-ins with the e-mailed temporary
passwords) and committed; each test then runs in its own rolled-back
transaction, so a test that deletes or replies changes nothing for the next one.

* Alice (sender, org A) sends m1 to Bob and m2 to Carol; Bob replies (r1).
* Dave is a second sender of org A: he sees none of it.
* Charlie (sender, org B) sends mB to Erin and mB2 to bob@... in org B,
  which makes a *second* Bob account (bobb): one address, two organisations,
  two accounts, two passwords.

Wrong persona, same portal: 404, byte for byte the answer for a message that
does not exist.  Wrong portal (a recipient on /app/..., a sender on /r/...),
wrong organisation (Bob's org-A session on /r/<org B>/...) and anonymous
visitors: a redirect to that portal's sign-in page, the same as for a message
that does not exist.  Never any content, and nothing changes.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlencode

import pytest
from django.test import Client

from hushpost.messaging.models import Delivery, Message
from hushpost.notifications.models import Notification
from hushpost.orgs.models import Organization
from tests.personas import (
    BOB,
    BOB_B_PASSWORD,
    CONTENT,
    FILES,
    NEW_PASSWORD,
    PASSWORD,
    REPLY_BODY,
    SECRETS,
    World,
)

# --- the matrix -------------------------------------------------------------

ROLE_ORG = {
    "alice": ("sender", "A"), "dave": ("sender", "A"), "charlie": ("sender", "B"),
    "bob": ("recipient", "A"), "carol": ("recipient", "A"),
    "erin": ("recipient", "B"), "bobb": ("recipient", "B"),
    "anon": (None, None),
}
PERSONAS = list(ROLE_ORG)
TARGETS = ["m1", "r1", "m2", "mB", "mB2"]
SENDER_ACTIONS = ["view", "compose", "compose_post", "retry", "file", "recall", "expiry"]
RECIPIENT_ACTIONS = ["r_view", "r_reply", "r_reply_post", "r_print", "r_delete", "r_file"]

# Who may use each URL.  A sender reads what they wrote and replies addressed
# to them; a recipient reads what was addressed to them and what they wrote.
SENDER_OWNERS = {"m1": {"alice"}, "r1": {"alice"}, "m2": {"alice"}, "mB": {"charlie"}, "mB2": {"charlie"}}
RETRY_OWNERS = {"m1": {"alice"}, "r1": set(), "m2": {"alice"}, "mB": {"charlie"}, "mB2": {"charlie"}}
RECIPIENT_OWNERS = {"m1": {"bob"}, "r1": {"bob"}, "m2": {"carol"}, "mB": {"erin"}, "mB2": {"bobb"}}

MISSING_UID = "NoSuchMessage0000000000"


def _cases():
    for action in SENDER_ACTIONS:
        for target in TARGETS:
            for persona in PERSONAS:
                yield pytest.param(action, target, "-", persona, id=f"{action}-{target}-{persona}")
    for action in RECIPIENT_ACTIONS:
        for target in TARGETS:
            for slug in ("own", "other"):
                for persona in PERSONAS:
                    yield pytest.param(action, target, slug, persona,
                                       id=f"{action}-{target}-{slug}org-{persona}")


def _request(client, w: World, action: str, uid: str, slug: str, target: str):
    """Send the request; return (response, path the views see)."""
    if action == "view":
        path = f"/app/m/{uid}"
        return client.get(path), path
    if action == "compose":
        return client.get("/app/compose", {"reply_to": uid}), "/app/compose"
    if action == "compose_post":
        data = {"to": "zed@client.example", "subject": "Answer", "body": "Fine", "body_format": "text",
                "send_token": secrets.token_urlsafe(24), "confirm": "1", "in_reply_to": uid}
        return client.post("/app/compose", data), "/app/compose"
    if action == "retry":
        path = f"/app/m/{uid}/retry/{w.notification[target]}"
        return client.post(path), path
    if action == "file":
        path = f"/app/m/{uid}/files/{w.files[target]}"
        return client.get(path), path
    if action == "recall":
        path = f"/app/m/{uid}/recall"
        return client.post(path), path
    if action == "expiry":
        path = f"/app/m/{uid}/expiry"
        return client.post(path, {"expiry": "now"}), path
    base = f"/r/{slug}/m/{uid}"
    if action == "r_view":
        return client.get(base), base
    if action == "r_reply":
        return client.get(base + "/reply"), base + "/reply"
    if action == "r_reply_post":
        data = {"body": "Forged QZ9", "body_format": "text", "send_token": secrets.token_urlsafe(24)}
        return client.post(base + "/reply", data), base + "/reply"
    if action == "r_print":
        return client.get(base + "/print"), base + "/print"
    if action == "r_delete":
        return client.post(base + "/delete"), base + "/delete"
    if action == "r_file":
        path = f"{base}/files/{w.files[target]}"
        return client.get(path), path
    raise AssertionError(action)


def _expected(w: World, action: str, target: str, slug: str, persona: str):
    """('login', location) | ('404', None) | ('ok', None) | ('refused', None)."""
    role, org_letter = ROLE_ORG[persona]
    if action in SENDER_ACTIONS:
        if role != "sender":
            return "login", "/login?next="
        owners = RETRY_OWNERS if action in ("retry", "recall", "expiry") else SENDER_OWNERS
        return ("ok", None) if persona in owners[target] else ("404", None)
    url_org_letter = w.org_letter_of(target) if slug == "own" else ("A" if w.org_letter_of(target) == "B" else "B")
    if role != "recipient" or org_letter != url_org_letter:
        return "login", f"/r/{w.orgs[url_org_letter].slug}/login?"
    if slug == "own" and persona in RECIPIENT_OWNERS[target]:
        # Bob wrote r1: he may read and print it, not reply to or delete it.
        if target == "r1" and action in ("r_reply", "r_reply_post", "r_delete"):
            return "refused", None
        return "ok", None
    return "404", None


def _snapshot():
    return (
        Message.objects.count(),
        Notification.objects.count(),
        list(Delivery.objects.order_by("pk").values_list("pk", "first_opened_at", "replied_at", "deleted_at",
                                                         "recalled_at")),
        list(Message.objects.order_by("pk").values_list("pk", "expires_at")),
    )


@pytest.mark.parametrize(("action", "target", "slug", "persona"), list(_cases()))
def test_message_urls_for_every_persona(world, db, action, target, slug, persona):
    w = world
    url_org_letter = w.org_letter_of(target) if slug in ("own", "-") else ("A" if w.org_letter_of(target) == "B" else "B")
    slug_value = w.orgs[url_org_letter].slug
    client = w.signed_in(persona)
    before = _snapshot()
    response, path = _request(client, w, action, w.uids[target], slug_value, target)
    outcome, location = _expected(w, action, target, slug, persona)
    page = "" if response.streaming else response.content.decode()

    if outcome == "ok":
        subject, _ = CONTENT.get(target, (None, None))
        if action in ("view", "compose", "r_view", "r_reply", "r_print"):
            assert response.status_code == 200, page[:500]
            shown = subject or CONTENT["m1"][0]  # r1's subject is "Re: <m1's>"
            assert shown in page
            if action in ("view", "r_view", "r_print"):
                body_word = REPLY_BODY.split()[-1] if target == "r1" else re.search(r"QZ\d-[\w-]+", CONTENT[target][1]).group(0)
                assert body_word in page
        elif action in ("file", "r_file"):
            assert response.status_code == 200
            assert b"".join(response.streaming_content) == FILES[target]
            assert response["Content-Disposition"] == f'attachment; filename="{target}.txt"'
        elif action == "compose_post":
            assert response.status_code == 302 and response["Location"].startswith("/app/m/")
        elif action in ("retry", "recall", "expiry"):
            assert (response.status_code, response["Location"]) == (302, f"/app/m/{w.uids[target]}")
        elif action == "r_reply_post":
            assert (response.status_code, response["Location"]) == (302, f"/r/{slug_value}/m/{w.uids[target]}")
        elif action == "r_delete":
            assert (response.status_code, response["Location"]) == (302, f"/r/{slug_value}/")
        return

    if outcome == "refused":  # the right person, an action the message does not allow
        assert response.status_code == 403
        assert "Not allowed" in page
        assert _snapshot() == before
        return

    # Everyone else: no content, no change, and no hint that the message exists.
    assert not response.streaming
    for secret in SECRETS:
        assert secret not in page, f"{secret} leaked to {persona}"
    assert _snapshot() == before
    missing, _ = _request(w.signed_in(persona), w, action, MISSING_UID, slug_value, target)
    if outcome == "404":
        assert response.status_code == 404
        assert response.content == missing.content
    else:
        assert response.status_code == 302
        assert response["Location"].startswith(location)
        expected_next = urlencode({"next": path})
        assert response["Location"].endswith(expected_next)
        assert missing.status_code == 302
        assert missing["Location"] == response["Location"].replace(w.uids[target], MISSING_UID)


# --- lists, portals and sign-in across organisations -------------------------

LISTS = {
    # persona: {list path (with {A}/{B} for slugs): targets whose link it shows}
    "alice": {"/app/": {"r1"}, "/app/sent": {"m1", "m2"}},
    "dave": {"/app/": set(), "/app/sent": set()},
    "charlie": {"/app/": set(), "/app/sent": {"mB", "mB2"}},
    "bob": {"/r/{A}/": {"m1"}, "/r/{A}/sent": {"r1"}},
    "carol": {"/r/{A}/": {"m2"}, "/r/{A}/sent": set()},
    "erin": {"/r/{B}/": {"mB"}, "/r/{B}/sent": set()},
    "bobb": {"/r/{B}/": {"mB2"}, "/r/{B}/sent": set()},
}


@pytest.mark.parametrize("persona", list(LISTS))
def test_inbox_and_sent_list_only_ones_own_messages(world, db, persona):
    w = world
    client = w.signed_in(persona)
    for template, visible in LISTS[persona].items():
        path = template.format(A=w.orgs["A"].slug, B=w.orgs["B"].slug)
        response = client.get(path)
        assert response.status_code == 200, path
        page = response.content.decode()
        for target in TARGETS:
            assert (w.uids[target] in page) == (target in visible), (path, target)
        shown = {CONTENT.get(t, CONTENT["m1"])[0] for t in visible}
        for key, (subject, _) in CONTENT.items():
            if subject not in shown:
                assert subject not in page, (path, key)
        for secret in SECRETS[4:]:
            assert secret not in page  # lists show subjects, never bodies


PORTAL_PAGES = ["/app/", "/app/sent", "/app/compose", "/app/account", "/app/account/2fa",
                "/r/{A}/", "/r/{A}/sent", "/r/{A}/password", "/r/{A}/2fa",
                "/r/{B}/", "/r/{B}/sent", "/r/{B}/password", "/r/{B}/2fa"]


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("template", PORTAL_PAGES)
def test_portal_pages_only_for_their_own_role_and_organisation(world, db, persona, template):
    w = world
    path = template.format(A=w.orgs["A"].slug, B=w.orgs["B"].slug)
    role, org_letter = ROLE_ORG[persona]
    response = w.signed_in(persona).get(path)
    if path.startswith("/app/"):
        allowed, login = role == "sender", "/login?" + urlencode({'next': path})
    else:
        url_org_letter = "A" if f"/r/{w.orgs['A'].slug}/" in path else "B"
        allowed = role == "recipient" and org_letter == url_org_letter
        login = f"/r/{w.orgs[url_org_letter].slug}/login?{urlencode({'next': path})}"
    if allowed:
        assert response.status_code == 200
    else:
        assert (response.status_code, response["Location"]) == (302, login)
        for secret in SECRETS:
            assert secret not in response.content.decode()


def test_other_organisations_login_page_shows_nothing_of_the_session(world, db):
    """Bob, signed in with org A, following org B's link: B's sign-in page, no content."""
    w = world
    bob = w.signed_in("bob")
    slug_b = w.orgs["B"].slug
    r = bob.get(f"/r/{slug_b}/login", {"email": BOB, "next": f"/r/{slug_b}/m/{w.uids['mB2']}"})
    assert r.status_code == 200
    page = r.content.decode()
    assert 'name="password"' in page
    for secret in SECRETS:
        assert secret not in page
    # The org-A session still works for org A afterwards.
    assert bob.get(f"/r/{w.orgs['A'].slug}/m/{w.uids['m1']}").status_code == 200


def test_one_address_two_organisations_two_passwords(world, db):
    w = world
    slug_a, slug_b = w.orgs["A"].slug, w.orgs["B"].slug
    assert w.users["bob"].pk != w.users["bobb"].pk
    # Bob's org-A password does not open his org-B account, nor the other way round.
    c = Client()
    assert c.post(f"/r/{slug_b}/login", {"email": BOB, "password": NEW_PASSWORD}).status_code == 400
    assert c.post(f"/r/{slug_a}/login", {"email": BOB, "password": BOB_B_PASSWORD}).status_code == 400
    # Each password signs in to its own organisation only, and shows only its messages.
    r = c.post(f"/r/{slug_b}/login?next=/r/{slug_b}/m/{w.uids['mB2']}", {"email": BOB, "password": BOB_B_PASSWORD})
    assert (r.status_code, r["Location"]) == (302, f"/r/{slug_b}/m/{w.uids['mB2']}")
    assert "QZ4-evicted-MN8" in c.get(r["Location"]).content.decode()
    assert c.get(f"/r/{slug_a}/m/{w.uids['m1']}").status_code == 302
    # The org-B session cannot open org A's message under org B's slug either.
    assert c.get(f"/r/{slug_b}/m/{w.uids['m1']}").status_code == 404


def test_senders_and_recipients_cannot_sign_in_to_the_other_portal(world, db):
    w = world
    c = Client()
    r = c.post(f"/r/{w.orgs['A'].slug}/login", {"email": w.users["alice"].email, "password": PASSWORD})
    assert r.status_code == 400
    r = c.post("/login", {"email": BOB, "password": NEW_PASSWORD})
    assert r.status_code == 400


@pytest.mark.parametrize("other", ["m2", "mB", "r1"])
def test_retry_only_reaches_notifications_of_the_message_in_the_url(world, db, other):
    """Alice may retry m1's notifications, not another message's through m1's URL."""
    w = world
    note = w.notification[other]
    Notification.objects.filter(pk=note).update(status=Notification.Status.FAILED)
    alice = w.signed_in("alice")
    r = alice.post(f"/app/m/{w.uids['m1']}/retry/{note}")
    assert r.status_code == 404
    assert Notification.objects.get(pk=note).status == Notification.Status.FAILED
    # A password notification (tied to the delivery) is reachable through its own message only.
    password_note = Notification.objects.get(kind=Notification.Kind.PASSWORD, delivery__message__uid=w.uids["m1"])
    Notification.objects.filter(pk=password_note.pk).update(status=Notification.Status.FAILED)
    assert alice.post(f"/app/m/{w.uids['m2']}/retry/{password_note.pk}").status_code == 404
    assert w.signed_in("dave").post(f"/app/m/{w.uids['m1']}/retry/{password_note.pk}").status_code == 404
    r = alice.post(f"/app/m/{w.uids['m1']}/retry/{password_note.pk}")
    assert (r.status_code, r["Location"]) == (302, f"/app/m/{w.uids['m1']}")
    assert Notification.objects.get(pk=password_note.pk).status == Notification.Status.PENDING


def test_unknown_organisation_is_not_found(world, db):
    for persona in ("anon", "bob"):
        client = world.signed_in(persona)
        assert client.get("/r/no-such-org/").status_code == 404
        assert client.get(f"/r/no-such-org/m/{world.uids['m1']}").status_code == 404


def test_a_switched_off_organisation_shows_its_recipients_nothing(world, db):
    # A signed-in recipient's organisation comes with their account; switched off, it
    # answers as an unknown one does, and the other organisation's portal still asks to sign in.
    bob, slug = world.signed_in("bob"), world.orgs["A"].slug
    assert bob.get(f"/r/{slug}/m/{world.uids['m1']}").status_code == 200
    r = bob.get(f"/r/{world.orgs['B'].slug}/")
    assert r.status_code == 302 and r["Location"].startswith(f"/r/{world.orgs['B'].slug}/login?")
    Organization.objects.filter(pk=world.orgs["A"].pk).update(is_active=False)
    assert bob.get(f"/r/{slug}/").status_code == 404
    assert bob.get(f"/r/{slug}/m/{world.uids['m1']}").status_code == 404


def test_deleted_message_is_gone_for_the_recipient_but_not_the_sender(world, db):
    w = world
    slug = w.orgs["A"].slug
    bob, alice = w.signed_in("bob"), w.signed_in("alice")
    assert bob.post(f"/r/{slug}/m/{w.uids['m1']}/delete").status_code == 302
    for suffix in ("", "/print", "/reply"):
        assert bob.get(f"/r/{slug}/m/{w.uids['m1']}{suffix}").status_code == 404
    assert bob.post(f"/r/{slug}/m/{w.uids['m1']}/delete").status_code == 404
    assert w.uids["m1"] not in bob.get(f"/r/{slug}/").content.decode()
    assert "QZ1-benign-VW7" in alice.get(f"/app/m/{w.uids['m1']}").content.decode()
    # Bob's own reply stays his.
    assert bob.get(f"/r/{slug}/m/{w.uids['r1']}").status_code == 200


@pytest.mark.parametrize("persona", PERSONAS)
def test_home_leads_each_persona_to_their_own_portal(world, db, persona):
    w = world
    role, org_letter = ROLE_ORG[persona]
    r = w.signed_in(persona).get("/")
    expected = {"sender": "/app/", "recipient": f"/r/{w.orgs[org_letter].slug}/" if org_letter else None, None: "/login"}[role]
    assert (r.status_code, r["Location"]) == (302, expected)
