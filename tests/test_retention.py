"""Retention: an organisation's policy destroys message content when it is due (crypto-shredding),
a legal hold keeps it, and admins see both; nobody else's holds or messages are theirs to touch."""

from __future__ import annotations

import os
import secrets
import socket
import sqlite3
import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection  # noqa: F401 - the skipif condition
from django.test import Client

from hushpost.attachments.models import Attachment
from hushpost.audit.models import AuditEvent
from hushpost.audit.verify import verify
from hushpost.lib import clock
from hushpost.messaging.actions import Addressees, SendOptions, send_message
from hushpost.messaging.models import Delivery, Message
from hushpost.retention import actions, purge
from hushpost.retention.models import LegalHold, RetentionPolicy
from hushpost.server import background, periodic, rekey
from hushpost.server.background import RETENTION_JOB
from hushpost.server.models import PeriodicRun
from tests import personas
from tests.helpers import send as compose
from tests.helpers import signed_in_as, upload, workers_at_once
from tests.personas import ALICE, BOB, CAROL, PASSWORD, first_login

DAVE = "dave@client.example"
postgresql_only = pytest.mark.skipif("connection.vendor != 'postgresql'",
                                     reason="workers on several machines share a PostgreSQL server")


@pytest.fixture
def ada(org):
    return personas.ada(org)


@pytest.fixture
def admin(ada):
    return signed_in_as(Client(), ada)


def _send(sender_client, *, to=BOB, subject="Scan results QZ41", body="<p>Findings QZ42</p>", files=(), **kw):
    uids = [upload(sender_client, data, name).json()["uid"] for name, data in files]
    r = compose(sender_client, to=to, subject=subject, body=body, attachment=uids, **kw)
    assert r.status_code == 302, r.content[:300]
    return Message.objects.order_by("-pk").first()


def _policy(org, ada, expiry=None, deletion=None, activity=None):
    return actions.set_policy(org, by=ada, after_expiry_days=expiry, after_deletion_days=deletion,
                              after_activity_days=activity)


def _expired(sender_client, org, ada, **kw):
    """A message that expired two days ago under a policy of purging one day after expiry."""
    message = _send(sender_client, expire_days=1, **kw)
    _policy(org, ada, expiry=1)
    clock.travel(timedelta(days=3))
    return message


def test_nothing_is_purged_until_an_admin_sets_a_policy(sender_client, org, ada):
    message = _send(sender_client, expire_days=1)
    clock.travel(timedelta(days=400))
    assert purge.purge_org(org).purged == 0
    assert not RetentionPolicy.objects.exists()
    message.refresh_from_db()
    assert message.purged_at is None and bytes(message.body_ct)


def test_a_purge_destroys_keys_ciphertext_and_stored_files_and_keeps_the_rest(sender_client, store, org, ada):
    message = _expired(sender_client, org, ada, files=[("scan.pdf", b"%PDF scan QZ43")])
    key = Attachment.objects.get().store_key
    assert key in store()

    outcome = purge.purge_org(org)

    assert (outcome.purged, outcome.files) == (1, 1)
    message.refresh_from_db()
    assert message.purged_at is not None
    assert bytes(message.wrapped_key) == bytes(message.subject_ct) == bytes(message.body_ct) == b""
    assert bytes(Attachment.objects.get().sealed) == b""
    assert key not in store()
    # Who sent what to whom, and when, stays.
    assert Delivery.objects.get(message=message).recipient.email == BOB
    event = AuditEvent.objects.get(action=AuditEvent.Action.PURGE)
    assert event.object_id == message.uid and event.actor_email == "retention policy"
    assert "1 file(s)" in event.detail and "expired" in event.detail
    assert not verify().broken
    assert purge.purge_org(org).purged == 0  # once only


def test_both_portals_say_the_content_was_removed_instead_of_showing_it(
        sender_client, smtp, deliver, client_factory, org, ada, alice):
    message = _send(sender_client, expire_days=1, files=[("scan.pdf", b"%PDF QZ44")])
    deliver()
    bob = client_factory()
    first_login(bob, smtp, org, BOB)
    file_uid = Attachment.objects.get().uid
    _policy(org, ada, expiry=1)
    clock.travel(timedelta(days=3))
    purge.purge_org(org)
    personas.sign_in_again(bob, org, BOB)
    sender_client = signed_in_as(Client(), alice)
    notice = f"Content removed under {org.name}'s retention policy on {clock.now():%-d %b %Y}."
    for client, pages in ((bob, [f"/r/{org.slug}/m/{message.uid}", f"/r/{org.slug}/"]),
                          (sender_client, [f"/app/m/{message.uid}", "/app/sent"])):
        for page in pages:
            r = client.get(page)
            text = r.content.decode()
            assert r.status_code == 200, page
            assert "QZ4" not in text and "scan.pdf" not in text
            assert "Content removed under" in text
    page = bob.get(f"/r/{org.slug}/m/{message.uid}").content.decode()
    assert notice in page
    assert bob.get(f"/r/{org.slug}/m/{message.uid}/f/{file_uid}").status_code == 404


@pytest.mark.parametrize("hold", ["sender", "recipient", "conversation"])
def test_a_held_message_survives_and_is_purged_once_the_hold_is_released(sender_client, org, ada, hold):
    message = _expired(sender_client, org, ada, to=f"{BOB}, {CAROL}")
    target = {"sender": {"account": message.author},
              "recipient": {"account": Delivery.objects.get(recipient__email=CAROL).recipient},
              "conversation": {"conversation": message}}[hold]
    placed = actions.place_hold(org, reason="Matter 2026-114", by=ada, **target)

    outcome = purge.purge_org(org)

    assert (outcome.purged, outcome.held) == (0, 1)
    message.refresh_from_db()
    assert message.purged_at is None and bytes(message.body_ct)
    assert actions.release_hold(placed, by=ada)
    assert purge.purge_org(org).purged == 1
    details = list(AuditEvent.objects.filter(action=AuditEvent.Action.ADMIN, detail__contains="legal hold")
                   .values_list("detail", flat=True))
    what = target["account"].email if "account" in target else message.uid
    assert details == [f"placed legal hold {placed.pk} on {placed.kind} {what}, because: Matter 2026-114",
                       f"released legal hold {placed.pk}, placed because: Matter 2026-114"]


def test_a_hold_placed_while_a_purge_runs_is_honoured_by_the_next_batch(sender_client, org, ada):
    message = _expired(sender_client, org, ada)

    def hold_arrives_meanwhile() -> bool:  # asked before each batch, after the run was planned
        actions.place_hold(org, reason="Subpoena just in", by=ada, account=message.author)
        return True

    outcome = purge.purge_org(org, still_ours=hold_arrives_meanwhile)
    assert (outcome.due, outcome.purged) == (1, 0)
    message.refresh_from_db()
    assert message.purged_at is None and bytes(message.wrapped_key)


@pytest.mark.parametrize("named", ["sender account", "recipient account"])
def test_a_hold_on_a_person_keeps_what_they_wrote_and_received_under_either_account(
        sender_client, org, ada, alice, named):
    # Alice writes to a client as a sender; a colleague copies her in, which gives her a recipient account too.
    wrote = _send(sender_client)
    cyril = personas.sender(org, "cyril", "Cyril Ng")
    copied = send_message(author=cyril, addressees=Addressees(to=[DAVE], cc=[ALICE]), subject="Rota",
                          body_html="<p>Rota QZ46</p>", options=SendOptions(), send_token=secrets.token_urlsafe(16))
    as_recipient = Delivery.objects.get(message=copied, recipient__email=ALICE).recipient
    assert as_recipient != alice and not as_recipient.is_sender
    account = alice if named == "sender account" else as_recipient
    actions.place_hold(org, reason="Matter 2026-115", by=ada, account=account)
    _policy(org, ada, activity=30)
    clock.travel(timedelta(days=31))

    outcome = purge.purge_org(org)

    assert (outcome.purged, outcome.held) == (0, 2)
    for message in (wrote, copied):
        message.refresh_from_db()
        assert message.purged_at is None and bytes(message.body_ct)


def _turned_off(org, ada, message):
    _policy(org, ada)


def _lengthened(org, ada, message):
    _policy(org, ada, activity=90)


def _opened(org, ada, message):
    Delivery.objects.filter(message=message).update(first_opened_at=clock.now())


@pytest.mark.parametrize("meanwhile", [_turned_off, _lengthened, _opened], ids=lambda f: f.__name__.strip("_"))
def test_a_running_purge_spares_what_is_no_longer_due_when_its_batch_comes(sender_client, org, ada, meanwhile):
    message = _send(sender_client)
    _policy(org, ada, activity=30)
    clock.travel(timedelta(days=31))

    def change_arrives_meanwhile() -> bool:  # asked before each batch, after the run was planned
        meanwhile(org, ada, message)
        return True

    outcome = purge.purge_org(org, still_ours=change_arrives_meanwhile)

    assert (outcome.due, outcome.purged, outcome.no_longer_due) == (1, 0, 1)
    assert "1 no longer due" in outcome.line()
    message.refresh_from_db()
    assert message.purged_at is None and bytes(message.wrapped_key)
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.PURGE).exists()


def test_a_key_rotation_passes_over_purged_messages(sender_client, org, ada):
    _expired(sender_client, org, ada)
    purge.purge_org(org)
    old = Message.objects.get().key_version
    new = rekey.rotate(org, by="ops@northwind.example")
    assert rekey.rewrap.call(org.pk, new.version) == 0
    rekey.retire(org, old, by="ops@northwind.example")  # nothing left needs the old version
    assert [v.version for v in rekey.status(org)] == [new.version]


def test_a_hold_on_a_conversation_keeps_its_replies_too(sender_client, org, ada, alice):
    first = _send(sender_client, subject="First")
    reply = _send(sender_client, subject="Follow-up", in_reply_to=first.uid)
    Message.objects.filter(pk=reply.pk).update(in_reply_to=first)
    actions.place_hold(org, reason="Complaint", by=ada, conversation=first)
    _policy(org, ada, activity=30)
    clock.travel(timedelta(days=31))
    assert purge.purge_org(org).held == 2


def test_a_long_conversation_is_one_conversation_however_deep(sender_client, org, ada, alice):
    """Opened yesterday, its latest reply keeps all 150 messages before it; on PostgreSQL the
    rows, updated newest first, come back in that order unless asked for by pk."""
    chain = [send_message(author=alice, addressees=Addressees(to=[BOB]), subject="Case notes",
                          body_html="<p>QZ47</p>", options=SendOptions(), send_token=secrets.token_urlsafe(16))
             for _ in range(150)]
    for parent, reply in reversed(list(zip(chain, chain[1:], strict=False))):
        Message.objects.filter(pk=reply.pk).update(in_reply_to=parent)
    _policy(org, ada, activity=30)
    clock.travel(timedelta(days=31))
    Delivery.objects.filter(message=chain[-1]).update(first_opened_at=clock.now() - timedelta(days=1))
    assert purge.purge_org(org, dry_run=True).due == 0
    clock.travel(timedelta(days=30))
    assert purge.purge_org(org, dry_run=True).due == 150


def test_deleted_by_every_recipient_is_counted_from_the_last_deletion(sender_client, org, ada):
    message = _send(sender_client, to=f"{BOB}, {CAROL}")
    _policy(org, ada, deletion=7)
    Delivery.objects.filter(message=message, recipient__email=BOB).update(deleted_at=clock.now())
    clock.travel(timedelta(days=8))
    assert purge.purge_org(org, dry_run=True).due == 0  # Carol still has it
    Delivery.objects.filter(message=message, recipient__email=CAROL).update(deleted_at=clock.now())
    clock.travel(timedelta(days=6))
    assert purge.purge_org(org, dry_run=True).due == 0
    clock.travel(timedelta(days=2))
    assert purge.purge_org(org).purged == 1


def test_any_activity_in_the_conversation_postpones_its_purge(sender_client, org, ada):
    message = _send(sender_client)
    _policy(org, ada, activity=30)
    clock.travel(timedelta(days=20))
    Delivery.objects.filter(message=message).update(first_opened_at=clock.now())
    clock.travel(timedelta(days=20))
    assert purge.purge_org(org, dry_run=True).due == 0
    clock.travel(timedelta(days=11))
    assert purge.purge_org(org).purged == 1


def test_a_dry_run_changes_nothing(sender_client, org, ada, capsys):
    message = _expired(sender_client, org, ada)
    events = AuditEvent.objects.count()
    call_command("retention", "run", "--dry-run", "--org", org.slug)
    assert "1 due" in capsys.readouterr().out
    message.refresh_from_db()
    assert message.purged_at is None and AuditEvent.objects.count() == events
    call_command("retention", "show", org.slug)
    shown = capsys.readouterr().out
    assert "Next purge: 1 message(s)" in shown and "alice@northwind.example" in shown and "QZ4" not in shown
    call_command("retention", "run", "--org", org.slug)
    assert "1 purged" in capsys.readouterr().out
    # The operator's command, not the worker's schedule, is who the audit trail says purged.
    assert AuditEvent.objects.get(action=AuditEvent.Action.PURGE).actor_email == "hushpost retention run"


def test_the_command_line_never_runs_beside_a_worker(sender_client, org, ada):
    message = _expired(sender_client, org, ada)
    lease = periodic.claim(RETENTION_JOB, "worker-on-another-machine")
    with pytest.raises(CommandError, match="running already"):
        call_command("retention", "run")
    lease.finish("done")
    call_command("retention", "run")
    message.refresh_from_db()
    assert message.purged_at is not None


def test_each_command_line_run_holds_the_lease_under_a_name_of_its_own(org, monkeypatch):
    owners = []

    def observed(**kwargs):  # while the run holds the lease
        owners.append(PeriodicRun.objects.get(job=RETENTION_JOB).lease_owner)
        return []

    monkeypatch.setattr(purge, "purge_all", observed)
    call_command("retention", "run")
    call_command("retention", "run")
    assert len(set(owners)) == 2  # so one run's end can never end another's lease
    assert all(owner.startswith(f"cli:{socket.gethostname()}:{os.getpid()}:") for owner in owners)
    assert PeriodicRun.objects.get(job=RETENTION_JOB).lease_owner == ""


def test_the_worker_purges_at_most_once_per_interval(sender_client, org, ada, alice, deliver):
    message = _expired(sender_client, org, ada)
    deliver()
    message.refresh_from_db()
    assert message.purged_at is not None
    second = _send(signed_in_as(Client(), alice), expire_days=1)
    clock.travel(timedelta(days=3))
    deliver()  # the interval (an hour, by the database's clock) has not passed
    second.refresh_from_db()
    assert second.purged_at is None


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_workers_on_several_machines_never_purge_at_once(sender_client, org, ada):
    message = _expired(sender_client, org, ada, files=[("scan.pdf", b"%PDF QZ45")])
    running, most, lock = [0], [0], threading.Lock()

    def work(lease):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(0.3)  # long enough for every other worker to ask meanwhile
            return "; ".join(o.line() for o in purge.purge_all(still_ours=lease.renew))
        finally:
            with lock:
                running[0] -= 1

    hourly = workers_at_once(4, 3, lambda name: periodic.run_if_due(RETENTION_JOB, name, timedelta(hours=1), work))
    assert len(hourly) == 1  # twelve chances, one run in the hour
    assert AuditEvent.objects.filter(action=AuditEvent.Action.PURGE, object_id=message.uid).count() == 1
    # With no interval at all, they still take turns: never two at once.
    workers_at_once(4, 3, lambda name: periodic.run_if_due("retention-test", name, timedelta(0), work))
    assert most[0] == 1


def test_a_failing_purge_stops_no_e_mail(sender_client, org, ada, deliver, smtp, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("the purge broke")

    monkeypatch.setattr(purge, "purge_all", broken)
    _policy(org, ada, activity=0)
    _send(sender_client)
    deliver()
    assert smtp.wait_for(BOB, "Secure Messaging Notification")
    assert "failed" in PeriodicRun.objects.get(job=RETENTION_JOB).last_result


# --- the admin area -------------------------------------------------------------------------

def test_the_retention_tab_sets_the_policy_and_shows_the_next_purge(sender_client, org, ada, admin):
    page = admin.get("/app/admin/retention").content.decode()
    assert "Nothing is purged until" in page and "What the next purge will remove" not in page
    message = _send(sender_client, expire_days=1)
    r = admin.post("/app/admin/retention", {"after_expiry_days": "1", "after_deletion_days": "",
                                            "after_activity_days": "", "current": PASSWORD})
    assert r.status_code == 302
    assert RetentionPolicy.objects.get(org=org).after_expiry_days == 1
    assert AuditEvent.objects.filter(detail__contains="retention policy: expiry never → 1 days").exists()
    clock.travel(timedelta(days=3))
    page = signed_in_as(Client(), ada).get("/app/admin/retention").content.decode()
    assert f'data-due="{message.uid}"' in page and BOB in page and "QZ4" not in page
    assert 'data-next-purge="1"' in page


def test_the_policy_refuses_nonsense(admin):
    r = admin.post("/app/admin/retention", {"after_expiry_days": "-3", "after_activity_days": "soon"})
    assert r.status_code == 400 and not RetentionPolicy.objects.exists()


@pytest.mark.parametrize("field", ["after_expiry_days", "after_deletion_days", "after_activity_days"])
def test_no_count_lets_content_go_the_moment_it_is_due(admin, field):
    r = admin.post("/app/admin/retention", {field: "0", "current": PASSWORD})
    assert r.status_code == 400 and not RetentionPolicy.objects.exists()
    assert "At least 1 day" in r.content.decode()


def test_a_policy_that_purges_sooner_and_a_release_ask_every_time(sender_client, org, ada, admin):
    # Ada has just signed in, which counts as confirming for the admin area's other changes.
    r = admin.post("/app/admin/retention", {"after_activity_days": "365"})
    assert r.status_code == 200 and "Confirm it's you" in r.content.decode()
    assert not RetentionPolicy.objects.exists()
    assert admin.post("/app/admin/retention", {"after_activity_days": "365", "current": PASSWORD}).status_code == 302
    # Longer, or off for one reason: nothing is destroyed sooner, so the recent confirmation does.
    assert admin.post("/app/admin/retention", {"after_activity_days": "400"}).status_code == 302
    r = admin.post("/app/admin/retention", {"after_activity_days": "400", "after_expiry_days": "30"})
    assert "Confirm it's you" in r.content.decode()
    r = admin.post("/app/admin/retention", {"after_activity_days": "200"})
    assert "Confirm it's you" in r.content.decode()
    assert RetentionPolicy.objects.get(org=org).after_activity_days == 400
    r = admin.post("/app/admin/retention", {"after_activity_days": "200", "current": "wrong"})
    assert r.status_code == 400 and RetentionPolicy.objects.get(org=org).after_activity_days == 400

    hold = actions.place_hold(org, reason="Matter", by=ada, conversation=_send(sender_client))
    r = admin.post(f"/app/admin/retention/holds/{hold.pk}/release")
    assert r.status_code == 200 and "Confirm it's you" in r.content.decode()
    hold.refresh_from_db()
    assert hold.is_active
    assert admin.post(f"/app/admin/retention/holds/{hold.pk}/release", {"current": PASSWORD}).status_code == 302
    hold.refresh_from_db()
    assert not hold.is_active


def test_changing_the_policy_asks_an_admin_to_confirm_it_is_them(org, ada):
    c = signed_in_as(Client(), ada)
    clock.travel(timedelta(minutes=31))
    c.get("/app/admin/")
    r = c.post("/app/admin/retention", {"after_expiry_days": "1"})
    assert r.status_code == 200 and "Confirm it's you" in r.content.decode()
    assert not RetentionPolicy.objects.exists()
    r = c.post("/app/admin/retention/holds", {"kind": "sender", "address": ada.email, "reason": "x"})
    assert "Confirm it's you" in r.content.decode() and not LegalHold.objects.exists()


def test_an_admin_places_and_releases_holds(sender_client, org, ada, admin, alice):
    message = _send(sender_client)
    r = admin.post("/app/admin/retention/holds", {"kind": "sender", "address": "ALICE@northwind.example",
                                                  "reason": "Matter 2026-114"})
    assert r.status_code == 302
    hold = LegalHold.objects.get()
    assert (hold.kind, hold.account, hold.created_by) == ("sender", alice, ada)
    # The Messages tab's Hold action picks the conversation.
    assert f"/app/admin/retention?conversation={message.uid}" in admin.get("/app/admin/messages").content.decode()
    page = admin.get(f"/app/admin/retention?conversation={message.uid}").content.decode()
    assert f'value="{message.uid}"' in page and "from alice@northwind.example" in page
    r = admin.post("/app/admin/retention/holds", {"kind": "conversation", "conversation": message.uid,
                                                  "reason": "Complaint 77"})
    assert r.status_code == 302 and LegalHold.objects.filter(conversation=message).exists()
    page = admin.get("/app/admin/retention").content.decode()
    assert "Matter 2026-114" in page and "Complaint 77" in page and "Sender alice@northwind.example" in page
    assert "every account of Northwind Health at that address, as sender and as recipient" in page
    assert admin.post(f"/app/admin/retention/holds/{hold.pk}/release", {"current": PASSWORD}).status_code == 302
    hold.refresh_from_db()
    assert hold.released_by == ada and hold.released_at is not None
    assert "Released holds" in admin.get("/app/admin/retention").content.decode()


def test_a_hold_needs_an_account_of_the_organisation(admin, org):
    r = admin.post("/app/admin/retention/holds", {"kind": "recipient", "address": "nobody@client.example",
                                                  "reason": "Matter"})
    assert r.status_code == 400 and "No recipient of Northwind Health has that address" in r.content.decode()
    r = admin.post("/app/admin/retention/holds", {"kind": "sender", "address": "", "reason": ""})
    assert r.status_code == 400 and not LegalHold.objects.exists()


def test_another_organisations_holds_and_messages_are_not_found(sender_client, org, ada, admin):
    harbour = personas.harbour()
    hal = personas.hal(harbour)
    message = _send(sender_client)
    hold = actions.place_hold(org, reason="Matter", by=ada, conversation=message)
    intruder = signed_in_as(Client(), hal)
    assert intruder.get(f"/app/admin/retention?conversation={message.uid}").status_code == 404
    assert intruder.post("/app/admin/retention/holds", {
        "kind": "conversation", "conversation": message.uid, "reason": "x"}).status_code == 404
    assert intruder.post(f"/app/admin/retention/holds/{hold.pk}/release", {"current": PASSWORD}).status_code == 404
    r = intruder.post("/app/admin/retention/holds", {"kind": "sender", "address": "alice@northwind.example",
                                                     "reason": "x"})
    assert r.status_code == 400
    hold.refresh_from_db()
    assert hold.released_at is None and LegalHold.objects.count() == 1
    assert "Matter" not in intruder.get("/app/admin/retention").content.decode()


def test_a_recipient_or_a_plain_sender_never_reaches_the_retention_tab(sender_client):
    assert sender_client.get("/app/admin/retention").status_code == 404


def test_a_long_purge_takes_turns_with_the_e_mails(sender_client, org, ada, deliver, smtp, monkeypatch):
    """A lone worker facing a purge of years of messages purges a slice at a time, sends what is
    due in between, and takes the rest up at its next round rather than an hour later."""
    monkeypatch.setattr(purge, "BATCH", 1)
    monkeypatch.setattr(background, "PERIODIC_SLICE_SECONDS", 0)  # one batch per turn
    first, second = _send(sender_client), _send(sender_client)
    _policy(org, ada, activity=1)
    clock.travel(timedelta(days=3))
    deliver()
    assert Message.objects.filter(purged_at__isnull=False).count() == 1
    assert PeriodicRun.objects.get(job=RETENTION_JOB).last_started_at is None  # due again at once
    told = len(smtp.to(BOB))
    _send(signed_in_as(Client(), ada), to=BOB)
    deliver()
    assert len(smtp.to(BOB)) == told + 1  # its notification went out between two turns of the purge
    assert {first.pk, second.pk} <= set(Message.objects.filter(purged_at__isnull=False).values_list("pk", flat=True))


def test_a_sqlite_database_overwrites_what_a_purge_frees(tmp_path, settings):
    """Every SQLite connection runs the settings' init_command; in it, ``secure_delete`` zeroes the
    space emptied keys and ciphertext leave in the database file, which would otherwise keep the
    old bytes (Debian builds SQLite with it on by default; other builds do not)."""
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip("SQLite's file")
    keys = [secrets.token_bytes(48) for _ in range(6)]
    path = tmp_path / "hushpost.sqlite3"
    db = sqlite3.connect(path)
    db.execute("PRAGMA secure_delete=OFF")  # as SQLite's own default
    db.executescript(settings.DATABASES["default"]["OPTIONS"]["init_command"])
    db.execute("CREATE TABLE message (id INTEGER PRIMARY KEY, wrapped_key BLOB, subject_ct BLOB, body_ct BLOB)")
    db.executemany("INSERT INTO message VALUES (?, ?, ?, ?)",
                   [(n, key, secrets.token_bytes(60), secrets.token_bytes(200)) for n, key in enumerate(keys)])
    db.commit()
    assert all(key in path.read_bytes() + (tmp_path / "hushpost.sqlite3-wal").read_bytes() for key in keys)
    db.execute("UPDATE message SET wrapped_key = x'', subject_ct = x'', body_ct = x''")
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    data = path.read_bytes()
    assert not [key for key in keys if key in data]
