"""Rotating the master key: everything it wraps moves to a new key while the old one is still
accepted, and afterwards the deployment runs with the new key alone, its audit trail, checkpoints
and provisioning tokens unchanged."""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from hushpost.crypto import keys, master
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
from tests.helpers import content_of, enrol, send, totp_now, upload
from tests.personas import BOB, CAROL, ada, password_step

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
    assert before["SSO client secrets"] == [0, 1, 0]

    out = keys_command("rotate-master")
    assert "wrapped values moved to the current master key" in out
    assert {kind: (n[1], n[2]) for kind, n in master_status().items()} == {
        "derivation root": (0, 0), "organisation keys": (0, 0), "authenticator secrets": (0, 0),
        "SSO client secrets": (0, 0)}
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


def test_a_deployment_from_before_the_root_keeps_its_audit_keys_through_a_rotation(settings, sender_client, org):
    assert send(sender_client, to=BOB, subject="Recorded under the old key").status_code == 302
    DerivationRoot.objects.all().delete()
    old = settings.MASTER_KEY
    restart_with(settings, new_key(), [old])
    keys_command("rotate-master")  # stores the root from the old key, under the new key
    restart_with(settings, settings.MASTER_KEY, [])
    assert "Audit trail intact" in audit("verify")
    assert master.is_current(OrgKey.objects.get(org=org).wrapped_key)
