"""The audit trail: every access recorded, never content, append-only and tamper-evident."""

from __future__ import annotations

import csv
import io
import json
import re
from contextlib import contextmanager
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.test import Client

from hushpost.audit.actions import record
from hushpost.audit.chain import head_seal
from hushpost.audit.models import AppendOnly, AuditEvent, AuditHead
from hushpost.audit.verify import verify
from hushpost.crypto import derivation
from hushpost.messaging.models import Message
from tests import personas
from tests.helpers import BACKEND, run_cli, send, upload
from tests.personas import BOB, first_login

SECRETS = ("Tuesday biopsy QA71", "benign QA72", "scan-QA73.pdf", "thanks QA74")


@pytest.fixture
def story(sender_client, client_factory, smtp, deliver, org):
    """A message's whole life, as people live it."""
    fid = upload(sender_client, b"scan", SECRETS[2]).json()["uid"]
    send(sender_client, to=BOB, subject=SECRETS[0], body=f"<p>{SECRETS[1]}</p>", attachment=[fid])
    message = Message.objects.get()
    deliver()
    bob = client_factory()
    first_login(bob, smtp, org, BOB)
    base = f"/r/{org.slug}/m/{message.uid}"
    bob.get(base)
    bob.get(base + "/print")
    bob.get(f"{base}/files/{fid}")
    bob.post(base + "/reply", {"body": SECRETS[3], "send_token": "reply-token-audit-01"})
    sender_client.post(f"/app/m/{message.uid}/recall")
    bob.post(base + "/delete")
    Client().post("/login", {"email": "alice@northwind.example", "password": "Not-her-password-1"},
                  REMOTE_ADDR="198.51.100.23")
    return message


def test_every_step_is_recorded_with_who_when_and_where(story, org, alice):
    actions = list(AuditEvent.objects.filter(org=org).order_by("id").values_list("action", flat=True))
    for expected in ("sign_in", "send", "notification", "open", "print", "download", "reply", "recall",
                     "delete", "sign_in_failed", "password_change"):
        assert expected in actions, expected
    send_event = AuditEvent.objects.get(action="send", object_id=story.uid)
    assert send_event.actor == alice and send_event.object_id == story.uid and send_event.client == "127.0.0.1"
    assert send_event.detail == "1 recipient(s), 1 file(s)"
    failed = AuditEvent.objects.get(action="sign_in_failed", client="198.51.100.23")
    assert failed.actor_email == alice.email and failed.client == "198.51.100.23"


def test_the_trail_never_holds_content(story):
    for event in AuditEvent.objects.all():
        text = " ".join(str(v) for v in (event.actor_email, event.object_type, event.object_id, event.detail))
        for secret in SECRETS:
            assert secret not in text


def test_the_chain_verifies_and_a_changed_event_breaks_it(story):
    assert verify().broken == []
    out = io.StringIO()
    call_command("audit", "verify", stdout=out)
    assert "Audit trail intact" in out.getvalue()
    victim = AuditEvent.objects.filter(action="download").first()
    if connection.vendor == "postgresql":
        # PostgreSQL refuses the change outright.
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            AuditEvent.objects.filter(pk=victim.pk).update(detail="nothing to see")
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            AuditEvent.objects.filter(pk=victim.pk).delete()
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_no_truncate")
            cursor.execute("TRUNCATE audit_auditevent")
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            AuditHead.objects.all().delete()
        return
    AuditEvent.objects.filter(pk=victim.pk).update(detail="nothing to see")
    verdict = verify()
    assert verdict.broken and f"event {victim.pk}" in verdict.broken[0]
    with pytest.raises(CommandError, match="does not verify"):
        call_command("audit", "verify", stdout=io.StringIO(), stderr=io.StringIO())


def test_a_removed_event_breaks_the_chain(story):
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL refuses the deletion itself (previous test)")
    assert verify().broken == []  # every event chained
    victim = AuditEvent.objects.filter(action="print").first()
    AuditEvent.objects.filter(pk=victim.pk)._raw_delete(AuditEvent.objects.db)
    assert verify().broken


@contextmanager
def owner_rights():
    """What the database's owner can do: on PostgreSQL, switch the append-only triggers off, then on."""
    triggers = (("audit_auditevent", "audit_append_only"), ("audit_audithead", "audit_head_kept"))
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        for table, trigger in triggers:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for table, trigger in triggers:
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}")


def remove_last_events(org, count: int) -> list[AuditEvent]:
    """Delete the chain's last events as the database's owner could; the events left."""
    events = list(AuditEvent.objects.filter(org=org).order_by("id"))
    with owner_rights():
        AuditEvent.objects.filter(pk__in=[e.pk for e in events[-count:]])._raw_delete(AuditEvent.objects.db)
    return events[:-count]


def test_removing_the_last_events_shows_even_with_the_head_moved_back(story, org):
    assert verify().broken == []
    left = remove_last_events(org, 3)
    [problem] = verify().broken
    assert problem.startswith(f"chain {org.pk}: its last events are missing")
    # The head moved back to the new end: its seal no longer fits.
    AuditHead.objects.filter(chain=org.pk).update(last_hash=left[-1].hash, events=len(left))
    [problem] = verify().broken
    assert f"chain {org.pk}: its head's seal does not match" in problem
    # Nor does a seal made under any other key: another deployment's derivation root, or a guess.
    with mock.patch.object(derivation, "root", lambda: b"k" * 16 + b"not the root key!!!!"):
        forged = head_seal(org.pk, len(left), left[-1].hash)
    AuditHead.objects.filter(chain=org.pk).update(seal=forged)
    [problem] = verify().broken
    assert "seal does not match" in problem
    err = io.StringIO()
    with pytest.raises(CommandError, match="does not verify"):
        call_command("audit", "verify", stdout=io.StringIO(), stderr=err)
    assert f"chain {org.pk}" in err.getvalue()


def test_a_head_restored_from_a_backup_is_caught_by_a_kept_checkpoint(story, org, tmp_path):
    assert verify().broken == []  # every event chained
    backup = AuditHead.objects.filter(chain=org.pk).values("last_hash", "events", "seal").get()
    for n in range(2):
        record(AuditEvent.Action.ADMIN, org=org, actor_email="ada@northwind.example", detail=f"later {n}")
    printed = io.StringIO()
    call_command("audit", "checkpoint", stdout=printed)
    kept = tmp_path / "checkpoint"
    kept.write_text(printed.getvalue())
    out = io.StringIO()
    call_command("audit", "verify", "--checkpoint", str(kept), stdout=out)
    assert "Audit trail intact" in out.getvalue() and "still there" in out.getvalue()
    remove_last_events(org, 2)
    AuditHead.objects.filter(chain=org.pk).update(**backup)
    # The limit the threat model names: an older head with its own older seal verifies...
    assert verify().broken == []
    # ...but not against a checkpoint kept outside Hushpost.
    err = io.StringIO()
    with pytest.raises(CommandError, match="does not verify"):
        call_command("audit", "verify", "--checkpoint", str(kept), stdout=io.StringIO(), stderr=err)
    assert f"chain {org.pk}: the checkpoint saw {backup['events'] + 2} events" in err.getvalue()
    # A checkpoint edited to match is not one.
    edited = json.loads(kept.read_text())
    edited["chains"][str(org.pk)] = [backup["events"], backup["last_hash"]]
    with pytest.raises(CommandError, match="signature does not match"):
        call_command("audit", "verify", "--checkpoint", "-", stdin=io.StringIO(json.dumps(edited)),
                     stdout=io.StringIO())
    # Nor is one whose signature was typed with a character no signature has.
    edited = json.loads(kept.read_text())
    for odd in ("é", "\udc80"):  # an accent, half of a character
        edited["mac"] = odd + edited["mac"][1:]
        with pytest.raises(CommandError, match="signature does not match"):
            call_command("audit", "verify", "--checkpoint", "-", stdin=io.StringIO(json.dumps(edited)),
                         stdout=io.StringIO())


def test_upgrading_seals_the_heads_of_an_existing_trail(cli_env):
    assert run_cli(cli_env, "migrate", "-v0").returncode == 0
    r = run_cli(cli_env, "shell", "-c", "from hushpost.audit.actions import record\nfor n in range(3): record('admin', detail=str(n))")
    assert r.returncode == 0, r.stderr
    # As before seals existed: the columns go, with what they held; upgrading brings them back.
    assert run_cli(cli_env, "migrate", "audit", "0002", "-v0").returncode == 0
    assert run_cli(cli_env, "migrate", "-v0").returncode == 0
    r = run_cli(cli_env, "audit", "verify")
    assert r.returncode == 0, r.stderr
    assert "3 events in 1 chain(s)" in r.stdout


def test_events_cannot_be_changed_through_the_application(story):
    event = AuditEvent.objects.first()
    event.detail = "rewritten"
    with pytest.raises(AppendOnly):
        event.save()
    with pytest.raises(AppendOnly):
        event.delete()


def test_an_admin_filters_and_exports_the_trail(story, org):
    admin = Client()
    admin.force_login(personas.ada(org), backend=BACKEND)
    page = admin.get("/app/admin/audit", {"action": "download"}).content.decode()
    shown = re.findall(r'<th scope="row">([^<]+)</th>', page)
    assert shown and set(shown) == {"File downloaded"}
    r = admin.get("/app/admin/audit", {"format": "csv"})
    assert r["Content-Type"].startswith("text/csv") and "attachment;" in r["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert rows[0][:3] == ["time (UTC)", "action", "actor"]
    assert {"Message sent", "Message recalled", "File downloaded"} <= {row[1] for row in rows[1:]}
    for secret in SECRETS:
        assert all(secret not in cell for row in rows for cell in row)
    other = Client()
    other.force_login(personas.hal(personas.harbour()), backend=BACKEND)
    theirs = other.get("/app/admin/audit").content.decode()
    assert not {"Message sent", "File downloaded"} & set(re.findall(r'<th scope="row">([^<]+)</th>', theirs))


def test_a_spreadsheet_formula_in_the_trail_is_defused_in_the_export(org):
    from hushpost.audit.actions import record

    record(AuditEvent.Action.ADMIN, org=org, actor_email='=HYPERLINK("http://evil.example")',
           detail="+SUM(A1:A9)", client="-1+1")
    admin = Client()
    admin.force_login(personas.ada(org), backend=BACKEND)
    rows = list(csv.reader(io.StringIO(b"".join(admin.get("/app/admin/audit", {"format": "csv"}).streaming_content)
                                       .decode())))
    [row] = [r for r in rows if "HYPERLINK" in r[2]]
    assert row[2] == "'=HYPERLINK(\"http://evil.example\")" and row[3] == "'-1+1" and row[6] == "'+SUM(A1:A9)"
