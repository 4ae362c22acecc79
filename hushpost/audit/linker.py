"""Chaining the audit trail: each committed event takes its place in its organisation's chain.

``record`` writes an event without a lock, in the transaction of what it
records. The linker, run by ``hushpost worker`` on every round (and by
``hushpost audit verify`` before it checks), takes each organisation's chain
head in turn, gives the events written since its last round their ``seq``,
their previous hash and their own keyed hash, in order of their ids, and moves
the sealed head on, all in one transaction. So a chain grows one batch at a
time under its head's lock, and nothing that people wait for takes that lock.

An event committed late (its transaction began before others that committed
first) joins the chain after the events already linked; its ``seq`` says where.
What is linked can no longer change unseen; what waits to be linked is a
moment's worth of events (the threat model says what that allows). Every event
carries its own keyed seal from the moment it is written, so a row inserted by
anyone else, chained like the rest, still shows in ``verify``. A head whose seal
does not hold (moved back over deleted events) is never extended and resealed:
its chain waits, and ``verify`` names it.
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, connections, transaction

from hushpost.audit.chain import GENESIS, head_seal, seal_holds
from hushpost.audit.chain import link as chain_link
from hushpost.audit.models import AuditEvent, AuditHead

log = logging.getLogger(__name__)

BATCH = 500

_PENDING_CHAINS = 'SELECT DISTINCT "org_id" FROM "audit_auditevent" WHERE "hash" IS NULL'
_HEAD = 'SELECT "id", "last_hash", "events", "seal" FROM "audit_audithead" WHERE "chain" = %s'
_ADVANCE = ('UPDATE "audit_audithead" SET "last_hash" = %s, "events" = %s, "seal" = %s '
            'WHERE "id" = %s AND "last_hash" = %s AND "events" = %s')
# VALUES' columns are column1, column2, ... on both PostgreSQL and SQLite.
_LINK = ('UPDATE "audit_auditevent" AS e SET "seq" = v.column2, "prev_hash" = v.column3, "hash" = v.column4 '
         'FROM (VALUES {rows}) AS v WHERE e."id" = v.column1 AND e."hash" IS NULL')


class _Raced(Exception):
    """Another linker moved the head meanwhile (SQLite only: PostgreSQL locks it)."""


def link(*, wait: bool = False, limit: int = BATCH) -> int:
    """Chain every committed event not chained yet; returns how many were chained.

    ``wait=False`` (the worker's rounds) skips a chain another linker holds:
    that one is chaining it. ``wait=True`` waits for it, so that every event
    committed before the call is chained when it returns.
    """
    connection = connections[AuditEvent.objects.db]
    with connection.cursor() as cursor:
        cursor.execute(_PENDING_CHAINS)
        chains = sorted({org_id or 0 for (org_id,) in cursor.fetchall()})
    linked = 0
    for chain in chains:
        while True:
            try:
                count = _link_chain(chain, wait=wait, limit=limit)
            except _Raced:
                if not wait:
                    break
                continue
            linked += count
            if count < limit:
                break
    return linked


def _link_chain(chain: int, *, wait: bool, limit: int) -> int:
    with transaction.atomic(using=AuditEvent.objects.db):
        head = _head(chain, wait=wait)
        if head is None:
            return 0
        if not seal_holds(head):
            log.error("audit chain %s: its head's seal does not match, so nothing more is chained to it; "
                      "run `hushpost audit verify`", chain)
            return 0
        events = list(
            AuditEvent.objects.filter(org_id=chain or None, hash__isnull=True).order_by("id")[:limit])
        if not events:
            return 0
        prev, seq, rows = head.last_hash, head.events, []
        for event in events:
            seq += 1
            own = chain_link(prev, event)
            rows.extend((event.pk, seq, prev, own))
            prev = own
        connection = connections[AuditEvent.objects.db]
        with connection.cursor() as cursor:
            cursor.execute(_LINK.format(rows=", ".join(["(%s, %s, %s, %s)"] * len(events))), rows)
            if cursor.rowcount != len(events):
                raise _Raced()
            cursor.execute(_ADVANCE, [prev, seq, head_seal(chain, seq, prev), head.pk, head.last_hash,
                                      head.events])
            if cursor.rowcount != 1:
                raise _Raced()
    return len(events)


def _head(chain: int, *, wait: bool) -> AuditHead | None:
    """The chain's head, locked until the end of the transaction (made the first time);
    None if another linker holds it and ``wait`` is false."""
    connection = connections[AuditHead.objects.db]
    lock = ""
    if connection.features.has_select_for_update:
        lock = " FOR UPDATE" if wait else " FOR UPDATE SKIP LOCKED"
    with connection.cursor() as cursor:
        cursor.execute(_HEAD + lock, [chain])
        row = cursor.fetchone()
        if row is None:
            if lock and AuditHead.objects.filter(chain=chain).exists():
                return None  # locked by another linker
            try:
                with transaction.atomic(using=connection.alias):
                    AuditHead.objects.create(chain=chain, last_hash=GENESIS, events=0,
                                             seal=head_seal(chain, 0, GENESIS))
            except IntegrityError:
                pass
            cursor.execute(_HEAD + lock, [chain])
            row = cursor.fetchone()
            if row is None:
                return None
    pk, last_hash, events, seal = row
    return AuditHead(pk=pk, chain=chain, last_hash=last_hash, events=events, seal=seal)
