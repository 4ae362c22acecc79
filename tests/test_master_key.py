"""Rotating the master key: everything it wraps moves to a new key while the old one is still
accepted, and afterwards the deployment runs with the new key alone, its audit trail, checkpoints
and provisioning tokens unchanged."""

from __future__ import annotations

import base64
import secrets
import threading
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from hushpost.crypto import dkim, keys, master
from hushpost.crypto.derivation import RootUnknown
from hushpost.lib import clock
from hushpost.messaging.content import open_content
from hushpost.messaging.models import Message
from hushpost.notifications.models import Notification
from hushpost.orgs.models import DerivationRoot, OrgKey
from hushpost.scim import tokens
from hushpost.sso.actions import save_single_sign_on
from hushpost.sso.models import SingleSignOn
from hushpost.sso.secrets import client_secret
from tests.deployments import Browser, Deployment
from tests.helpers import content_of, enrol, send, totp_now, upload
from tests.personas import BOB, CAROL, NEW_PASSWORD, PASSWORD, ada, password_step
from tests.settings import SMTP_PORT, _free_port

pytestmark = pytest.mark.django_db
FILE = b"%PDF-1.7 statement " * 1000


def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def keys_command(*args) -> str:
    out = StringIO()
    call_command("keys", *args, stdout=out)
    return out.getvalue()


def master_status() -> dict[str, list[int]]:
    """``hushpost keys status``: for each kind, how many values the current, a previous and no key wraps."""
    lines = keys_command("status").splitlines()[1:]
    return {line[:30].strip(): [int(n) for n in line[30:].split()] for line in lines}


def restart_with(settings, current: str, previous: list[str]) -> None:
    """Every process restarted with these keys: nothing cached from before."""
    settings.MASTER_KEY, settings.MASTER_KEY_PREVIOUS = current, previous
    keys.forget_cached_keys()
    dkim.forget_cached_keys()


def audit(*args) -> str:
    out = StringIO()
    call_command("audit", *args, stdout=out)
    return out.getvalue()


def test_every_wrapped_value_moves_to_the_new_key_and_the_old_key_can_go(
        settings, tmp_path, sender_client, alice, org, smtp, deliver, files_dir):
    old, admin = settings.MASTER_KEY, ada(org)
    secret, _ = enrol(sender_client, "/app/account/2fa")
    sso = SingleSignOn.objects.create(org=org, oidc_issuer="https://idp.example", oidc_client_id="hushpost")
    save_single_sign_on(sso, ["oidc_client_secret"], "the-client-secret", by=admin)
    scim = tokens.issue(org, "Entra", by=admin)[1]
    signing_key = dkim.create_key("northwind.example", "before")
    uid = upload(sender_client, FILE, "statement.pdf").json()["uid"]
    assert send(sender_client, to=BOB, subject="Before rotation", attachment=[uid]).status_code == 302
    deliver()
    kept = tmp_path / "checkpoint.txt"
    kept.write_text(audit("checkpoint"))

    new = new_key()
    restart_with(settings, new, [old])
    # Before the rotation every process reads what the old key wraps, and seals under the new one.
    assert send(sender_client, to=CAROL, subject="During the switch").status_code == 302
    deliver()
    before = master_status()
    assert before["organisation keys"] == [0, 1, 0] and before["authenticator secrets"] == [0, 1, 0]
    assert before["SSO client secrets"] == [0, 1, 0] and before["DKIM keys"] == [0, 1, 0]

    out = keys_command("rotate-master")
    assert "wrapped values moved to the current master key" in out
    assert {kind: (n[1], n[2]) for kind, n in master_status().items()} == {
        "derivation root": (0, 0), "organisation keys": (0, 0), "authenticator secrets": (0, 0),
        "security phrases": (0, 0), "SSO client secrets": (0, 0), "DKIM keys": (0, 0)}
    assert "0 wrapped values moved" in keys_command("rotate-master")  # run again: nothing left to move

    restart_with(settings, new, [])
    assert sorted(open_content(m).subject for m in Message.objects.all()) == ["Before rotation", "During the switch"]
    sent = Message.objects.get(attachments__uid=uid)
    assert content_of(sender_client.get(f"/app/m/{sent.uid}/files/{uid}")) == FILE
    clock.travel(timedelta(seconds=31))
    c = Client()
    password_step(c, alice.email)
    assert c.post("/login/2fa?next=/app/", {"code": totp_now(secret)})["Location"] == "/app/"
    assert client_secret(SingleSignOn.objects.get(pk=sso.pk)) == "the-client-secret"
    assert b"s=before;" in dkim.signature(b"From: a@northwind.example\r\n\r\nHello\r\n", "northwind.example")
    assert signing_key.public_key in dkim.record_of(signing_key).value
    assert Client(HTTP_AUTHORIZATION=f"Bearer {scim}").get("/scim/v2/Users").status_code == 200
    # The audit trail, its checkpoint kept before, and everything recorded since, verify.
    assert "Audit trail intact" in audit("verify", "--checkpoint", str(kept))
    # Nothing was e-mailed twice.
    assert Notification.objects.filter(status="sent").count() == 4
    assert len(smtp.to(BOB)) == 2 and len(smtp.to(CAROL)) == 2


def test_rotation_refuses_without_a_previous_key_or_with_the_same_key(settings):
    with pytest.raises(CommandError, match="HUSHPOST_MASTER_KEY_PREVIOUS is not set"):
        keys_command("rotate-master")
    settings.MASTER_KEY_PREVIOUS = [settings.MASTER_KEY]
    with pytest.raises(CommandError, match="is also in HUSHPOST_MASTER_KEY_PREVIOUS"):
        keys_command("rotate-master")


def test_a_process_with_only_the_new_key_opens_nothing_and_stores_no_root(settings, sender_client, org):
    assert send(sender_client, to=BOB, subject="Under the old key").status_code == 302
    DerivationRoot.objects.all().delete()  # a deployment from before the root was stored
    restart_with(settings, new_key(), [])
    with pytest.raises(master.UnknownMasterKey):
        open_content(Message.objects.get())
    with pytest.raises(RootUnknown, match="set HUSHPOST_MASTER_KEY_PREVIOUS"):
        audit("verify")
    assert not DerivationRoot.objects.exists()  # no root made from the wrong key
    assert master_status()["organisation keys"] == [0, 0, 1]  # no configured key opens it


def test_a_deployment_from_before_the_root_with_no_organisation_key_is_not_guessed_at(settings, org):
    DerivationRoot.objects.all().delete()
    OrgKey.objects.all().delete()  # its organisations have sent nothing yet
    restart_with(settings, new_key(), [settings.MASTER_KEY])
    with pytest.raises(CommandError, match="start it once with that key alone"):
        keys_command("rotate-master")
    assert not DerivationRoot.objects.exists()


def test_a_deployment_from_before_the_root_keeps_its_audit_keys_through_a_rotation(settings, sender_client, org):
    assert send(sender_client, to=BOB, subject="Recorded under the old key").status_code == 302
    DerivationRoot.objects.all().delete()
    old = settings.MASTER_KEY
    restart_with(settings, new_key(), [old])
    keys_command("rotate-master")  # stores the root from the old key, under the new key
    restart_with(settings, settings.MASTER_KEY, [])
    assert "Audit trail intact" in audit("verify")
    assert master.is_current(OrgKey.objects.get(org=org).wrapped_key)


# --- a whole deployment rotating while its people send and read -----------------------------------

def test_a_running_deployment_rotates_while_senders_send_and_read(tmp_path, smtp, empty_database):
    old, new = new_key(), new_key()
    d = Deployment(tmp_path, "local", _free_port(), HUSHPOST_MASTER_KEY=old, HUSHPOST_SECRET_KEY=new_key(),
                   HUSHPOST_DATABASE_URL=empty_database, HUSHPOST_EMAIL_URL=f"smtp://127.0.0.1:{SMTP_PORT}")
    for args, stdin in ((("migrate", "-v0"), ""), (("org", "add", "--name", "Northwind", "--domain", "northwind.example"), ""),
                        (("user", "add", "--email", ALICE, "--name", "Alice"), PASSWORD + "\n")):
        r = d.run(*args, stdin=stdin)
        assert r.returncode == 0, r.stderr
    sent = []
    try:
        d.start()
        d.start_worker()
        alice = signed_in(d)
        sent += [compose(d, alice, BOB, f"Before {n}") for n in range(3)]
        checkpoint = tmp_path / "checkpoint.txt"
        checkpoint.write_text(d.run("audit", "checkpoint").stdout)
        d.stop()

        # Only the new key, before the rotation: nothing fits, and it says so in one line.
        d.env["HUSHPOST_MASTER_KEY"] = new
        for args in (("serve",), ("audit", "verify")):
            r = d.run(*args)
            assert r.returncode == 2 and "HUSHPOST_MASTER_KEY_PREVIOUS" in r.stderr and len(r.stderr.splitlines()) == 1

        d.env["HUSHPOST_MASTER_KEY_PREVIOUS"] = old
        d.start()
        d.start_worker()
        stop, failures = threading.Event(), []

        def send_and_read():
            # Alice keeps sending and reading her Sent list while the rotation runs.
            n = 0
            while not stop.is_set() or n < 3:
                try:
                    sent.append(compose(d, alice, CAROL if n % 2 else BOB, f"During {n}"))
                    status, _, page = alice.get(d.url + "/app/sent")
                    assert status == 200 and f"During {n}" in page
                except Exception as exc:  # noqa: BLE001 - reported below
                    failures.append(exc)
                    return
                n += 1

        sender = threading.Thread(target=send_and_read)
        sender.start()
        for _ in range(2):  # stopped and run again, it moves only what is left
            r = d.run("keys", "rotate-master")
            assert r.returncode == 0, r.stderr
        stop.set()
        sender.join(120)
        assert not failures
        r = d.run("keys", "status")
        assert [line.split()[-2:] for line in r.stdout.splitlines()[1:]] == [["0", "0"]] * 6, r.stdout
        d.stop()

        # The old key removed everywhere: everything opens, the trail and its old checkpoint verify.
        del d.env["HUSHPOST_MASTER_KEY_PREVIOUS"]
        d.start()
        d.start_worker()
        r = d.run("audit", "verify", "--checkpoint", str(checkpoint))
        assert r.returncode == 0 and "Audit trail intact" in r.stdout, r.stderr
        status, _, page = alice.get(d.url + "/app/sent")
        assert status == 200 and sent[-1] in page  # the newest, on the first page of Sent
        r = d.run("shell", "--no-imports", "-c", OPEN_ALL)
        assert r.returncode == 0, r.stderr
        assert sorted(r.stdout.split("\n")[:-1]) == sorted(sent)
        # Every e-mail once: a Password Notification for each recipient, one e-mail per message.
        expected = len(sent) + 2
        deadline = time.monotonic() + 60
        while len(smtp.messages) < expected and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)
        assert len(smtp.messages) == expected
        assert len({(m.to, m.subject, m.message["Message-ID"]) for m in smtp.messages}) == expected
    finally:
        d.stop()


ALICE = "alice@northwind.example"
OPEN_ALL = """
from hushpost.messaging.content import open_content
from hushpost.messaging.models import Message
for m in Message.objects.all():
    print(open_content(m).subject)
"""


def signed_in(d: Deployment) -> Browser:
    """Alice, added by ``hushpost user add``, signed in and with a password of her own."""
    browser = Browser()
    status, _, _ = browser.post_form(d.url + "/login", {"email": ALICE, "password": PASSWORD})
    assert status == 302
    status, _, _ = browser.post_form(d.url + "/app/account", {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert status == 302
    return browser


def compose(d: Deployment, browser: Browser, to: str, subject: str) -> str:
    status, _, page = browser.post_form(d.url + "/app/compose", {
        "to": to, "subject": subject, "body": "<p>Your results.</p>", "body_format": "html", "restriction": "none",
        "expire_days": "0", "send_token": secrets.token_urlsafe(24), "confirm": "1"})
    assert status == 302, page[:300]
    return subject
