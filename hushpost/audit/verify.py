"""Checking the audit trail: every link, every head's seal, and optionally a kept checkpoint.

Events committed but not chained yet are chained first (the linker, waiting for
any other linker), so the check covers everything written before it began.
A chain holds when each event, in chain order, follows from the one before it,
its head's seal is genuine, and the chain ends exactly at its head (the same
last hash, the same count). A checkpoint taken earlier must still be inside the
chain: its chain has at least as many events, and the event at its count is the
one it names.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import connection, transaction

from hushpost.audit import linker
from hushpost.audit.chain import GENESIS, link, mac_holds, seal_holds, write_checkpoint
from hushpost.audit.models import AuditEvent, AuditHead


@dataclass
class Verdict:
    chains: int
    events: int
    broken: list[str] = field(default_factory=list)


def verify(checkpoint: dict[int, tuple[int, str]] | None = None) -> Verdict:
    """Chain what waits, then walk every chain in order, in one consistent snapshot;
    report where it does not hold."""
    linker.link(wait=True)
    with _snapshot():
        return _verify(checkpoint or {})


def checkpoint() -> tuple[Verdict, str]:
    """The verdict, and a signed checkpoint of every chain's head taken in the same snapshot."""
    linker.link(wait=True)
    with _snapshot():
        verdict = _verify({})
        heads = {h.chain: (h.events, h.last_hash) for h in AuditHead.objects.all()}
    return verdict, write_checkpoint(heads)


@contextmanager
def _snapshot():
    """PostgreSQL: one REPEATABLE READ transaction, so appends meanwhile are not half seen."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def _verify(kept: dict[int, tuple[int, str]]) -> Verdict:
    heads = {h.chain: h for h in AuditHead.objects.all()}
    with_events = {org_id or 0 for org_id in AuditEvent.objects.values_list("org_id", flat=True).distinct()}
    chains = sorted(set(heads) | with_events | set(kept))
    verdict = Verdict(chains=len(chains), events=0)
    for chain in chains:
        problem = _check_chain(chain, heads.get(chain), kept.get(chain), verdict)
        if problem:
            verdict.broken.append(f"chain {chain}: {problem}")
    return verdict


def _check_chain(chain: int, head: AuditHead | None, kept: tuple[int, str] | None, verdict: Verdict) -> str:
    rows = AuditEvent.objects.filter(org_id=chain or None, hash__isnull=False).order_by("seq", "id")
    prev, count, kept_seen = GENESIS, 0, kept is None or kept[0] == 0
    for event in rows.iterator():
        count += 1
        verdict.events += 1
        if event.seq != count or event.prev_hash != prev or link(prev, event) != event.hash:
            return (f"event {event.pk} ({event.at:%Y-%m-%d %H:%M:%S} {event.action}) does not follow from "
                    "the one before it")
        if not mac_holds(event):
            return (f"event {event.pk} ({event.at:%Y-%m-%d %H:%M:%S} {event.action}) was not written by "
                    "Hushpost: its seal does not match")
        if kept is not None and count == kept[0]:
            if event.hash != kept[1]:
                return f"event {event.pk} is not the one the checkpoint names as its event {kept[0]}"
            kept_seen = True
        prev = event.hash
    if head is None and count:
        return "its head is missing"
    if head is not None and not seal_holds(head):
        return "its head's seal does not match: the head was changed without the key"
    if head is not None and (head.last_hash != prev or head.events != count):
        return (f"its last events are missing: the head names {head.events} events, ending in "
                f"{head.last_hash[:12]}…; the chain has {count}, ending in {prev[:12]}…")
    if not kept_seen:
        return f"the checkpoint saw {kept[0]} events, the chain now has {count}: events were removed"
    return ""
