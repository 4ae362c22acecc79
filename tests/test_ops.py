"""The operators' admin at /ops/: two-factor sign-in, read-only identities and secrets, every change audited.

Charlie the operator has shell-less access to /ops/ only; what he must never get
from it is a message's content or the power to send as someone.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client

from hushpost.accounts import twofactor
from hushpost.accounts.models import User
from hushpost.audit.models import AuditEvent
from hushpost.audit.verify import verify
from hushpost.gateway.config import configure
from hushpost.lib import clock
from hushpost.messaging.models import Message
from hushpost.notifications.models import Notification
from hushpost.orgs.models import Domain, Organization, OrgKey
from tests.helpers import BACKEND, send, totp_now
from tests.personas import CHARLIE, OPS_PASSWORD, PASSWORD, ops_enrol


@pytest.fixture
def charlie(db, monkeypatch):
    """Made as on a real server: `hushpost createsuperuser`, no second factor yet."""
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", OPS_PASSWORD)
    call_command("createsuperuser", interactive=False, username=CHARLIE, verbosity=0)
    return User.objects.get(email=CHARLIE)


@pytest.fixture
def ops(charlie):
    """Charlie's browser, signed in through both steps."""
    client = Client()
    ops_enrol(client, CHARLIE)
    return client


def ops_pages(org, user, notification=None) -> list[str]:
    pages = ["/ops/", "/ops/accounts/", "/ops/accounts/user/", f"/ops/accounts/user/{user.pk}/change/",
             f"/ops/accounts/user/{user.pk}/history/", "/ops/orgs/organization/",
             f"/ops/orgs/organization/{org.pk}/change/", "/ops/notifications/notification/",
             "/ops/password_change/", "/ops/jsi18n/"]
    if notification is not None:
        pages.append(f"/ops/notifications/notification/{notification.pk}/change/")
    return pages


def events(action=AuditEvent.Action.ADMIN, **filters):
    return list(AuditEvent.objects.filter(action=action, **filters).order_by("id"))


# --- Sign-in: password, then the authenticator -------------------------------------------------


def test_a_password_alone_opens_no_page_of_ops(charlie, org, alice):
    c = Client()
    r = c.post("/ops/login/", {"username": CHARLIE, "password": OPS_PASSWORD})
    assert r.status_code == 302 and r["Location"] == "/ops/login/enrol/"
    for page in ops_pages(org, alice):
        r = c.get(page)
        assert r.status_code == 302 and r["Location"].startswith("/ops/login/"), page
    # Nor a session made by any other way than both steps (Django's own login, a portal's).
    c.force_login(charlie, backend=BACKEND)
    for page in ops_pages(org, alice):
        assert c.get(page).status_code == 302, page
    r = c.post(f"/ops/accounts/user/{alice.pk}/change/", {"is_active": ""})
    assert r.status_code == 302 and User.objects.get(pk=alice.pk).is_active


def test_the_first_sign_in_enrols_and_every_later_one_needs_the_code(charlie, org, alice):
    c = Client()
    c.post("/ops/login/", {"username": CHARLIE, "password": OPS_PASSWORD})
    page = c.get("/ops/login/enrol/").content.decode()
    assert "<svg" in page and "Set up two-factor sign-in" in page
    secret = re.search(r'<code class="secret">([A-Z2-7 ]+)</code>', page).group(1).replace(" ", "")
    wrong = "000000" if totp_now(secret) != "000000" else "111111"
    r = c.post("/ops/login/enrol/", {"code": wrong})
    assert r.status_code == 400 and "That code is not right" in r.content.decode()
    assert c.get("/ops/").status_code == 302
    r = c.post("/ops/login/enrol/", {"code": totp_now(secret)})
    codes = re.findall(r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>", r.content.decode())
    assert r.status_code == 200 and len(codes) == 10
    assert c.get("/ops/").status_code == 200
    charlie.refresh_from_db()
    assert charlie.totp_enabled_at is not None and secret.encode() not in bytes(charlie.totp_secret_sealed)

    later = Client()
    r = later.post("/ops/login/", {"username": CHARLIE, "password": OPS_PASSWORD})
    assert r["Location"] == "/ops/login/code/"
    assert later.get("/ops/login/enrol/")["Location"] == "/ops/login/code/"  # no second enrolment
    assert later.get("/ops/").status_code == 302
    clock.travel(timedelta(seconds=31))
    r = later.post("/ops/login/code/", {"code": totp_now(secret)})
    assert r.status_code == 302 and r["Location"] == "/ops/"
    assert later.get("/ops/accounts/user/").status_code == 200
    signed_in = [e.detail for e in events(AuditEvent.Action.SIGN_IN, actor=charlie)]
    assert signed_in == ["operators' admin, second step: enrolled", "operators' admin, second step: app"]
    assert [e.detail for e in events(actor=charlie)] == ["operators' admin: turned on two-factor sign-in"]


def test_the_sign_in_returns_to_the_page_asked_for(charlie):
    secret, _ = ops_enrol(Client(), CHARLIE)
    c = Client()
    assert c.get("/ops/accounts/user/")["Location"] == "/ops/login/?next=/ops/accounts/user/"
    c.post("/ops/login/?next=/ops/accounts/user/", {"username": CHARLIE, "password": OPS_PASSWORD,
                                                   "next": "/ops/accounts/user/"})
    clock.travel(timedelta(seconds=31))
    assert c.post("/ops/login/code/", {"code": totp_now(secret)})["Location"] == "/ops/accounts/user/"
    other = Client()
    other.post("/ops/login/", {"username": CHARLIE, "password": OPS_PASSWORD, "next": "https://evil.example/"})
    clock.travel(timedelta(seconds=31))
    assert other.post("/ops/login/code/", {"code": totp_now(secret)})["Location"] == "/ops/"


def test_a_recovery_code_signs_in_once(charlie):
    _, codes = ops_enrol(Client(), CHARLIE)
    c = Client()
    c.post("/ops/login/", {"username": CHARLIE, "password": OPS_PASSWORD})
    r = c.post("/ops/login/code/", {"code": codes[0].upper()}, follow=True)
    assert "You used a recovery code; 9 left." in r.content.decode()
    again = Client()
    again.post("/ops/login/", {"username": CHARLIE, "password": OPS_PASSWORD})
    assert again.post("/ops/login/code/", {"code": codes[0]}).status_code == 400


def test_a_code_works_once(charlie):
    secret, _ = ops_enrol(Client(), CHARLIE)
    clock.travel(timedelta(seconds=31))
    first, second = Client(), Client()
    for c in (first, second):
        c.post("/ops/login/", {"username": CHARLIE, "password": OPS_PASSWORD})
    now = totp_now(secret)
    assert first.post("/ops/login/code/", {"code": now}).status_code == 302
    assert second.post("/ops/login/code/", {"code": now}).status_code == 400


def test_guessed_codes_are_throttled_and_lock(charlie):
    secret, _ = ops_enrol(Client(), CHARLIE)
    c = Client()
    c.post("/ops/login/", {"username": CHARLIE, "password": OPS_PASSWORD})
    assert c.post("/ops/login/code/", {"code": "000001"}).status_code == 400
    assert c.post("/ops/login/code/", {"code": "000002"}).status_code == 400
    r = c.post("/ops/login/code/", {"code": totp_now(secret)})  # at once: the wait applies even to the right one
    assert r.status_code == 429 and "Please wait" in r.content.decode()
    for n in range(3, 6):
        clock.travel(timedelta(seconds=61))
        c.post("/ops/login/", {"username": CHARLIE, "password": OPS_PASSWORD})  # the step waits 5 minutes
        r = c.post("/ops/login/code/", {"code": f"00000{n}"})
    assert r.status_code == 429 and "paused for 15 minutes" in r.content.decode()
    clock.travel(timedelta(seconds=31))
    c.post("/ops/login/", {"username": CHARLIE, "password": OPS_PASSWORD})
    assert c.post("/ops/login/code/", {"code": totp_now(secret)}).status_code == 429
    assert c.get("/ops/").status_code == 302
    assert len(events(AuditEvent.Action.SIGN_IN_FAILED, actor_email=CHARLIE, object_id="2fa")) == 5
    assert len(events(AuditEvent.Action.LOCKOUT, actor_email=CHARLIE)) == 1


def test_guessed_codes_lock_the_enrolment_too(charlie):
    c = Client()
    c.post("/ops/login/", {"username": CHARLIE, "password": OPS_PASSWORD})
    for n in range(5):
        r = c.post("/ops/login/enrol/", {"code": f"00000{n}"})
        clock.travel(timedelta(seconds=61))
    assert r.status_code == 429
    assert User.objects.get(pk=charlie.pk).totp_enabled_at is None


def test_guessed_passwords_lock_the_operator(charlie):
    c = Client()
    for n in range(5):
        r = c.post("/ops/login/", {"username": CHARLIE, "password": f"wrong-{n}"})
        clock.travel(timedelta(seconds=61))
    assert r.status_code == 429 and "paused for 15 minutes" in r.content.decode()
    r = c.post("/ops/login/", {"username": CHARLIE, "password": OPS_PASSWORD})
    assert r.status_code == 429 and c.get("/ops/login/enrol/")["Location"] == "/ops/login/"
    failed = events(AuditEvent.Action.SIGN_IN_FAILED, actor_email=CHARLIE, object_id="ops")
    assert len(failed) == 5 and all(e.org_id is None for e in failed)
    assert len(events(AuditEvent.Action.LOCKOUT, actor_email=CHARLIE)) == 1


def test_the_code_step_waits_five_minutes_at_most(charlie):
    secret, _ = ops_enrol(Client(), CHARLIE)
    c = Client()
    c.post("/ops/login/", {"username": CHARLIE, "password": OPS_PASSWORD})
    clock.travel(timedelta(minutes=6))
    r = c.post("/ops/login/code/", {"code": totp_now(secret)})
    assert r.status_code == 302 and r["Location"] == "/ops/login/"
    assert c.get("/ops/").status_code == 302


def test_senders_and_recipients_are_no_operators(alice, org):
    r = Client().post("/ops/login/", {"username": alice.email, "password": PASSWORD})
    assert r.status_code == 400 and "do not match an operator account" in r.content.decode()


def test_the_current_password_is_throttled_on_change(ops, charlie):
    for n in range(5):
        r = ops.post("/ops/password_change/", {"old_password": f"wrong-{n}", "new_password1": "Lantern-orchard-velvet-73",
                                               "new_password2": "Lantern-orchard-velvet-73"})
        clock.travel(timedelta(seconds=61))
    assert "paused for 15 minutes" in r.content.decode()
    old_hash = User.objects.get(pk=charlie.pk).password
    ops.post("/ops/password_change/", {"old_password": OPS_PASSWORD, "new_password1": "Lantern-orchard-velvet-73",
                                       "new_password2": "Lantern-orchard-velvet-73"})
    assert User.objects.get(pk=charlie.pk).password == old_hash


# --- Identities and secrets are read-only ------------------------------------------------------


def test_an_accounts_identity_cannot_be_changed(ops, charlie, org, make_org, alice):
    other = make_org("Elsewhere")
    before = User.objects.filter(pk=alice.pk).values().get()
    r = ops.post(f"/ops/accounts/user/{alice.pk}/change/", {
        "email": "charlie@evil.example", "name": "Charlie", "role": "operator", "org": str(other.pk),
        "is_org_admin": "on", "is_active": "on", "is_staff": "on", "is_superuser": "on",
        "password": "argon2$whatever", "must_change_password": "on", "totp_secret_sealed": "",
        "totp_enabled_at": "", "username": "operator:0:charlie@evil.example", "_save": "Save"})
    assert r.status_code == 302
    assert User.objects.filter(pk=alice.pk).values().get() == before
    assert not events(object_type="user", object_id=str(alice.pk))  # nothing changed, nothing recorded


def test_an_organisations_domains_and_gateway_cannot_be_changed(ops, org):
    configure(org, networks="10.1.0.0/16", auth_user="northwind-relay", password="Relay-granite-violin-42")
    before = Organization.objects.filter(pk=org.pk).values().get()
    domain = org.domains.get()
    r = ops.post(f"/ops/orgs/organization/{org.pk}/change/", {
        "name": "Evil", "slug": "evil", "sender_name": "Evil", "is_active": "on",
        "gateway_networks": "0.0.0.0/0", "gateway_auth_user": "charlie", "gateway_auth_password": "x",
        "gateway_route_all": "on", "gateway_keyword": "", "receipt_includes_subject": "on",
        "require_2fa_senders": "", "notify_from_email": "charlie@evil.example",
        "domains-TOTAL_FORMS": "2", "domains-INITIAL_FORMS": "1", "domains-MIN_NUM_FORMS": "0",
        "domains-MAX_NUM_FORMS": "1000", "domains-0-id": str(domain.pk), "domains-0-org": str(org.pk),
        "domains-0-name": "victim.example", "domains-1-name": "captured.example", "domains-1-org": str(org.pk),
        "_save": "Save"})
    assert r.status_code == 302
    assert Organization.objects.filter(pk=org.pk).values().get() == before
    assert list(Domain.objects.values_list("name", flat=True)) == ["northwind.example"]


def test_nothing_is_added_or_deleted(ops, org, alice):
    for add in ("/ops/accounts/user/add/", "/ops/orgs/organization/add/", "/ops/notifications/notification/add/"):
        assert ops.get(add).status_code == 403, add
        assert ops.post(add, {"email": "x@northwind.example", "name": "X", "domains": "y.example"}).status_code == 403
    for gone in (f"/ops/accounts/user/{alice.pk}/delete/", f"/ops/orgs/organization/{org.pk}/delete/"):
        assert ops.get(gone).status_code == 403
        assert ops.post(gone, {"post": "yes"}).status_code == 403
    r = ops.post("/ops/accounts/user/", {"action": "delete_selected", "_selected_action": [str(alice.pk)],
                                          "post": "yes"})
    assert r.status_code in (200, 302)
    assert User.objects.filter(pk=alice.pk).exists() and Organization.objects.filter(pk=org.pk).exists()
    assert User.objects.count() == 2 and Organization.objects.count() == 1


def test_only_accounts_organisations_and_notifications_are_there(ops):
    page = ops.get("/ops/").content.decode()
    assert {"Accounts", "Organisations", "Notifications"} <= set(re.findall(r'class="section"[^>]*>([^<]+)<', page))
    for path in ("/ops/auth/group/", "/ops/django_tasks_db/dbtaskresult/", "/ops/messaging/message/",
                 "/ops/messaging/delivery/", "/ops/attachments/attachment/", "/ops/orgs/orgkey/",
                 "/ops/admin/logentry/", "/ops/audit/auditevent/", "/ops/accounts/recoverycode/",
                 "/ops/accounts/throttle/", "/ops/sessions/session/", "/ops/notifications/devmail/",
                 "/ops/r/1/1/"):
        assert ops.get(path).status_code == 404, path


def test_no_page_shows_a_secret_or_ciphertext(ops, sender_client, alice, org, smtp, deliver):
    configure(org, networks="10.1.0.0/16", auth_user="northwind-relay", password="Relay-granite-violin-42")
    secret = twofactor.new_secret()
    User.objects.filter(pk=alice.pk).update(totp_secret_sealed=twofactor.seal_secret(alice, secret),
                                            totp_enabled_at=clock.now())
    send(sender_client, to="bob@client.example", subject="Biopsy KX7PLW9ZRT", body="<p>QZ1-benign-VW7</p>")
    deliver()
    message = Message.objects.get()
    org.refresh_from_db()
    alice.refresh_from_db()
    secrets = [alice.password, org.gateway_auth_password, secret, "Relay-granite-violin-42", "KX7PLW9ZRT",
               "QZ1-benign-VW7", bytes(alice.totp_secret_sealed).hex(), bytes(message.subject_ct).hex(),
               bytes(OrgKey.objects.get(org=org).wrapped_key).hex(), "$argon2", "memory at", "b&#x27;"]
    notification = Notification.objects.first()
    for page in ops_pages(org, alice, notification):
        body = ops.get(page).content.decode()
        assert not [s for s in secrets if s in body], page
    body = ops.get(f"/ops/orgs/organization/{org.pk}/change/").content.decode()
    assert "10.1.0.0/16" in body and "northwind-relay (password set)" in body and "northwind.example" in body


# --- What operators may do, and the trail of it ------------------------------------------------


def test_disabling_an_account_is_recorded_in_its_organisations_chain(ops, charlie, org, alice):
    r = ops.post(f"/ops/accounts/user/{alice.pk}/change/", {"_save": "Save"})  # the box unticked
    assert r.status_code == 302 and not User.objects.get(pk=alice.pk).is_active
    [event] = events(object_type="user", object_id=str(alice.pk))
    assert (event.actor_id, event.actor_email, event.org_id) == (charlie.pk, CHARLIE, org.pk)
    assert event.detail == "operators' admin: changed is_active"
    assert sender_signs_in(alice) == 400
    assert not verify().broken


def sender_signs_in(user) -> int:
    return Client().post("/login", {"email": user.email, "password": PASSWORD}).status_code


def test_bulk_actions_are_recorded_one_event_per_object(ops, charlie, org, make_org, make_sender, alice):
    bo = make_sender(org, "bo", "Bo")
    other = make_org("Elsewhere")
    cy = make_sender(other, "cy", "Cy")
    picked = [str(u.pk) for u in (alice, bo, cy, charlie)]
    r = ops.post("/ops/accounts/user/", {"action": "disable", "_selected_action": picked})
    assert r.status_code == 302
    assert list(User.objects.filter(is_active=False).order_by("pk")) == [alice, bo, cy]  # never oneself
    disabled = events(detail="operators' admin: disabled the account")
    assert {(e.object_id, e.org_id, e.actor_id) for e in disabled} == {
        (str(alice.pk), org.pk, charlie.pk), (str(bo.pk), org.pk, charlie.pk), (str(cy.pk), other.pk, charlie.pk)}
    assert len(disabled) == 3
    ops.post("/ops/accounts/user/", {"action": "enable", "_selected_action": [str(alice.pk)]})
    assert User.objects.get(pk=alice.pk).is_active
    assert len(events(detail="operators' admin: re-enabled the account")) == 1

    ops.post("/ops/orgs/organization/", {"action": "disable", "_selected_action": [str(other.pk)]})
    assert not Organization.objects.get(pk=other.pk).is_active
    [event] = events(object_type="organization")
    assert (event.org_id, event.actor_id, event.detail) == (
        other.pk, charlie.pk, "operators' admin: disabled the organisation")
    assert not verify().broken


def test_an_operator_unlocks_an_account(ops, charlie, org, alice):
    c = Client()
    for n in range(5):
        c.post("/login", {"email": alice.email, "password": f"wrong-{n}"})
        clock.travel(timedelta(seconds=61))
    assert sender_signs_in(alice) == 429
    assert "Locked until" in ops.get("/ops/accounts/user/").content.decode()
    ops.post("/ops/accounts/user/", {"action": "unlock", "_selected_action": [str(alice.pk)]})
    assert sender_signs_in(alice) == 302
    [event] = events(detail="operators' admin: unlocked the account")
    assert (event.actor_id, event.org_id, event.object_id) == (charlie.pk, org.pk, str(alice.pk))


def test_notifications_are_delivery_state_only(ops, sender_client, org, smtp, deliver):
    send(sender_client, to="bob@client.example")
    deliver()
    notification = Notification.objects.filter(kind=Notification.Kind.MESSAGE).get()
    page = ops.get(f"/ops/notifications/notification/{notification.pk}/change/").content.decode()
    assert "bob@client.example" in page and "Sent" in page and 'name="status"' not in page
    r = ops.post(f"/ops/notifications/notification/{notification.pk}/change/", {"status": "pending"})
    assert r.status_code == 403 and Notification.objects.get(pk=notification.pk).status == "sent"
