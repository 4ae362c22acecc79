"""Passkeys without a browser: a software device answers the portal's WebAuthn options, and
py_webauthn's checks refuse what an attacker would try (a replayed answer, another origin, a
counter gone back, a handle naming someone else, another portal's account)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from webauthn.helpers import base64url_to_bytes

from hushpost.accounts.models import Passkey, User
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock
from hushpost.sso.models import SingleSignOn
from tests.passkey_device import PasskeyDevice, add_passkey, registration_options
from tests.personas import NEW_PASSWORD, PASSWORD, harbour, password_step, sender, signed_in_sender

pytestmark = pytest.mark.usefixtures("base_url_testserver")
ORIGIN = "http://testserver"


def passkey_sign_in(client: Client, device: PasskeyDevice, url: str = "/login/passkey", **answer):
    options = client.post(url).json()
    return client.post(url, {"credential": device.get(options, **answer)})


def recipient(org, email: str = "bob@client.example") -> tuple[User, Client]:
    """A recipient who has chosen their own password, signed in on their organisation's portal."""
    user = User(role=User.Role.RECIPIENT, org=org, email=email)
    user.set_password(NEW_PASSWORD)
    user.save()
    client = Client()
    assert client.post(f"/r/{org.slug}/login", {"email": email, "password": NEW_PASSWORD}).status_code == 302
    return user, client


def test_a_sender_adds_a_passkey_and_signs_in_with_it_alone(alice):
    device = PasskeyDevice(ORIGIN)
    assert add_passkey(signed_in_sender(alice), device) == "/app/account"
    passkey = Passkey.objects.get(user=alice)
    assert passkey.name.startswith("Passkey added ") and passkey.transports == "internal"
    assert AuditEvent.objects.filter(action=AuditEvent.Action.PASSKEY_ADDED, actor=alice).exists()

    browser = Client()
    reply = passkey_sign_in(browser, device)
    assert reply.status_code == 200 and reply.json() == {"redirect": "/app/"}
    assert browser.get("/app/").status_code == 200
    assert AuditEvent.objects.filter(action=AuditEvent.Action.SIGN_IN, actor=alice, detail="passkey").exists()
    passkey.refresh_from_db()
    assert passkey.sign_count == 1 and passkey.last_used_at is not None


def test_sign_in_options_name_no_account(db):
    options = Client().post("/login/passkey").json()
    assert options["userVerification"] == "required" and options.get("allowCredentials", []) == []
    assert options["rpId"] == "testserver"


def test_adding_a_passkey_asks_for_the_password_first(alice):
    client = signed_in_sender(alice)
    asked = client.post("/app/account/passkeys")
    assert asked.status_code == 200 and "Confirm it's you" in asked.content.decode()
    assert "data-options" not in asked.content.decode()
    wrong = client.post("/app/account/passkeys", {"current": "not-the-password"})
    assert wrong.status_code == 400 and "data-options" not in wrong.content.decode()
    # An answer with no ceremony the password opened is refused.
    device = PasskeyDevice(ORIGIN)
    made_up = device.create({"rp": {"id": "testserver"}, "user": {"id": "AAAA"}, "challenge": "AAAA"})
    assert client.post("/app/account/passkeys/add", {"credential": made_up}).status_code == 400
    assert client.get("/app/account/passkeys").status_code == 405
    assert not Passkey.objects.exists()


def test_a_replayed_answer_fails(alice):
    device = PasskeyDevice(ORIGIN)
    add_passkey(signed_in_sender(alice), device)
    first = Client()
    options = first.post("/login/passkey").json()
    answer = device.get(options)
    assert first.post("/login/passkey", {"credential": answer}).status_code == 200
    # The same answer again: in the same session (its challenge is used up), and in a new one.
    assert first.post("/login/passkey", {"credential": answer}).status_code == 400
    second = Client()
    second.post("/login/passkey")
    assert second.post("/login/passkey", {"credential": answer}).status_code == 400
    assert second.get("/app/").status_code == 302


def test_an_answer_made_for_another_origin_fails(alice):
    device = PasskeyDevice(ORIGIN)
    add_passkey(signed_in_sender(alice), device)
    client = Client()
    reply = passkey_sign_in(client, device, origin="https://hushpost.example.net")
    assert reply.status_code == 400 and "does not open an account" in reply.json()["error"]
    assert client.get("/app/").status_code == 302
    assert AuditEvent.objects.filter(action=AuditEvent.Action.SIGN_IN_FAILED, actor_email=alice.email).exists()


def test_a_counter_that_goes_back_is_refused(alice):
    device = PasskeyDevice(ORIGIN)
    add_passkey(signed_in_sender(alice), device)
    assert passkey_sign_in(Client(), device, count=5).status_code == 200
    assert passkey_sign_in(Client(), device, count=5).status_code == 400  # a cloned key
    assert passkey_sign_in(Client(), device, count=6).status_code == 200


def test_the_user_handle_must_name_the_account(alice, org):
    device = PasskeyDevice(ORIGIN)
    add_passkey(signed_in_sender(alice), device)
    other = PasskeyDevice(ORIGIN)
    add_passkey(signed_in_sender(sender(org, "bea", "Bea Norris")), other)
    credential_of_alice = next(iter(device.credentials))
    handle_of_bea = next(iter(other.credentials.values())).user_handle
    client = Client()
    assert passkey_sign_in(client, device, credential_id=credential_of_alice, user_handle=handle_of_bea).status_code == 400
    assert client.get("/app/").status_code == 302


def test_a_password_then_the_passkey_as_second_step(alice):
    device = PasskeyDevice(ORIGIN)
    add_passkey(signed_in_sender(alice), device)
    client = Client()
    assert password_step(client, alice.email)["Location"] == "/login/2fa?next=%2Fapp%2F"
    assert client.get("/app/").status_code == 302  # the password alone opens nothing now
    page = client.get("/login/2fa?next=/app/").content.decode()
    assert "Use your passkey" in page and 'name="code"' not in page
    options = client.post("/login/2fa/passkey?next=/app/").json()
    assert [c["id"] for c in options["allowCredentials"]] == list(device.credentials)
    reply = client.post("/login/2fa/passkey?next=/app/", {"credential": device.get(options)})
    assert reply.json() == {"redirect": "/app/"}
    assert client.get("/app/").status_code == 200
    assert AuditEvent.objects.filter(actor=alice, detail="second step: passkey").exists()


def test_removing_a_passkey_stops_it_working(alice):
    device = PasskeyDevice(ORIGIN)
    client = signed_in_sender(alice)
    add_passkey(client, device)
    passkey = Passkey.objects.get(user=alice)
    asked = client.post("/app/account/passkeys/remove", {"passkey": passkey.pk})
    assert asked.status_code == 200 and Passkey.objects.exists()  # confirm it's you first
    gone = client.post("/app/account/passkeys/remove", {"passkey": passkey.pk, "current": PASSWORD})
    assert gone.status_code == 302 and not Passkey.objects.exists()
    assert AuditEvent.objects.filter(action=AuditEvent.Action.PASSKEY_REMOVED, actor=alice).exists()
    assert passkey_sign_in(Client(), device).status_code == 400
    assert password_step(Client(), alice.email)["Location"] == "/app/"  # no second step any more


def test_a_passkey_satisfies_the_organisation_two_factor_rule(alice, org):
    org.require_2fa_senders = True
    org.save()
    client = signed_in_sender(alice)
    assert client.get("/app/")["Location"] == "/app/account/2fa"
    assert "Add a passkey" in client.get("/app/account/2fa").content.decode()
    device = PasskeyDevice(ORIGIN)
    add_passkey(client, device)
    assert client.get("/app/").status_code == 200
    # The last one stays while the rule stands.
    passkey = Passkey.objects.get(user=alice)
    client.post("/app/account/passkeys/remove", {"passkey": passkey.pk, "current": PASSWORD})
    assert Passkey.objects.filter(pk=passkey.pk).exists()


def test_a_sender_passkey_opens_no_recipient_portal(alice, org):
    device = PasskeyDevice(ORIGIN)
    add_passkey(signed_in_sender(alice), device)
    client = Client()
    assert passkey_sign_in(client, device, url=f"/r/{org.slug}/login/passkey").status_code == 400
    assert client.get(f"/r/{org.slug}/").status_code == 302


def test_a_recipient_passkey_opens_only_their_organisation_portal(org):
    other = harbour()
    bob, client = recipient(org)
    device = PasskeyDevice(ORIGIN)
    assert add_passkey(client, device, here=f"/r/{org.slug}/passkeys", password=NEW_PASSWORD) == \
        f"/r/{org.slug}/password"
    assert passkey_sign_in(Client(), device, url=f"/r/{other.slug}/login/passkey").status_code == 400
    assert passkey_sign_in(Client(), device, url="/login/passkey").status_code == 400
    clock.travel(timedelta(seconds=3))  # two misses with one passkey: the throttle's short wait
    mine = Client()
    reply = passkey_sign_in(mine, device, url=f"/r/{org.slug}/login/passkey")
    assert reply.json() == {"redirect": f"/r/{org.slug}/"}
    assert mine.get(f"/r/{org.slug}/").status_code == 200


def test_a_temporary_password_holder_cannot_use_a_passkey(org):
    bob, client = recipient(org)
    device = PasskeyDevice(ORIGIN)
    add_passkey(client, device, here=f"/r/{org.slug}/passkeys", password=NEW_PASSWORD)
    User.objects.filter(pk=bob.pk).update(must_change_password=True)  # a new temporary password was issued
    assert passkey_sign_in(Client(), device, url=f"/r/{org.slug}/login/passkey").status_code == 400


def test_a_passkey_does_not_go_around_a_required_identity_provider(alice, org):
    device = PasskeyDevice(ORIGIN)
    add_passkey(signed_in_sender(alice), device)
    SingleSignOn.objects.create(org=org, protocol=SingleSignOn.Protocol.OIDC, oidc_issuer="https://idp.example",
                                oidc_client_id="hushpost", required=True)
    client = Client()
    assert passkey_sign_in(client, device).status_code == 400
    assert client.get("/app/").status_code == 302


def test_another_account_passkey_id_cannot_be_claimed(alice, org):
    device = PasskeyDevice(ORIGIN)
    add_passkey(signed_in_sender(alice), device)
    taken = base64url_to_bytes(next(iter(device.credentials)))
    mallory = signed_in_sender(sender(org, "mallory", "Mallory Jones"))
    rogue = PasskeyDevice(ORIGIN).create(registration_options(mallory), taken)
    assert mallory.post("/app/account/passkeys/add", {"credential": rogue}).status_code == 400
    assert list(Passkey.objects.values_list("user__email", flat=True)) == [alice.email]
    assert passkey_sign_in(Client(), device).status_code == 200  # still Alice's, still working


def test_a_recipient_meets_the_two_factor_rule_with_a_passkey_and_then_uses_it_after_the_password(org):
    org.require_2fa_recipients = True
    org.save()
    bob, client = recipient(org)
    assert client.get(f"/r/{org.slug}/")["Location"] == f"/r/{org.slug}/2fa"
    assert "Add a passkey" in client.get(f"/r/{org.slug}/2fa").content.decode()
    device = PasskeyDevice(ORIGIN)
    add_passkey(client, device, here=f"/r/{org.slug}/passkeys", password=NEW_PASSWORD)
    assert client.get(f"/r/{org.slug}/").status_code == 200

    again = Client()
    reply = again.post(f"/r/{org.slug}/login", {"email": bob.email, "password": NEW_PASSWORD})
    assert reply["Location"].startswith(f"/r/{org.slug}/login/2fa")
    step = f"/r/{org.slug}/login/2fa/passkey"
    assert again.post(step, {"credential": device.get(again.post(step).json())}).json() == {
        "redirect": f"/r/{org.slug}/"}
    assert again.get(f"/r/{org.slug}/").status_code == 200


def test_an_answer_needs_a_fresh_request_of_this_session(alice):
    device = PasskeyDevice(ORIGIN)
    add_passkey(signed_in_sender(alice), device)
    unasked = Client()
    options = Client().post("/login/passkey").json()  # asked for by another browser
    assert unasked.post("/login/passkey", {"credential": device.get(options)}).status_code == 400
    slow = Client()
    options = slow.post("/login/passkey").json()
    clock.travel(timedelta(minutes=6))
    assert slow.post("/login/passkey", {"credential": device.get(options)}).status_code == 400
    assert slow.get("/app/").status_code == 302


def test_an_account_holds_twenty_passkeys_at_most(alice):
    client = signed_in_sender(alice)
    Passkey.objects.bulk_create(
        Passkey(user=alice, credential_id=f"id-{n}", public_key=b"", user_handle="h", name=f"Key {n}",
                created_at=clock.now()) for n in range(20))
    reply = client.post("/app/account/passkeys", {"current": PASSWORD}, follow=True)
    assert "can hold 20 passkeys" in reply.content.decode() and Passkey.objects.count() == 20


@pytest.mark.parametrize("answer", [
    '{"id": "\\ud800", "rawId": "\\ud800"}',          # half of a surrogate pair: not text at all
    "[" * 200_000 + "]" * 200_000,                    # nested deeper than any parser goes
    '{"id": "ab\\u0000cdefghijklmnopqrstuv"}',         # a NUL, which PostgreSQL's text refuses
    '{"id": "' + "A" * 70_000 + '"}',                 # longer than any answer
    "not json",
])
def test_a_malformed_answer_is_refused_not_a_crash_and_counted(db, settings, answer):
    settings.CLIENT_FAILURES = 3
    browser, answers = Client(), []
    for _ in range(5):
        browser.post("/login/passkey")  # each answer to a ceremony of its own
        answers.append(browser.post("/login/passkey", {"credential": answer}).status_code)
    assert set(answers) <= {400, 429} and answers[-1] == 429, answers
