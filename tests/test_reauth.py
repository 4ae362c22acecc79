"""A stolen session is not a lasting takeover: every security change asks again who you are.

The password and, where two-factor sign-in is on, a code: always for a new
password, new recovery codes or turning two-factor off; in the admin area once
per ten minutes (signing in counts). Guesses are throttled and lock like sign-in.
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.test import Client

from hushpost.accounts.models import RecoveryCode, Session, User
from hushpost.accounts.sessions import SessionStore
from hushpost.lib import clock
from tests import personas
from tests.helpers import enrol, totp_now
from tests.personas import PASSWORD, password_step, signed_in_sender

WRONG_CODE = "000000"
CHOSEN = "Meadow-lantern-orbit-47"


def _other_than(value: str) -> str:
    return WRONG_CODE if value != WRONG_CODE else "111111"


def test_new_recovery_codes_need_the_password_and_a_code(alice, sender_client):
    secret, old_codes = enrol(sender_client, "/app/account/2fa")
    r = sender_client.post("/app/account/2fa", {"action": "codes"})  # what a stolen session would try
    assert r.status_code == 400 and "Enter your current password" in r.content.decode()
    assert RecoveryCode.objects.filter(user=alice, used_at=None).count() == 10
    clock.travel(timedelta(seconds=31))
    r = sender_client.post("/app/account/2fa", {"action": "codes", "current": PASSWORD,
                                                "current_code": _other_than(totp_now(secret))})
    assert r.status_code == 400 and "password or the code is not right" in r.content.decode()
    clock.travel(timedelta(seconds=61))
    r = sender_client.post("/app/account/2fa", {"action": "codes", "current": PASSWORD, "current_code": totp_now(secret)})
    new_codes = re.findall(r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>", r.content.decode())
    assert r.status_code == 200 and len(new_codes) == 10 and set(new_codes).isdisjoint(old_codes)


def test_guessing_the_confirmation_slows_down_locks_and_tells_the_owner(alice, sender_client, smtp, deliver):
    enrol(sender_client, "/app/account/2fa")
    statuses = []
    for n in range(6):
        r = sender_client.post("/app/account/2fa", {"action": "disable", "current": f"guess-{n}",
                                                    "current_code": "123456"})
        statuses.append(r.status_code)
        clock.travel(timedelta(seconds=61))
    assert statuses[:4] == [400] * 4 and statuses[4:] == [429, 429]
    assert User.objects.get(pk=alice.pk).totp_enabled_at is not None
    deliver()
    assert smtp.wait_for(alice.email, "Secure Messaging Account Locked")
    # One count with signing in: the same lock, which an admin sees and can lift.
    assert Client().post("/login", {"email": alice.email, "password": PASSWORD}).status_code == 429
    admin = User.objects.create(org=alice.org, email="ada@northwind.example", role=User.Role.SENDER,
                                is_org_admin=True)
    admin.set_password(PASSWORD)
    admin.save()
    ada = signed_in_sender(admin)
    assert "Locked" in ada.get("/app/admin/").content.decode()
    assert ada.post(f"/app/admin/people/{alice.pk}/unlock", {"role": "sender"}).status_code == 302
    assert Client().post("/login", {"email": alice.email, "password": PASSWORD}).status_code == 302


def test_a_password_change_needs_the_code_when_two_factor_is_on(alice, sender_client):
    secret, _ = enrol(sender_client, "/app/account/2fa")
    assert 'name="current_code"' in sender_client.get("/app/account").content.decode()
    r = sender_client.post("/app/account", {"current": PASSWORD, "password": CHOSEN, "confirm": CHOSEN})
    assert r.status_code == 400
    assert Client().post("/login", {"email": alice.email, "password": CHOSEN}).status_code == 400
    clock.travel(timedelta(seconds=61))
    r = sender_client.post("/app/account", {"current": PASSWORD, "current_code": totp_now(secret),
                                            "password": CHOSEN, "confirm": CHOSEN})
    assert r.status_code == 302
    assert password_step(Client(), alice.email, CHOSEN).status_code == 302


def test_an_admin_confirms_after_ten_minutes_and_the_form_goes_on(org, alice):
    admin = personas.ada(org)
    c = signed_in_sender(admin)
    assert c.post(f"/app/admin/senders/{alice.pk}/active", {"active": "0"}).status_code == 302  # just signed in
    clock.travel(timedelta(minutes=11))
    c.get("/app/admin/")  # still signed in: the session is busy, only the confirmation is old
    r = c.post(f"/app/admin/senders/{alice.pk}/active", {"active": "1"})
    page = r.content.decode()
    assert r.status_code == 200 and "Confirm it's you" in page
    assert '<input type="hidden" name="active" value="1">' in page  # the admin's form, carried on
    assert not User.objects.get(pk=alice.pk).is_active
    r = c.post(f"/app/admin/senders/{alice.pk}/active", {"active": "1", "current": "not-my-password"})
    assert r.status_code == 400 and not User.objects.get(pk=alice.pk).is_active
    clock.travel(timedelta(seconds=61))
    r = c.post(f"/app/admin/senders/{alice.pk}/active", {"active": "1", "current": PASSWORD})
    assert r.status_code == 302 and User.objects.get(pk=alice.pk).is_active
    # Confirmed a moment ago: the next change goes straight through.
    assert c.post(f"/app/admin/senders/{alice.pk}/active", {"active": "0"}).status_code == 302


def test_an_admin_with_two_factor_confirms_with_a_code(org, alice):
    admin = personas.ada(org)
    c = signed_in_sender(admin)
    secret, _ = enrol(c, "/app/account/2fa")
    clock.travel(timedelta(minutes=11))
    policy = {"sender_name": "Northwind", "default_restriction": "none", "default_expire_days": "0",
              "allowed_expiry": ["0", "7"], "sender_idle_minutes": "90"}
    c.get("/app/admin/")
    r = c.post("/app/admin/policy", {**policy, "current": PASSWORD})
    assert r.status_code == 400 and 'name="current_code"' in r.content.decode()
    clock.travel(timedelta(seconds=61))
    c.get("/app/admin/")
    r = c.post("/app/admin/policy", {**policy, "current": PASSWORD, "current_code": totp_now(secret)})
    assert r.status_code == 302
    org.refresh_from_db()
    assert org.sender_idle_minutes == 90


def test_turning_two_factor_on_from_an_old_session_asks_for_the_password(alice):
    c = signed_in_sender(alice)
    clock.travel(timedelta(minutes=11))
    page = c.get("/app/account/2fa").content.decode()
    secret = re.search(r'<code class="secret">([A-Z2-7 ]+)</code>', page).group(1).replace(" ", "")
    assert 'name="current"' in page
    r = c.post("/app/account/2fa", {"action": "enable", "code": totp_now(secret)})
    assert r.status_code == 400 and User.objects.get(pk=alice.pk).totp_enabled_at is None
    r = c.post("/app/account/2fa", {"action": "enable", "code": totp_now(secret), "current": PASSWORD})
    assert r.status_code == 200 and User.objects.get(pk=alice.pk).totp_enabled_at is not None


def test_the_secret_being_set_up_is_sealed_in_the_session(alice, sender_client):
    page = sender_client.get("/app/account/2fa").content.decode()
    secret = re.search(r'<code class="secret">([A-Z2-7 ]+)</code>', page).group(1).replace(" ", "")
    stored = "".join(s.session_data + repr(SessionStore().decode(s.session_data)) for s in Session.objects.all())
    assert "hushpost_2fa_setup" in stored and secret not in stored


def test_recovery_codes_outlive_a_secret_key_rotation(alice, sender_client, settings):
    _, codes = enrol(sender_client, "/app/account/2fa")
    settings.SECRET_KEY = "the-deployments-next-secret-key-0123456789abcdef"  # the old key retired at once
    settings.SECRET_KEY_FALLBACKS = []
    c = Client()
    password_step(c, alice.email)
    r = c.post("/login/2fa", {"code": codes[0]})
    assert r.status_code == 302 and r["Location"] == "/app/"


def test_codes_made_under_the_secret_key_still_work_while_it_is_a_fallback(alice, sender_client, settings):
    from hushpost.accounts import twofactor

    enrol(sender_client, "/app/account/2fa")
    RecoveryCode.objects.filter(user=alice).update(digest=twofactor._digest(alice, "abcde-fghjk", settings.SECRET_KEY))
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "the-deployments-next-secret-key-0123456789abcdef"
    c = Client()
    password_step(c, alice.email)
    assert c.post("/login/2fa", {"code": "abcde-fghjk"})["Location"] == "/app/"


def test_a_mistyped_new_password_does_not_use_up_a_recovery_code(alice, sender_client):
    _, codes = enrol(sender_client, "/app/account/2fa")
    r = sender_client.post("/app/account", {"current": PASSWORD, "current_code": codes[0],
                                            "password": CHOSEN, "confirm": CHOSEN + "x"})
    assert r.status_code == 400 and "do not match" in r.content.decode()
    assert RecoveryCode.objects.filter(user=alice, used_at=None).count() == 10


def test_an_admin_recall_asks_to_confirm_too(org, alice, smtp, deliver):
    from hushpost.messaging.models import Delivery
    from tests.helpers import send

    admin = personas.ada(org)
    send(signed_in_sender(alice), to="bob@client.example")
    uid = Delivery.objects.get().message.uid
    c = signed_in_sender(admin)
    clock.travel(timedelta(minutes=11))
    c.get("/app/admin/messages")
    r = c.post(f"/app/admin/messages/{uid}/recall")
    assert r.status_code == 200 and "Confirm it's you" in r.content.decode()
    assert Delivery.objects.get().recalled_at is None
    assert c.post(f"/app/admin/messages/{uid}/recall", {"current": PASSWORD}).status_code == 302
    assert Delivery.objects.get().recalled_at is not None
