"""The audit trail is chained after the commit: what people do never waits on the chain, and
what is chained is as tamper-evident as before.

An event is one INSERT in the transaction of what it records; the linker (run by the worker
on every round, and by ``audit verify`` first) gives it its place. These tests hold the
linker to the promises of the trail: every committed event chained exactly once, in one
order that ``verify`` walks, whatever commits late or runs at once; the one change the
database allows an event is that linking; and a chained event moved, unchained or re-ordered
shows.
"""

from __future__ import annotations

import threading

import pytest
from django.db import DatabaseError, connection, connections, transaction

from hushpost.audit import linker
from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent, AuditHead
from hushpost.audit.verify import verify
from tests.helpers import send
from tests.personas import BOB

pytestmark = pytest.mark.django_db(transaction=True)

postgresql_only = pytest.mark.skipif("connection.vendor != 'postgresql'",
                                     reason="concurrent writers and row-level triggers: PostgreSQL")


def note(org, text: str) -> AuditEvent:
    return record(AuditEvent.Action.ADMIN, org=org, actor_email="ada@northwind.example", detail=text)


def chain_of(org) -> list[str]:
    return list(AuditEvent.objects.filter(org=org).order_by("seq").values_list("detail", flat=True))


def test_recording_takes_no_lock_and_the_worker_chains_what_was_recorded(sender_client, smtp, deliver, org):
    send(sender_client, to=BOB, subject="Results")
    written = AuditEvent.objects.get(action=AuditEvent.Action.SEND)
    assert (written.seq, written.prev_hash, written.hash) == (None, None, None)
    assert not AuditHead.objects.filter(chain=org.pk).exists()  # nobody touched the chain's head
    deliver()  # the worker's rounds: the e-mails go, and every event waiting is chained
    assert not AuditEvent.objects.filter(hash__isnull=True).exists()
    events = list(AuditEvent.objects.filter(org=org).order_by("seq"))
    actions = [e.action for e in events]
    assert actions.index(AuditEvent.Action.SEND) < actions.index(AuditEvent.Action.NOTIFICATION)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert all(e.prev_hash == before.hash for before, e in zip(events, events[1:], strict=False))
    head = AuditHead.objects.get(chain=org.pk)
    assert (head.events, head.last_hash) == (len(events), events[-1].hash)
    assert verify().broken == []


def test_linking_is_in_batches_and_each_event_is_chained_once(org):
    for n in range(7):
        note(org, f"step {n}")
    assert linker.link(limit=3) == 7  # three rounds of the chain's head: 3, 3, 1
    assert linker.link() == 0
    assert chain_of(org) == [f"step {n}" for n in range(7)]
    assert AuditHead.objects.get(chain=org.pk).events == 7
    note(org, "later")
    assert linker.link() == 1
    assert chain_of(org)[-1] == "later"
    assert verify().broken == [] and verify().events == 8


@postgresql_only
def test_an_event_committed_late_joins_the_chain_after_those_linked_before_it(org):
    """A transaction that wrote its event first but committed last: its event has the lower
    id, and takes its place after the events chained meanwhile."""
    wrote, go_on, failed = threading.Event(), threading.Event(), []

    def slow_request():
        try:
            with transaction.atomic():
                note(org, "slow")
                wrote.set()
                go_on.wait(10)
        except Exception as exc:  # noqa: BLE001 - reported below
            failed.append(exc)
        finally:
            connections.close_all()

    slow = threading.Thread(target=slow_request)
    slow.start()
    assert wrote.wait(10)
    note(org, "quick")  # committed at once, with a higher id
    assert linker.link() == 1  # the slow one is not committed: it cannot be seen, let alone chained
    go_on.set()
    slow.join(10)
    assert not failed
    assert linker.link() == 1
    slow_event = AuditEvent.objects.get(detail="slow")
    quick_event = AuditEvent.objects.get(detail="quick")
    assert slow_event.pk < quick_event.pk and slow_event.seq > quick_event.seq
    assert chain_of(org) == ["quick", "slow"]
    assert verify().broken == []


@postgresql_only
def test_two_linkers_at_once_chain_every_event_once(org):
    for n in range(300):
        note(org, f"event {n}")
    counts, failed = [], []

    def worker_round():
        try:
            counts.append(linker.link(limit=20))
        except Exception as exc:  # noqa: BLE001 - reported below
            failed.append(exc)
        finally:
            connections.close_all()

    rounds = [threading.Thread(target=worker_round) for _ in range(2)]
    for t in rounds:
        t.start()
    for t in rounds:
        t.join(60)
    assert not failed
    linker.link(wait=True)
    assert sum(counts) <= 300  # a chain another linker holds is skipped, never chained twice
    seqs = list(AuditEvent.objects.filter(org=org).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 301))
    assert verify().broken == []


@postgresql_only
def test_the_database_allows_an_event_one_change_only_its_link(org):
    waiting = note(org, "waiting")
    # Unchained, its content still cannot change, with or without a link set at the same time.
    for change in ({"detail": "rewritten"}, {"detail": "rewritten", "seq": 1, "prev_hash": "0" * 64,
                                              "hash": "f" * 64},
                   {"mac": "e" * 64, "seq": 1, "prev_hash": "0" * 64, "hash": "f" * 64}):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            AuditEvent.objects.filter(pk=waiting.pk).update(**change)
    linker.link()
    chained = AuditEvent.objects.get(pk=waiting.pk)
    # Chained, nothing changes: not its link, not back to waiting.
    for change in ({"hash": "f" * 64}, {"seq": 9}, {"seq": None, "prev_hash": None, "hash": None}):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            AuditEvent.objects.filter(pk=chained.pk).update(**change)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=chained.pk).delete()
    assert AuditEvent.objects.get(pk=chained.pk).hash == chained.hash


def _as_database_owner(change):
    """What the database's owner can do on PostgreSQL: switch the append-only trigger off."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_append_only")
    try:
        change()
    finally:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_append_only")


def test_two_chained_events_swapped_in_the_chain_show(org):
    for n in range(4):
        note(org, f"event {n}")
    assert verify().broken == []
    first, second = AuditEvent.objects.filter(org=org).order_by("seq")[1:3]

    def swap():
        AuditEvent.objects.filter(pk=first.pk).update(seq=second.seq)
        AuditEvent.objects.filter(pk=second.pk).update(seq=first.seq)

    _as_database_owner(swap)
    [problem] = verify().broken
    assert problem.startswith(f"chain {org.pk}: event ") and "does not follow from the one before it" in problem


def test_a_chained_event_sent_back_to_be_chained_again_shows(org):
    """Unchaining an event so that the linker chains it anew, at the end, in a new form: its old
    place is a gap."""
    for n in range(4):
        note(org, f"event {n}")
    assert verify().broken == []
    victim = AuditEvent.objects.filter(org=org).order_by("seq")[1]
    _as_database_owner(lambda: AuditEvent.objects.filter(pk=victim.pk).update(seq=None, prev_hash=None,
                                                                                 hash=None))
    [problem] = verify().broken
    assert "does not follow from the one before it" in problem


def test_an_event_inserted_by_someone_else_is_chained_but_shows(org):
    """Anyone who can INSERT into the table can add a row for the linker to chain; without the
    master key its own seal cannot match, and verify names it."""
    note(org, "real")
    real = AuditEvent.objects.get(detail="real")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_auditevent (org_id, at, action, actor_id, actor_email, client, object_type, "
            "object_id, detail, mac) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [org.pk, connection.ops.adapt_datetimefield_value(real.at), "open", None, "bob@client.example",
             "203.0.113.9", "message", "made-up", "", "0" * 64])
    forged = AuditEvent.objects.get(object_id="made-up")
    [problem] = verify().broken
    assert AuditEvent.objects.get(pk=forged.pk).hash is not None  # chained like the rest...
    assert problem == (f"chain {org.pk}: event {forged.pk} ({forged.at:%Y-%m-%d %H:%M:%S} open) was not "
                       "written by Hushpost: its seal does not match")  # ...and named


def test_a_head_moved_back_over_deleted_events_is_never_extended(org, caplog):
    """The last events deleted and the head moved back, without the key for its seal: the
    linker refuses to chain onto it (resealing it would hide the deletion)."""
    for n in range(4):
        note(org, f"event {n}")
    assert verify().broken == []
    kept = list(AuditEvent.objects.filter(org=org).order_by("seq"))[:2]
    gone = AuditEvent.objects.filter(org=org, seq__gt=2)
    _as_database_owner(lambda: gone._raw_delete(AuditEvent.objects.db))
    AuditHead.objects.filter(chain=org.pk).update(last_hash=kept[-1].hash, events=2, seal="0" * 64)
    later = note(org, "later")
    assert linker.link() == 0
    assert AuditEvent.objects.get(pk=later.pk).hash is None
    assert "head's seal does not match" in caplog.text
    [problem] = verify().broken
    assert problem.startswith(f"chain {org.pk}: its head's seal does not match")
