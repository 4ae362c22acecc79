"""Every secret is checked through one flow, under the brute-force throttle.

``accounts.throttle.check_secret`` asks the throttle first, runs the check only when
the attempt is allowed, and records the failure or the success. The first tests hold
the flow itself to that; the others walk through every door that takes a secret (each
portal's password and second step, a reset link, "confirm it's you", the operators'
sign-in, enrolment and password change, SMTP AUTH, a passkey's answer) and show each one
counts a wrong secret, forgives a right one and lets nothing through for a blocked client: a
door that checked its secret on its own would fail them. A provisioning token is the one
secret a blocked client may still use (identity providers share their addresses with every
tenant); its wrong ones are counted all the same.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client

from hushpost.accounts import passkeys, reset, throttle, twofactor
from hushpost.accounts.models import Throttle, User
from hushpost.audit.models import AuditEvent
from hushpost.gateway.access import authenticate
from hushpost.gateway.config import configure
from hushpost.lib import clock
from hushpost.notifications.models import Notification
from hushpost.scim import tokens as scim_tokens
from tests import personas
from tests.helpers import totp_now
from tests.passkey_device import PasskeyDevice, add_passkey
from tests.personas import BOB, CHARLIE, NEW_PASSWORD, OPS_PASSWORD, PASSWORD, ops_enrol

GUESSER = "203.0.113.66"  # the client trying the secret
OWNER = "198.51.100.20"  # the owner's own address, for the steps before it (the password before a code)
WRONG = "Wrong-password-123"  # noqa: S105 - a deliberately wrong secret
WRONG_RECOVERY_CODE = "lllll-iiiii"  # letters no recovery code is made of
CHOSEN = "Meadow-lantern-orbit-47"
RELAY_PASSWORD = "Relay-harbour-quartz-62"  # noqa: S105


def row(scope: str, key: str) -> Throttle | None:
    return Throttle.objects.filter(scope=scope, key=hashlib.sha256(key.encode()).hexdigest()).first()


def failures(scope: str, key: str) -> int:
    found = row(scope, key)
    return found.failures if found is not None else 0


# --- The flow itself ------------------------------------------------------------------------------


class Secret:
    """A check that counts its runs and says what it opens (None: the secret is wrong)."""

    def __init__(self, opens=None):
        self.opens, self.runs = opens, 0

    def __call__(self):
        self.runs += 1
        return self.opens


def test_an_allowed_attempt_runs_the_check_and_carries_what_it_opened(alice):
    check = Secret(opens=alice)
    attempt = throttle.check_secret(GUESSER, "sender:alice@northwind.example", check, owner=alice)
    assert attempt.passed and attempt.value == alice and attempt.refusal is None
    assert check.runs == 1


def test_a_wrong_secret_is_counted_against_the_account_and_the_client(alice):
    asked = []
    attempt = throttle.check_secret(GUESSER, "sender:x@northwind.example", Secret(opens=None),
                                    owner=lambda: asked.append(1))
    assert not attempt.passed and attempt.checked and attempt.refusal is None
    assert asked == [1]  # the owner is looked up for the failure only
    assert failures("account", "sender:x@northwind.example") == 1 and failures("client", GUESSER) == 1
    assert AuditEvent.objects.filter(action=AuditEvent.Action.SIGN_IN_FAILED, client=GUESSER).count() == 1
    assert not throttle.check_secret(GUESSER, "sender:y@northwind.example", Secret(opens=False)).passed  # False too


def test_a_right_secret_clears_the_accounts_count_and_gives_the_client_its_try_back(alice):
    asked = []
    clock.freeze()
    for _ in range(2):
        throttle.check_secret(GUESSER, "sender:alice@northwind.example", Secret(), owner=alice)
    clock.travel(timedelta(seconds=3))  # two typos: the next try waits two seconds
    attempt = throttle.check_secret(GUESSER, "sender:alice@northwind.example", Secret(opens=True),
                                    owner=lambda: asked.append(1))
    assert attempt.passed and asked == []
    assert row("account", "sender:alice@northwind.example") is None
    assert failures("client", GUESSER) == 2  # three reserved, one taken back


def test_a_refused_attempt_never_runs_the_check(alice, settings):
    clock.freeze()
    for n in range(settings.LOCKOUT_FAILURES):
        attempt = throttle.check_secret(f"192.0.2.{n}", "sender:alice@northwind.example", Secret(), owner=alice)
        clock.travel(timedelta(seconds=61))
    # The failure that locked says so, for as long as the lock lasts, and the owner is told.
    assert attempt.checked and attempt.refusal.retry_after == settings.LOCKOUT_MINUTES * 60
    assert "paused for 15 minutes" in str(attempt.refusal)
    assert Notification.objects.filter(kind=Notification.Kind.LOCKOUT, user=alice).count() == 1
    check = Secret(opens=alice)
    attempt = throttle.check_secret(GUESSER, "sender:alice@northwind.example", check, owner=alice)
    assert not attempt.passed and not attempt.checked and check.runs == 0
    assert 0 < attempt.refusal.retry_after <= settings.LOCKOUT_MINUTES * 60
    assert failures("client", GUESSER) == 0  # a refused attempt costs the client nothing


def test_no_module_takes_a_step_of_the_flow_on_its_own():
    package = Path(throttle.__file__).resolve().parent.parent
    steps = {"_check", "_failed", "_succeeded"}
    reached = []
    for path in package.rglob("*.py"):
        if path == Path(throttle.__file__).resolve():
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            named = {node.attr} if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "throttle" else set()
            if isinstance(node, ast.ImportFrom) and node.module == "hushpost.accounts.throttle":
                named = {alias.name for alias in node.names}
            reached += [f"{path.relative_to(package)}: {name}" for name in named & steps]
    assert reached == []


# --- Every door that takes a secret ---------------------------------------------------------------


@dataclass
class Door:
    key: str  # the account name it counts against ("{ip}" stands for the client's address)
    enter: Callable[[str, bool], bool]  # (client address, the right secret?) -> got in


def sender_password(org, alice) -> Door:
    def enter(ip, right):
        r = Client().post("/login", {"email": alice.email, "password": PASSWORD if right else WRONG}, REMOTE_ADDR=ip)
        return r.status_code == 302
    return Door(f"sender:{alice.email}", enter)


def recipient_password(org, alice) -> Door:
    bob = User.objects.create(org=org, email=BOB, role=User.Role.RECIPIENT)
    bob.set_password(NEW_PASSWORD)
    bob.save()

    def enter(ip, right):
        r = Client().post(f"/r/{org.slug}/login", {"email": BOB, "password": NEW_PASSWORD if right else WRONG},
                          REMOTE_ADDR=ip)
        return r.status_code == 302
    return Door(f"r{org.pk}:{BOB}", enter)


def portal_second_step(org, alice) -> Door:
    secret = twofactor.new_secret()
    codes = twofactor.enable(alice, secret, totp_now(secret))

    def enter(ip, right):
        c = Client()
        assert c.post("/login", {"email": alice.email, "password": PASSWORD}, REMOTE_ADDR=OWNER).status_code == 302
        r = c.post("/login/2fa", {"code": codes[0] if right else WRONG_RECOVERY_CODE}, REMOTE_ADDR=ip)
        return r.status_code == 302
    return Door(f"2fa:{alice.pk}", enter)


def reset_link(org, alice) -> Door:
    link = reset.link_path(alice).split("#", 1)[1]

    def enter(ip, right):
        r = Client().post("/reset", {"link": link if right else "MQ/bad-link"}, REMOTE_ADDR=ip)
        return r.status_code == 302
    return Door("reset-link:{ip}", enter)


def confirm_its_you(org, alice) -> Door:
    c = Client()
    assert c.post("/login", {"email": alice.email, "password": PASSWORD}, REMOTE_ADDR=OWNER).status_code == 302

    def enter(ip, right):
        r = c.post("/app/account", {"current": PASSWORD if right else WRONG, "password": CHOSEN, "confirm": CHOSEN},
                   REMOTE_ADDR=ip)
        return r.status_code == 302
    return Door(f"sender:{alice.email}", enter)


def operator_password(org, alice) -> Door:
    User.objects.create_superuser(CHARLIE, OPS_PASSWORD)

    def enter(ip, right):
        r = Client().post("/ops/login/", {"username": CHARLIE, "password": OPS_PASSWORD if right else WRONG},
                          REMOTE_ADDR=ip)
        return r.status_code == 302
    return Door(f"ops:{CHARLIE}", enter)


def operator_enrolment(org, alice) -> Door:
    charlie = User.objects.create_superuser(CHARLIE, OPS_PASSWORD)

    def enter(ip, right):
        c = Client()
        c.post("/ops/login/", {"username": CHARLIE, "password": OPS_PASSWORD}, REMOTE_ADDR=OWNER)
        page = c.get("/ops/login/enrol/", REMOTE_ADDR=OWNER).content.decode()
        code = totp_now(re.search(r'<code class="secret">([A-Z2-7 ]+)</code>', page).group(1).replace(" ", ""))
        r = c.post("/ops/login/enrol/", {"code": code if right else str((int(code) + 1) % 10**6).zfill(6)},
                   REMOTE_ADDR=ip)
        return "Keep these recovery codes somewhere safe" in r.content.decode()
    return Door(f"2fa:{charlie.pk}", enter)


def operator_code(org, alice) -> Door:
    charlie = User.objects.create_superuser(CHARLIE, OPS_PASSWORD)
    secret = twofactor.new_secret()
    codes = twofactor.enable(charlie, secret, totp_now(secret))

    def enter(ip, right):
        c = Client()
        c.post("/ops/login/", {"username": CHARLIE, "password": OPS_PASSWORD}, REMOTE_ADDR=OWNER)
        r = c.post("/ops/login/code/", {"code": codes[0] if right else WRONG_RECOVERY_CODE}, REMOTE_ADDR=ip)
        return r.status_code == 302
    return Door(f"2fa:{charlie.pk}", enter)


def operator_password_change(org, alice) -> Door:
    User.objects.create_superuser(CHARLIE, OPS_PASSWORD)
    c = Client(REMOTE_ADDR=OWNER)
    ops_enrol(c, CHARLIE)

    def enter(ip, right):
        r = c.post("/ops/password_change/", {"old_password": OPS_PASSWORD if right else WRONG,
                                             "new_password1": CHOSEN, "new_password2": CHOSEN}, REMOTE_ADDR=ip)
        return r.status_code == 302
    return Door(f"ops:{CHARLIE}", enter)


def smtp_auth(org, alice) -> Door:
    configure(org, auth_user="northwind-relay", password=RELAY_PASSWORD)

    def enter(ip, right):
        return authenticate("northwind-relay", RELAY_PASSWORD if right else WRONG, ip) == org.pk
    return Door("gateway:northwind-relay", enter)


def _with_passkey(alice) -> PasskeyDevice:
    device = PasskeyDevice(passkeys.origin())
    owner = Client(REMOTE_ADDR=OWNER)
    assert owner.post("/login", {"email": alice.email, "password": PASSWORD}).status_code == 302
    add_passkey(owner, device)
    return device


def _passkey_answer(client: Client, url: str, device: PasskeyDevice, ip: str, right: bool):
    options = client.post(url, REMOTE_ADDR=ip).json()
    answer = device.get(options, origin=None if right else "https://look-alike.example")
    return client.post(url, {"credential": answer}, REMOTE_ADDR=ip)


def passkey_sign_in(org, alice) -> Door:
    device = _with_passkey(alice)

    def enter(ip, right):
        return _passkey_answer(Client(), "/login/passkey", device, ip, right).status_code == 200
    return Door(f"passkey:{next(iter(device.credentials))}", enter)


def passkey_second_step(org, alice) -> Door:
    device = _with_passkey(alice)

    def enter(ip, right):
        c = Client()
        assert c.post("/login", {"email": alice.email, "password": PASSWORD}, REMOTE_ADDR=OWNER).status_code == 302
        return _passkey_answer(c, "/login/2fa/passkey", device, ip, right).status_code == 200
    return Door(f"2fa:{alice.pk}", enter)


DOORS = [sender_password, recipient_password, portal_second_step, reset_link, confirm_its_you,
         operator_password, operator_enrolment, operator_code, operator_password_change, smtp_auth,
         passkey_sign_in, passkey_second_step]


@pytest.fixture(params=DOORS, ids=[door.__name__ for door in DOORS])
def door(request, org, alice) -> Door:
    return request.param(org, alice)


def test_every_door_counts_a_wrong_secret(door):
    assert not door.enter(GUESSER, False)
    key = door.key.format(ip=GUESSER)
    assert failures("account", key) == 1 and failures("client", GUESSER) == 1
    assert AuditEvent.objects.filter(action=AuditEvent.Action.SIGN_IN_FAILED, client=GUESSER).count() == 1


def test_every_door_forgives_the_right_secret(door):
    assert not door.enter(GUESSER, False)
    assert door.enter(GUESSER, True)
    assert row("account", door.key.format(ip=GUESSER)) is None
    assert failures("client", GUESSER) == 1  # the wrong try stays counted; the right one was taken back


def test_no_door_opens_for_a_blocked_client(door, settings):
    settings.CLIENT_FAILURES = 1
    throttle.check_secret(GUESSER, "sender:someone-else@northwind.example", Secret())  # failing elsewhere blocks it
    assert not door.enter(GUESSER, True)
    assert row("account", door.key.format(ip=GUESSER)) is None  # and the account was not even asked


# --- A provisioning token: shared addresses, held off token by token --------------------------------


def provisioning(raw: str, ip: str = GUESSER) -> int:
    return Client().get("/scim/v2/Users", HTTP_AUTHORIZATION=f"Bearer {raw}", REMOTE_ADDR=ip).status_code


def test_a_wrong_provisioning_token_is_counted_against_the_client_and_its_first_characters(org):
    wrong = "hpscim_" + WRONG
    assert provisioning(wrong) == 401
    assert failures("account", f"scim:{GUESSER}:{wrong[:13]}") == 1 and failures("client", f"scim:{GUESSER}") == 1
    assert failures("client", GUESSER) == 0  # the address's sign-ins are not held off by it
    assert provisioning("not-a-token") == 401  # not a token at all: counted against the address alone
    assert failures("account", f"scim:{GUESSER}") == 1
    assert AuditEvent.objects.filter(action=AuditEvent.Action.SIGN_IN_FAILED, client=GUESSER).count() == 2


def test_a_valid_provisioning_token_passes_even_from_a_blocked_client(org, settings):
    raw = scim_tokens.issue(org, "Microsoft Entra ID", by=personas.ada(org))[1]
    settings.CLIENT_FAILURES = 1
    assert provisioning("hpscim_" + WRONG) == 401
    throttle.check_secret(GUESSER, "sender:someone-else@northwind.example", Secret())  # and a password
    assert provisioning("hpscim_" + WRONG) == 429 and provisioning("hpscim_other") == 429
    assert provisioning(raw) == 200
